#include "core/util/log.h"

#include <cstdio>

namespace lsifs {

std::string PrintableLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\\') {
      out += "\\\\";
    } else if (u < 0x20 || u >= 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", u);
      out += hex;
    } else {
      out += c;
    }
  }
  return out;
}

void LogLimiter::Log(const Sink& sink, const std::string& line) {
  std::string note;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = std::chrono::steady_clock::now();
    if (now - window_start_ >= window_) {
      if (suppressed_ > 0) {
        note = "(" + std::to_string(suppressed_) + " similar lines suppressed in the last " +
               std::to_string(window_.count()) + " s)";
      }
      window_start_ = now;
      in_window_ = 0;
      suppressed_ = 0;
    }
    if (in_window_ >= burst_) {
      ++suppressed_;
      ++suppressed_total_;
      return;
    }
    ++in_window_;
  }
  if (!sink) return;
  if (!note.empty()) sink(note);
  sink(line);
}

uint64_t LogLimiter::suppressed_total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return suppressed_total_;
}

}  // namespace lsifs
