// A one-line progress bar with throughput and ETA, drawn on stderr only when
// stderr is a terminal (scripts and logs see nothing).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lsifs {

class ProgressBar {
 public:
  // `force` draws even when stderr is not a terminal (tests).
  explicit ProgressBar(std::string label, bool force = false);
  ~ProgressBar() { Finish(); }

  void Update(uint64_t done, uint64_t total);
  void Finish();

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// "1.5 GiB", "64.0 KiB", "12 B".
std::string FormatBytes(uint64_t bytes);
// "2026-11-25T18:20:50Z": a unix time in seconds, UTC, as every listing shows it.
std::string FormatTime(int64_t unix_seconds);

}  // namespace lsifs
