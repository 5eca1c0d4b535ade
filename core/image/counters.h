// Read counters of an LSI or of a session, with the names of DESIGN.md.
// Updated with relaxed atomics on the read path; read as a consistent-enough
// snapshot for display.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace lsifs {

struct CounterValues {
  uint64_t reads = 0;              // requests
  uint64_t blocks_read = 0;        // distinct blocks read
  uint64_t from_delta = 0;         // distinct blocks served from delta layers
  uint64_t from_base = 0;          // distinct blocks served from the base snapshot
  uint64_t zero = 0;               // distinct absent (zero) blocks read
  uint64_t origin_requests = 0;    // requests sent to the origin
  uint64_t origin_bytes = 0;       // bytes fetched from the origin
  uint64_t stalled_reads = 0;      // requests that waited on the origin
  uint64_t prefetched_blocks = 0;  // blocks held in delta layers
  uint64_t prefetched_read = 0;    // distinct delta blocks read
  uint64_t read_errors = 0;        // requests failed with EIO
  uint64_t expanded_blocks = 0;    // blocks brought by read-time expansion
  uint64_t expanded_read = 0;      // distinct blocks of those read
  uint64_t late_reads = 0;         // requests that waited for a block already in flight
  uint64_t waited_blocks = 0;      // distinct blocks whose first read waited on the origin

  double recall() const;         // from_delta / (from_delta + from_base)
  double precision() const;      // prefetched_read / prefetched_blocks
  double no_wait_share() const;  // 1 - waited_blocks / blocks_read
  // (prefetched_read + expanded_read) / (prefetched_blocks + expanded_blocks)
  double wan_precision() const;
  std::string ToJson() const;
  // For people: a session's and an LSI's counters side by side, bytes in
  // human units, shares in percent.
  static std::string Table(const CounterValues& session, const CounterValues& lsi);
};

// Every counter of CounterValues with its name (as DESIGN.md, the JSON and
// the metrics call it) and meaning; `gauge`: a level, not a running count.
struct CounterField {
  const char* name;
  const char* help;
  uint64_t CounterValues::*value;
  bool gauge;
};
extern const std::array<CounterField, 15> kCounterFields;

// One bit per block, in chunks allocated on first touch, so memory follows
// the blocks actually read rather than the volume's virtual size.
class BlockBitmap {
 public:
  explicit BlockBitmap(uint64_t blocks);
  ~BlockBitmap();
  BlockBitmap(const BlockBitmap&) = delete;
  BlockBitmap& operator=(const BlockBitmap&) = delete;
  // Sets the bit; true if it was clear.
  bool TestAndSet(uint64_t block);
  void Clear();

 private:
  static constexpr uint64_t kBitsPerChunk = 1 << 15;
  std::vector<std::atomic<std::atomic<uint64_t>*>> chunks_;
};

// How long reads waited on the origin: fixed buckets (seconds, as
// Prometheus histograms have them), counted with relaxed atomics on the read
// path; one per mount, across its images.
class WaitHistogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1,    2.5,   5};
  struct Values {
    std::array<uint64_t, kBounds.size() + 1> buckets{};  // per bucket, the last is +Inf
    uint64_t count = 0;
    double sum_seconds = 0;
  };

  void Observe(std::chrono::nanoseconds wait);
  Values Read() const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
};

enum class BlockSource { kDelta, kBase, kZero };

class Counters {
 public:
  Counters(uint64_t volume_blocks, uint64_t prefetched_blocks);
  void SetPrefetchedBlocks(uint64_t n) { prefetched_blocks_ = n; }

  void CountRead() { reads_.fetch_add(1, std::memory_order_relaxed); }
  void CountStall() { stalled_.fetch_add(1, std::memory_order_relaxed); }
  void CountError() { errors_.fetch_add(1, std::memory_order_relaxed); }
  void CountLateRead() { late_.fetch_add(1, std::memory_order_relaxed); }
  void CountExpanded(uint64_t blocks) { expanded_.fetch_add(blocks, std::memory_order_relaxed); }
  void CountExpandedRead() { expanded_read_.fetch_add(1, std::memory_order_relaxed); }
  void CountOriginRequest(uint64_t bytes) {
    origin_requests_.fetch_add(1, std::memory_order_relaxed);
    origin_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  }
  // Counts `block` once, by where it came from (and whether that first read
  // waited on the origin), the first time it is read; true that first time.
  bool CountBlock(uint64_t block, BlockSource source, bool waited = false);

  CounterValues Values() const;
  void Reset();

 private:
  uint64_t prefetched_blocks_;
  BlockBitmap seen_;
  std::atomic<uint64_t> reads_{0}, stalled_{0}, errors_{0}, origin_requests_{0}, origin_bytes_{0};
  std::atomic<uint64_t> from_delta_{0}, from_base_{0}, zero_{0};
  std::atomic<uint64_t> late_{0}, expanded_{0}, expanded_read_{0}, waited_{0};
};

}  // namespace lsifs
