// The control socket: how lsictl reaches a running lsifs, which holds the
// store's LevelDB. A Unix stream socket (Store::control_socket_path); one request
// per connection:
//
//   request:  fields separated by TAB, ended by LF
//   response: "ok" LF, then the body until the connection closes; or
//             "error" TAB code TAB message LF
//
// Codes are Status codes (see util/status.h) as numbers.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/util/status.h"

namespace lsifs {

class ControlServer {
 public:
  using Handler = std::function<Status(const std::vector<std::string>& request, std::string* body)>;
  // Listens at `path` (replacing a socket left by a dead process).
  static Status Start(const std::string& path, Handler handler,
                      std::unique_ptr<ControlServer>* out);
  ~ControlServer();

 private:
  ControlServer() = default;
  void Serve();

  std::string path_;
  Handler handler_;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  std::thread thread_;
};

// Sends a request to the daemon at `path` and waits up to `timeout` for the
// answer. Unavailable when no daemon listens there; otherwise the daemon's
// status and body.
Status ControlCall(const std::string& path, const std::vector<std::string>& request,
                   std::string* body, std::chrono::seconds timeout = std::chrono::seconds(60));

}  // namespace lsifs
