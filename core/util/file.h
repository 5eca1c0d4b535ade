// Files: an owned descriptor with exact reads and writes, and the
// write-to-temporary, fsync, rename discipline every lsifs file is made with
// so that a crash never leaves a half-written file under its final name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/util/encoding.h"
#include "core/util/status.h"

namespace lsifs {

class File {
 public:
  File() = default;
  explicit File(int fd) : fd_(fd) {}
  ~File() { Close(); }
  File(File&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // A regular file or a block device; anything else is refused (opening a
  // FIFO for reading would wait for a writer forever).
  static Status OpenRead(const std::string& path, File* out);
  // Creates `path` exclusively with `mode` (fails with kExists if it is there);
  // errors name it `shown_as` when given (a temporary's name means nothing
  // to a user).
  static Status CreateExclusive(const std::string& path, int mode, File* out,
                                const std::string& shown_as = "");

  bool is_open() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void Close();

  // Reads exactly out.size() bytes at `offset`; a short file is Corruption
  // ("truncated"), because every caller knows how long its data must be.
  Status PreadExact(uint64_t offset, MutableByteSpan out) const;
  Status WriteAll(ByteSpan data);
  Status PwriteAll(uint64_t offset, ByteSpan data);
  Status Size(uint64_t* size) const;
  Status Sync();

 private:
  int fd_ = -1;
};

// Writes a file under a temporary name beside its destination's directory
// (`tmp_dir`, on the same filesystem) and renames it into place on Commit().
// Dropping an uncommitted writer removes the temporary.
class AtomicFileWriter {
 public:
  AtomicFileWriter() = default;
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  Status Open(const std::string& tmp_dir, const std::string& final_path, int mode = 0644);
  File& file() { return file_; }
  // Where it is being written: to check what was written before Commit.
  const std::string& temp_path() const { return tmp_path_; }
  // Appends; every few MiB asks the kernel to start writing them back, so
  // that Commit's fsync finds little left (a large layer's flush overlaps
  // its sealing instead of following it).
  Status Write(ByteSpan data);
  // fsync the data, rename over `final_path` (refusing to replace an existing
  // file when `replace` is false), fsync the directory.
  Status Commit(bool replace = false);
  void Abandon();

 private:
  File file_;
  std::string tmp_path_;
  std::string final_path_;
  uint64_t written_ = 0;     // bytes appended so far
  uint64_t flushed_to_ = 0;  // writeback was started up to here
};

Status ReadWholeFile(const std::string& path, size_t max_size, std::string* out);
// The same through a file already open (`path` names it in errors).
Status ReadWholeFile(const File& f, const std::string& path, size_t max_size, std::string* out);
// The names in folder `dir` ("." and ".." left out), in no order; none when
// it cannot be read.
std::vector<std::string> ListFileNames(const std::string& dir);
// The size of `path` in bytes; 0 when it is gone (sizes here are reports of
// what was or will be freed, never decisions).
uint64_t FileBytes(const std::string& path);
// The sizes of the regular files directly in `dir`, added up.
uint64_t DirBytes(const std::string& dir);
// Writes a small file atomically (temp + fsync + rename) in one call.
Status WriteFileAtomically(const std::string& tmp_dir, const std::string& path, ByteSpan data,
                           int mode, bool replace);
Status SyncDirectory(const std::string& dir);
bool PathExists(const std::string& path);
std::string DirName(const std::string& path);

}  // namespace lsifs
