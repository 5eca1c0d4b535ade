// An exclusive lock on one extension's delivery record (STORE/catalog/
// EXT.lock), held for a read-modify-write of the record, and by whatever
// must not interleave with one: publishing an LSI, finishing a key rotation.
// Internal to core/catalog.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "core/util/status.h"

namespace lsifs {

class RecordLock {
 public:
  RecordLock() = default;
  RecordLock(const RecordLock&) = delete;
  RecordLock& operator=(const RecordLock&) = delete;
  ~RecordLock() {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Acquire(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return Status::FromErrno(path, errno);
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) return Status::FromErrno("lock " + path, errno);
    }
    return Status::Ok();
  }

 private:
  int fd_ = -1;
};

}  // namespace lsifs
