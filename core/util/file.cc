#include "core/util/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>

namespace lsifs {

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void File::Close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

Status File::OpenRead(const std::string& path, File* out) {
  // Non-blocking first: opening a FIFO (or a link to one) for reading
  // would wait for a writer forever.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Status::FromErrno(path, errno);
  File f(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno(path, errno);
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return Status::InvalidArgument(path +
                                   ": not a regular file (a pipe, socket, directory or "
                                   "character device cannot be read here)");
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return Status::FromErrno(path, errno);
  }
  *out = std::move(f);
  return Status::Ok();
}

Status File::CreateExclusive(const std::string& path, int mode, File* out,
                             const std::string& shown_as) {
  const std::string& name = shown_as.empty() ? path : shown_as;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Status::FromErrno(name, errno);
  // The process umask must not widen or narrow what the caller asked for.
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return Status::FromErrno(name, e);
  }
  *out = File(fd);
  return Status::Ok();
}

Status File::PreadExact(uint64_t offset, MutableByteSpan out) const {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n =
        ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read", errno);
    }
    if (n == 0) return Status::Corruption("truncated: file ends before the data it must hold");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status File::WriteAll(ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write", errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status File::PwriteAll(uint64_t offset, ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write", errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status File::Size(uint64_t* size) const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Status::FromErrno("stat", errno);
  if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (::ioctl(fd_, BLKGETSIZE64, &bytes) != 0) return Status::FromErrno("BLKGETSIZE64", errno);
    *size = bytes;
    return Status::Ok();
  }
  *size = static_cast<uint64_t>(st.st_size);
  return Status::Ok();
}

Status File::Sync() {
  if (::fsync(fd_) != 0) return Status::FromErrno("fsync", errno);
  return Status::Ok();
}

AtomicFileWriter::~AtomicFileWriter() {
  Abandon();
}

Status AtomicFileWriter::Open(const std::string& tmp_dir, const std::string& final_path, int mode) {
  static std::atomic<uint64_t> counter{0};
  final_path_ = final_path;
  written_ = flushed_to_ = 0;
  std::string base = final_path.substr(final_path.find_last_of('/') + 1);
  char suffix[64];
  std::snprintf(suffix, sizeof suffix, ".%d.%llu.tmp", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(counter.fetch_add(1)));
  tmp_path_ = tmp_dir + "/" + base + suffix;
  // Errors name the file being written, never its temporary.
  Status s = File::CreateExclusive(tmp_path_, mode, &file_, "writing " + final_path);
  if (!s.ok()) tmp_path_.clear();
  return s;
}

Status AtomicFileWriter::Write(ByteSpan data) {
  LSIFS_RETURN_IF_ERROR(file_.WriteAll(data));
  written_ += data.size();
  constexpr uint64_t kWriteBehind = 8 << 20;
  if (written_ - flushed_to_ >= kWriteBehind) {
    // Only a hint: a failure here shows again, and is reported, at Commit.
    (void)::sync_file_range(file_.fd(), static_cast<off_t>(flushed_to_),
                            static_cast<off_t>(written_ - flushed_to_), SYNC_FILE_RANGE_WRITE);
    flushed_to_ = written_;
  }
  return Status::Ok();
}

Status AtomicFileWriter::Commit(bool replace) {
  LSIFS_RETURN_IF_ERROR(file_.Sync());
  file_.Close();
  int rc;
  if (replace) {
    rc = ::rename(tmp_path_.c_str(), final_path_.c_str());
  } else {
    rc = ::renameat2(AT_FDCWD, tmp_path_.c_str(), AT_FDCWD, final_path_.c_str(), RENAME_NOREPLACE);
  }
  if (rc != 0) {
    Status s = Status::FromErrno(final_path_, errno);
    Abandon();
    return s;
  }
  tmp_path_.clear();
  return SyncDirectory(DirName(final_path_));
}

void AtomicFileWriter::Abandon() {
  file_.Close();
  if (!tmp_path_.empty()) {
    ::unlink(tmp_path_.c_str());
    tmp_path_.clear();
  }
}

std::vector<std::string> ListFileNames(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    ::closedir(d);
  }
  return names;
}

uint64_t FileBytes(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size)
                                                               : 0;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& n : ListFileNames(dir)) total += FileBytes(dir + "/" + n);
  return total;
}

Status ReadWholeFile(const std::string& path, size_t max_size, std::string* out) {
  File f;
  LSIFS_RETURN_IF_ERROR(File::OpenRead(path, &f));
  return ReadWholeFile(f, path, max_size, out);
}

Status ReadWholeFile(const File& f, const std::string& path, size_t max_size, std::string* out) {
  uint64_t size = 0;
  LSIFS_RETURN_IF_ERROR(f.Size(&size));
  if (size > max_size) return Status::Corruption(path + ": larger than any valid file of its kind");
  out->assign(size, '\0');
  Status s = f.PreadExact(0, MutableByteSpan(reinterpret_cast<uint8_t*>(out->data()), size));
  return s.WithContext(path);
}

Status WriteFileAtomically(const std::string& tmp_dir, const std::string& path, ByteSpan data,
                           int mode, bool replace) {
  AtomicFileWriter w;
  LSIFS_RETURN_IF_ERROR(w.Open(tmp_dir, path, mode));
  LSIFS_RETURN_IF_ERROR(w.Write(data));
  return w.Commit(replace);
}

Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(dir, errno);
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) return Status::FromErrno(dir, e);
  return Status::Ok();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace lsifs
