#include "core/util/status.h"

#include <cstring>

namespace lsifs {

Status Status::FromErrno(std::string_view context, int errnum) {
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(errnum);
  if (errnum == ENOENT) return Status(Code::kNotFound, std::move(msg));
  if (errnum == EACCES || errnum == EPERM) return Status(Code::kPermission, std::move(msg));
  if (errnum == EEXIST) return Status(Code::kExists, std::move(msg));
  return Status(Code::kIOError, std::move(msg));
}

Status Status::FromCode(int code, std::string msg) {
  if (code > static_cast<int>(Code::kOk) && code <= static_cast<int>(Code::kCancelled)) {
    return Status(static_cast<Code>(code), std::move(msg));
  }
  return IOError(std::move(msg));
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += message_;
  return Status(code_, std::move(msg));
}

Status UnsupportedVersion(const std::string& what, uint64_t version, uint64_t oldest,
                          uint64_t newest) {
  const std::string range = oldest == newest
                                ? std::to_string(newest)
                                : std::to_string(oldest) + " to " + std::to_string(newest);
  if (version > newest) {
    return Status::Corruption(what + ": format version " + std::to_string(version) +
                              " is newer than this lsifs reads (" + range +
                              "): upgrade lsifs to read it (or the file is damaged: lsictl "
                              "verify)");
  }
  return Status::Corruption(what + ": format version " + std::to_string(version) +
                            " is not one lsifs writes (" + range + "): damaged?");
}

}  // namespace lsifs
