// The origin interface: the only way the read path and the assembler reach
// base-snapshot blocks. On one host, LocalOrigin opens them in-process with
// the provider key; in a two-site deployment a region service would
// re-encrypt each block for the requesting extension and this interface would
// be its client. ThrottledOrigin stacks the WAN model on any origin.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "core/origin/snapshot.h"
#include "core/util/status.h"

namespace lsifs {

// One snapshot as seen through an origin: its facts, which blocks are
// present, and block fetches. Thread-safe.
class OriginSnapshot {
 public:
  virtual ~OriginSnapshot() = default;
  virtual const SnapshotInfo& info() const = 0;
  // The present blocks, ascending: everything else reads as zeros.
  virtual const std::vector<uint64_t>& present() const = 0;
  // Fetches blocks in ONE origin request (one round trip). outs[i] receives
  // block blocks[i] (block_size bytes); every block must be present. A block
  // failing authentication fails the whole request, naming the block.
  virtual Status Fetch(std::span<const uint64_t> blocks, std::span<uint8_t* const> outs) = 0;
};

class Origin {
 public:
  virtual ~Origin() = default;
  virtual Status OpenSnapshot(const std::string& volume, uint64_t id,
                              std::unique_ptr<OriginSnapshot>* out) = 0;
};

// Blocks straight from the store, opened with the provider key.
class LocalOrigin : public Origin {
 public:
  // `store` and `keys` must outlive the origin and its snapshots.
  LocalOrigin(const Store& store, const OriginKeys& keys) : store_(store), keys_(keys) {}
  Status OpenSnapshot(const std::string& volume, uint64_t id,
                      std::unique_ptr<OriginSnapshot>* out) override;

 private:
  const Store& store_;
  const OriginKeys& keys_;
};

// The WAN model: every request pays one round trip (`latency`), and all
// requests share one bandwidth limit (`bytes_per_second`, 0 = unlimited).
// Requests run in parallel, as a real client's would.
struct WanProfile {
  std::chrono::microseconds latency{0};
  uint64_t bytes_per_second = 0;
  bool enabled() const { return latency.count() > 0 || bytes_per_second > 0; }
};

// Parses "40ms", "1.5s", "250us" / "200Mbit", "1Gbit", "25MB" (bytes/s).
Status ParseLatency(const std::string& text, std::chrono::microseconds* out);
Status ParseBandwidth(const std::string& text, uint64_t* bytes_per_second);

class ThrottledOrigin : public Origin {
 public:
  ThrottledOrigin(Origin& inner, WanProfile profile);
  Status OpenSnapshot(const std::string& volume, uint64_t id,
                      std::unique_ptr<OriginSnapshot>* out) override;

  // Waits out one request of `bytes`: latency, then its share of bandwidth.
  void Pay(uint64_t bytes);

 private:
  Origin& inner_;
  WanProfile profile_;
  std::mutex mu_;  // guards the bandwidth schedule only, never held while sleeping
  std::chrono::steady_clock::time_point link_free_;
};

}  // namespace lsifs
