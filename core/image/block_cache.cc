#include "core/image/block_cache.h"

#include <cstring>

namespace lsifs {

BlockCache::BlockCache(uint64_t capacity_bytes, uint32_t block_size)
    : block_size_(block_size), sets_(static_cast<size_t>(capacity_bytes / block_size / kWays)) {
  if (!sets_.empty()) data_.reset(new uint8_t[sets_.size() * kWays * block_size]);
}

bool BlockCache::Get(uint64_t block, uint32_t offset, uint32_t len, uint8_t* out) {
  if (sets_.empty()) return false;
  Set& set = SetFor(block);
  std::lock_guard<std::mutex> lock(set.mu);
  for (int w = 0; w < kWays; ++w) {
    if (set.tags[w] == block) {
      set.age[w] = ++set.clock;
      std::memcpy(out, Data(set, w) + offset, len);
      return true;
    }
  }
  return false;
}

void BlockCache::Put(uint64_t block, const uint8_t* data) {
  if (sets_.empty()) return;
  Set& set = SetFor(block);
  std::lock_guard<std::mutex> lock(set.mu);
  int victim = 0;
  for (int w = 0; w < kWays; ++w) {
    if (set.tags[w] == block) return;
    if (set.tags[w] == kEmpty || set.age[w] < set.age[victim]) victim = w;
    if (set.tags[w] == kEmpty) break;
  }
  set.tags[victim] = block;
  set.age[victim] = ++set.clock;
  std::memcpy(Data(set, victim), data, block_size_);
}

}  // namespace lsifs
