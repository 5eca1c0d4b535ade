// What goes into logs: one line per event, printable, and not a flood.
// Text in a log line may come from files not yet authenticated (a header's
// name, a path); a newline or escape sequence in it could forge lines or
// drive a terminal, so every line is made printable where it is written.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace lsifs {

// `text` with every byte outside printable ASCII written as \xNN (and a
// backslash as \\), so that it is one harmless line.
std::string PrintableLine(std::string_view text);

// Lets `burst` lines through per `window`, counts the rest, and says how
// many were suppressed with the first line of the next window: a damaged
// layer read in a loop logs a few lines a minute, not one per read.
class LogLimiter {
 public:
  using Sink = std::function<void(const std::string&)>;
  LogLimiter(uint32_t burst, std::chrono::seconds window) : burst_(burst), window_(window) {}
  void Log(const Sink& sink, const std::string& line);
  uint64_t suppressed_total() const;

 private:
  const uint32_t burst_;
  const std::chrono::seconds window_;
  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point window_start_{};
  uint32_t in_window_ = 0;
  uint64_t suppressed_ = 0;  // in the current window
  uint64_t suppressed_total_ = 0;
};

}  // namespace lsifs
