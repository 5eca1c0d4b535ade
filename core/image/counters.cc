#include "core/image/counters.h"

#include <cstdio>

#include "core/util/json.h"

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

#define LSIFS_COUNTER_FIELDS(X)                                                           \
  X(reads)                                                                                \
  X(blocks_read)                                                                          \
  X(from_delta)                                                                           \
  X(from_base)                                                                            \
  X(zero) X(origin_requests) X(origin_bytes) X(stalled_reads) X(prefetched_blocks)        \
      X(prefetched_read) X(read_errors) X(expanded_blocks) X(expanded_read) X(late_reads) \
          X(waited_blocks)

std::string CounterValues::ToText() const {
  std::string out;
  char line[160];
#define LSIFS_TEXT_LINE(name)                                 \
  std::snprintf(line, sizeof line, "%-18s %llu\n", #name ":", \
                static_cast<unsigned long long>(name));       \
  out += line;
  LSIFS_COUNTER_FIELDS(LSIFS_TEXT_LINE)
#undef LSIFS_TEXT_LINE
  std::snprintf(line, sizeof line, "%-18s %.3f\n%-18s %.3f\n%-18s %.3f\n%-18s %.3f\n",
                "recall:", recall(), "precision:", precision(), "no_wait_share:", no_wait_share(),
                "wan_precision:", wan_precision());
  out += line;
  return out;
}

std::string CounterValues::ToJson() const {
  JsonWriter j;
  j.BeginObject();
#define LSIFS_JSON_FIELD(name) j.Field(#name, name);
  LSIFS_COUNTER_FIELDS(LSIFS_JSON_FIELD)
#undef LSIFS_JSON_FIELD
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

}  // namespace lsifs
