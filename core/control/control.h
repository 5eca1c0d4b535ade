// The control socket: how lsictl reaches a running lsifs, which holds the
// store's LevelDB. A Unix stream socket (Store::control_socket_path); one request
// per connection:
//
//   request:  fields separated by TAB, ended by LF
//   response: any number of "progress" TAB done TAB total LF while long
//             work runs, then "ok" LF and the body until the connection
//             closes, or "error" TAB code TAB message LF
//
// Codes are Status codes (see util/status.h) as numbers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/util/status.h"

namespace lsifs {

class ControlServer {
 public:
  // Reports progress of long work (done, total) to the caller while the
  // request runs.
  using Progress = std::function<void(uint64_t done, uint64_t total)>;
  using Handler = std::function<Status(const std::vector<std::string>& request,
                                       const Progress& progress, std::string* body)>;
  // Listens at `path`, replacing a socket left by a dead process; one a
  // live daemon answers is refused (kExists) unless `take_over` is set.
  static Status Start(const std::string& path, Handler handler, std::unique_ptr<ControlServer>* out,
                      bool take_over = false);
  ~ControlServer();

 private:
  ControlServer() = default;
  void Serve();
  void Handle(int fd);

  // Requests are served each on its own thread, at most this many at once.
  static constexpr size_t kMaxHandlers = 16;
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Worker> handlers_;  // touched by the serving thread only

  std::string path_;
  uint64_t inode_ = 0;  // of the socket bound at path_
  Handler handler_;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  std::thread thread_;
};

// Sends a request to the daemon at `path` and waits up to `timeout` for the
// answer (or between two progress reports, passed to `progress`): the
// daemon's status and body. Unavailable when no daemon listens there;
// `*reached` tells that case from the daemon's own Unavailable.
Status ControlCall(const std::string& path, const std::vector<std::string>& request,
                   std::string* body, std::chrono::seconds timeout = std::chrono::seconds(60),
                   bool* reached = nullptr, const ControlServer::Progress& progress = nullptr);

}  // namespace lsifs
