#include "core/control/control.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace lsifs {
namespace {

constexpr size_t kMaxRequest = 64 * 1024;
constexpr auto kRequestDeadline = std::chrono::seconds(5);

// A socket's address. sun_path holds 107 bytes: a longer path is reached
// through its folder, opened, as /proc/self/fd/N/NAME.
class SocketAddress {
 public:
  ~SocketAddress() {
    if (dir_fd_ >= 0) ::close(dir_fd_);
  }
  Status Set(const std::string& path) {
    std::memset(&addr_, 0, sizeof addr_);
    addr_.sun_family = AF_UNIX;
    std::string usable = path;
    if (path.size() >= sizeof addr_.sun_path) {
      size_t slash = path.find_last_of('/');
      std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
      dir_fd_ = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (dir_fd_ < 0) return Status::FromErrno("control socket folder " + dir, errno);
      usable = "/proc/self/fd/" + std::to_string(dir_fd_) + "/" + path.substr(slash + 1);
      if (usable.size() >= sizeof addr_.sun_path) {
        return Status::InvalidArgument("control socket name too long: " + path);
      }
    }
    std::memcpy(addr_.sun_path, usable.c_str(), usable.size() + 1);
    return Status::Ok();
  }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&addr_); }
  socklen_t size() const { return sizeof addr_; }

 private:
  sockaddr_un addr_;
  int dir_fd_ = -1;
};

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::vector<std::string> Split(const std::string& line, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t at = line.find(sep, start);
    out.push_back(line.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

}  // namespace

Status ControlServer::Start(const std::string& path, Handler handler,
                            std::unique_ptr<ControlServer>* out, bool take_over) {
  SocketAddress addr;
  LSIFS_RETURN_IF_ERROR(addr.Set(path));
  std::string probe;
  if (!take_over && ControlCall(path, {"ping"}, &probe).code() != Status::Code::kUnavailable) {
    return Status::Exists("another lsifs already serves " + path);
  }
  ::unlink(path.c_str());
  std::unique_ptr<ControlServer> s(new ControlServer());
  s->path_ = path;
  s->handler_ = std::move(handler);
  s->listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) return Status::FromErrno("socket", errno);
  if (::bind(s->listen_fd_, addr.get(), addr.size()) != 0 || ::listen(s->listen_fd_, 16) != 0) {
    return Status::FromErrno("control socket " + path, errno);
  }
  struct stat bound;
  if (::stat(path.c_str(), &bound) == 0) s->inode_ = bound.st_ino;
  ::chmod(path.c_str(), 0600);  // the store's owner only
  if (::pipe2(s->wake_pipe_, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  s->thread_ = std::thread([srv = s.get()] { srv->Serve(); });
  *out = std::move(s);
  return Status::Ok();
}

ControlServer::~ControlServer() {
  if (wake_pipe_[1] >= 0) {
    char c = 1;
    (void)!::write(wake_pipe_[1], &c, 1);
  }
  if (thread_.joinable()) thread_.join();
  for (auto& h : handlers_) h.thread.join();
  for (int fd : {listen_fd_, wake_pipe_[0], wake_pipe_[1]}) {
    if (fd >= 0) ::close(fd);
  }
  // Only our own socket: a daemon that took the path over keeps its own.
  struct stat now;
  if (!path_.empty() && ::stat(path_.c_str(), &now) == 0 && now.st_ino == inode_) {
    ::unlink(path_.c_str());
  }
}

void ControlServer::Serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    // Finished handlers are joined here; long requests (an assembly) never
    // hold up short ones (a listing, a restore).
    std::erase_if(handlers_, [](Worker& h) {
      if (!h.done->load()) return false;
      h.thread.join();
      return true;
    });
    if (handlers_.size() >= kMaxHandlers) {
      // The request already sent is read first: closing with unread input
      // would reset the connection before the answer is read.
      char sink[4096];
      while (::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
      }
      WriteAll(fd, "error\t" + std::to_string(static_cast<int>(Status::Code::kUnavailable)) +
                       "\tlsifs is busy with " + std::to_string(handlers_.size()) +
                       " requests; try again shortly\n");
      ::shutdown(fd, SHUT_WR);
      ::close(fd);
      continue;
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    handlers_.push_back({std::thread([this, fd, done] {
                           Handle(fd);
                           done->store(true);
                         }),
                         done});
  }
}

void ControlServer::Handle(int fd) {
  // The whole request must arrive within the deadline, however slowly a
  // client sends it: one slow client holds one handler for 5 s at most.
  const auto deadline = std::chrono::steady_clock::now() + kRequestDeadline;
  auto remaining_ms = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(0, left.count()));
  };
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string line;
  char buf[4096];
  bool timed_out = false;
  while (line.find('\n') == std::string::npos && line.size() <= kMaxRequest) {
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, remaining_ms());
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) timed_out = true;
    if (ready <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  size_t nl = line.find('\n');
  if (nl == std::string::npos || nl > kMaxRequest) {
    Status st = timed_out ? Status::InvalidArgument("request not received within 5 s")
                : line.size() > kMaxRequest
                    ? Status::InvalidArgument("request larger than " +
                                              std::to_string(kMaxRequest / 1024) + " KiB")
                    : Status::InvalidArgument("malformed request (no end of line)");
    WriteAll(fd,
             "error\t" + std::to_string(static_cast<int>(st.code())) + "\t" + st.message() + "\n");
    // Unread input would make close() reset the connection before the
    // client reads the answer: say we are done, and drain what it still
    // sends until it closes or the deadline.
    ::shutdown(fd, SHUT_WR);
    while (remaining_ms() > 0) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, remaining_ms()) <= 0) break;
      if (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0) break;
    }
    ::close(fd);
    return;
  }
  std::string body;
  // Progress goes out at most ten times a second; a caller that went away
  // does not stop the work.
  auto last = std::chrono::steady_clock::time_point();
  Progress progress = [&](uint64_t done, uint64_t total) {
    auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::milliseconds(100) && done != total) return;
    last = now;
    // Never blocks the work: a report the socket has no room for is dropped.
    std::string report = "progress\t" + std::to_string(done) + "\t" + std::to_string(total) + "\n";
    ssize_t n = ::send(fd, report.data(), report.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0 && static_cast<size_t>(n) < report.size())
      WriteAll(fd, report.substr(static_cast<size_t>(n)));
  };
  Status st = handler_(Split(line.substr(0, nl), '\t'), progress, &body);
  std::string reply = st.ok() ? "ok\n" + body
                              : "error\t" + std::to_string(static_cast<int>(st.code())) + "\t" +
                                    st.message() + "\n";
  WriteAll(fd, reply);
  ::close(fd);
}

Status ControlCall(const std::string& path, const std::vector<std::string>& request,
                   std::string* body, std::chrono::seconds timeout, bool* reached,
                   const ControlServer::Progress& progress) {
  if (reached != nullptr) *reached = false;
  SocketAddress addr;
  LSIFS_RETURN_IF_ERROR(addr.Set(path));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("socket", errno);
  if (::connect(fd, addr.get(), addr.size()) != 0) {
    int e = errno;
    ::close(fd);
    if (e == ENOENT || e == ECONNREFUSED) return Status::Unavailable("no daemon at " + path);
    return Status::FromErrno("control socket " + path, e);
  }
  // A daemon that stops answering must not hang lsictl.
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string line;
  for (size_t i = 0; i < request.size(); ++i) line += (i ? "\t" : "") + request[i];
  line += "\n";
  if (!WriteAll(fd, line)) {
    ::close(fd);
    return Status::IOError("control socket " + path + ": the daemon closed the connection");
  }
  std::string reply;
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
    reply.append(buf, static_cast<size_t>(n));
    // Progress reports come first, a line each.
    size_t line_end;
    while (reply.rfind("progress\t", 0) == 0 &&
           (line_end = reply.find('\n')) != std::string::npos) {
      auto f = Split(reply.substr(0, line_end), '\t');
      if (progress && f.size() == 3) {
        progress(std::strtoull(f[1].c_str(), nullptr, 10),
                 std::strtoull(f[2].c_str(), nullptr, 10));
      }
      reply.erase(0, line_end + 1);
    }
  }
  ::close(fd);
  size_t nl = reply.find('\n');
  if (nl == std::string::npos) {
    if (reached != nullptr) *reached = true;
    return Status::IOError(
        "control socket " + path +
        ": the daemon sent no answer in time (see its log: journalctl -t lsifs)");
  }
  std::string head = reply.substr(0, nl);
  if (reached != nullptr) *reached = true;
  if (head == "ok") {
    *body = reply.substr(nl + 1);
    return Status::Ok();
  }
  auto f = Split(head, '\t');
  if (f.size() >= 3 && f[0] == "error") return Status::FromCode(std::atoi(f[1].c_str()), f[2]);
  return Status::IOError("control socket: malformed reply");
}

}  // namespace lsifs
