#include "core/image/counters.h"

#include <algorithm>
#include <cstdio>
#include <string_view>

#include "core/util/json.h"
#include "core/util/progress.h"

namespace lsifs {

double CounterValues::recall() const {
  uint64_t d = from_delta + from_base;
  return d == 0 ? 0.0 : static_cast<double>(from_delta) / static_cast<double>(d);
}

double CounterValues::precision() const {
  return prefetched_blocks == 0
             ? 0.0
             : static_cast<double>(prefetched_read) / static_cast<double>(prefetched_blocks);
}

double CounterValues::no_wait_share() const {
  return blocks_read == 0
             ? 1.0
             : 1.0 - static_cast<double>(waited_blocks) / static_cast<double>(blocks_read);
}

double CounterValues::wan_precision() const {
  uint64_t brought = prefetched_blocks + expanded_blocks;
  return brought == 0
             ? 0.0
             : static_cast<double>(prefetched_read + expanded_read) / static_cast<double>(brought);
}

const std::array<CounterField, 15> kCounterFields = {{
    {"reads", "Read requests served.", &CounterValues::reads, false},
    {"blocks_read", "Distinct blocks read.", &CounterValues::blocks_read, false},
    {"from_delta", "Distinct blocks served from the delta layers (pre-assembled).",
     &CounterValues::from_delta, false},
    {"from_base", "Distinct blocks served from the base snapshot (fetched or local).",
     &CounterValues::from_base, false},
    {"zero", "Distinct absent (zero) blocks read.", &CounterValues::zero, false},
    {"origin_requests", "Requests sent to the origin.", &CounterValues::origin_requests, false},
    {"origin_bytes", "Bytes fetched from the origin.", &CounterValues::origin_bytes, false},
    {"stalled_reads", "Read requests that waited on the origin.", &CounterValues::stalled_reads,
     false},
    {"prefetched_blocks", "Blocks held in the delta layers.", &CounterValues::prefetched_blocks,
     true},
    {"prefetched_read", "Distinct delta-layer blocks read.", &CounterValues::prefetched_read,
     false},
    {"read_errors", "Read requests failed with EIO.", &CounterValues::read_errors, false},
    {"expanded_blocks", "Blocks brought by read-time expansion.", &CounterValues::expanded_blocks,
     false},
    {"expanded_read", "Distinct blocks brought by expansion that were read.",
     &CounterValues::expanded_read, false},
    {"late_reads", "Read requests that waited for a block already in flight.",
     &CounterValues::late_reads, false},
    {"waited_blocks", "Distinct blocks whose first read waited on the origin.",
     &CounterValues::waited_blocks, false},
}};

std::string CounterValues::Table(const CounterValues& session, const CounterValues& lsi) {
  std::string out;
  char line[160];
  std::snprintf(line, sizeof line, "%-18s %14s %14s\n", "COUNTER", "SESSION", "LSI");
  out += line;
  for (const auto& f : kCounterFields) {
    const bool bytes = std::string_view(f.name).ends_with("_bytes");
    auto show = [&](const CounterValues& v) {
      return bytes ? FormatBytes(v.*f.value) : std::to_string(v.*f.value);
    };
    std::snprintf(line, sizeof line, "%-18s %14s %14s\n", f.name, show(session).c_str(),
                  show(lsi).c_str());
    out += line;
  }
  const std::pair<const char*, double (CounterValues::*)() const> shares[] = {
      {"recall", &CounterValues::recall},
      {"precision", &CounterValues::precision},
      {"no_wait_share", &CounterValues::no_wait_share},
      {"wan_precision", &CounterValues::wan_precision}};
  for (const auto& [name, share] : shares) {
    std::snprintf(line, sizeof line, "%-18s %13.1f%% %13.1f%%\n", name, 100 * (session.*share)(),
                  100 * (lsi.*share)());
    out += line;
  }
  return out;
}

std::string CounterValues::ToJson() const {
  JsonWriter j;
  j.BeginObject();
  for (const auto& f : kCounterFields) j.Field(f.name, this->*f.value);
  j.Field("recall", recall())
      .Field("precision", precision())
      .Field("no_wait_share", no_wait_share())
      .Field("wan_precision", wan_precision())
      .EndObject();
  return j.str();
}

BlockBitmap::BlockBitmap(uint64_t blocks)
    : chunks_(static_cast<size_t>((blocks + kBitsPerChunk - 1) / kBitsPerChunk)) {
  for (auto& c : chunks_) c.store(nullptr, std::memory_order_relaxed);
}

BlockBitmap::~BlockBitmap() {
  for (auto& c : chunks_) delete[] c.load();
}

bool BlockBitmap::TestAndSet(uint64_t block) {
  size_t ci = static_cast<size_t>(block / kBitsPerChunk);
  if (ci >= chunks_.size()) return false;
  std::atomic<uint64_t>* chunk = chunks_[ci].load(std::memory_order_acquire);
  if (chunk == nullptr) {
    // Once per 32768 blocks, never again for this chunk.
    auto* fresh = new std::atomic<uint64_t>[kBitsPerChunk / 64]();
    if (chunks_[ci].compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel)) {
      chunk = fresh;
    } else {
      delete[] fresh;
    }
  }
  uint64_t bit = block % kBitsPerChunk;
  uint64_t mask = uint64_t{1} << (bit % 64);
  return (chunk[bit / 64].fetch_or(mask, std::memory_order_relaxed) & mask) == 0;
}

void BlockBitmap::Clear() {
  for (auto& c : chunks_) {
    if (auto* chunk = c.load()) {
      for (uint64_t i = 0; i < kBitsPerChunk / 64; ++i) chunk[i].store(0);
    }
  }
}

Counters::Counters(uint64_t volume_blocks, uint64_t prefetched_blocks)
    : prefetched_blocks_(prefetched_blocks), seen_(volume_blocks) {}

bool Counters::CountBlock(uint64_t block, BlockSource source, bool waited) {
  if (!seen_.TestAndSet(block)) return false;
  if (waited) waited_.fetch_add(1, std::memory_order_relaxed);
  switch (source) {
    case BlockSource::kDelta:
      from_delta_.fetch_add(1, std::memory_order_relaxed);
      break;
    case BlockSource::kBase:
      from_base_.fetch_add(1, std::memory_order_relaxed);
      break;
    case BlockSource::kZero:
      zero_.fetch_add(1, std::memory_order_relaxed);
      break;
  }
  return true;
}

CounterValues Counters::Values() const {
  CounterValues v;
  v.reads = reads_.load();
  v.from_delta = from_delta_.load();
  v.from_base = from_base_.load();
  v.zero = zero_.load();
  v.blocks_read = v.from_delta + v.from_base + v.zero;
  v.origin_requests = origin_requests_.load();
  v.origin_bytes = origin_bytes_.load();
  v.stalled_reads = stalled_.load();
  v.prefetched_blocks = prefetched_blocks_;
  v.prefetched_read = v.from_delta;
  v.read_errors = errors_.load();
  v.expanded_blocks = expanded_.load();
  v.expanded_read = expanded_read_.load();
  v.late_reads = late_.load();
  v.waited_blocks = waited_.load();
  return v;
}

void Counters::Reset() {
  seen_.Clear();
  for (auto* a : {&reads_, &stalled_, &errors_, &origin_requests_, &origin_bytes_, &from_delta_,
                  &from_base_, &zero_, &late_, &expanded_, &expanded_read_, &waited_}) {
    a->store(0);
  }
}

void WaitHistogram::Observe(std::chrono::nanoseconds wait) {
  const double seconds = std::chrono::duration<double>(wait).count();
  size_t bucket = 0;
  while (bucket < kBounds.size() && seconds > kBounds[bucket]) ++bucket;
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(std::max<int64_t>(0, wait.count())),
                    std::memory_order_relaxed);
}

WaitHistogram::Values WaitHistogram::Read() const {
  Values v;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    v.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    v.count += v.buckets[i];
  }
  v.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return v;
}

}  // namespace lsifs
