// The daemon's /metrics endpoint (-o metrics=ADDR:PORT): a small HTTP/1.1
// server on Boost.Beast, one thread, one short request per connection, for
// Prometheus to scrape. Off unless asked for.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/util/status.h"

namespace lsifs {

class MetricsServer {
 public:
  // Listens on `address` ("127.0.0.1:9100", "[::1]:9100"; port 0 picks
  // one) at once, so that a taken port is refused before a daemon forks.
  static Status Listen(const std::string& address, std::unique_ptr<MetricsServer>* out);
  // Answers GET /metrics with what `render` returns (Prometheus text), on a
  // thread of its own (started here: after a fork, not before). `render`
  // runs on that thread.
  [[nodiscard]] Status Serve(std::function<std::string()> render);
  ~MetricsServer();  // stops serving; returns once the thread is gone
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Where it listens, as ADDR:PORT (the port chosen when 0 was asked).
  std::string endpoint() const;

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lsifs
