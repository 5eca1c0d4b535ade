// Status: the result of an operation that can fail, in the LevelDB style.
// Errors carry a code (for callers that branch on the kind of failure, such
// as the FUSE adapter mapping to errno) and a one-line, user-facing reason.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace lsifs {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,         // a named thing does not exist
    kInvalidArgument,  // bad user input: names, sizes, options
    kCorruption,       // data failed a check: magic, length, authentication tag
    kPermission,       // a key is refused: wrong key, unsafe file mode, other extension
    kIOError,          // the operating system failed a call
    kExists,           // creating something that is already there
    kUnavailable,      // a resource is busy or gone (lock held, daemon down)
    kCancelled,        // work stopped on request (lsictl assemblies cancel, shutdown)
  };

  Status() = default;

  static Status Ok() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status InvalidArgument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status Permission(std::string msg) { return Status(Code::kPermission, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  // An IOError for a failed system call: "<context>: <strerror(errnum)>".
  static Status FromErrno(std::string_view context, int errnum);
  static Status Exists(std::string msg) { return Status(Code::kExists, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status Cancelled(std::string msg) { return Status(Code::kCancelled, std::move(msg)); }
  // A status from a code that crossed a process boundary as a number (the
  // control socket, the region's errors); an unknown one is an IOError.
  static Status FromCode(int code, std::string msg);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsPermission() const { return code_ == Code::kPermission; }
  bool IsCancelled() const { return code_ == Code::kCancelled; }
  const std::string& message() const { return message_; }

  // The same status with "<context>: " in front of its message.
  Status WithContext(std::string_view context) const;

  std::string ToString() const { return ok() ? std::string("OK") : message_; }

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

// Every on-disk format carries a version. A reader that meets one it does
// not read says which, and what to do: a newer version needs a newer lsifs;
// one outside what lsifs ever wrote is damage. `what` names the file.
Status UnsupportedVersion(const std::string& what, uint64_t version, uint64_t oldest,
                          uint64_t newest);

}  // namespace lsifs

// Returns from the enclosing function when `expr` yields a failed Status.
#define LSIFS_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::lsifs::Status lsifs_status_ = (expr);        \
    if (!lsifs_status_.ok()) return lsifs_status_; \
  } while (0)
