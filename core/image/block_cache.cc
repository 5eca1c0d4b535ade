#include "core/image/block_cache.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <new>

#include "core/util/numbers.h"

namespace lsifs {

Status BlockCache::CheckCapacity(uint64_t capacity_bytes) {
  uint64_t memory = static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) *
                    static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  // A container's limit, when it has one, is the memory there is.
  std::ifstream cgroup("/sys/fs/cgroup/memory.max");
  std::string limit;
  uint64_t cgroup_bytes = 0;
  if (std::getline(cgroup, limit) &&
      ParseUnsigned(limit, "memory.max", 1, UINT64_MAX, &cgroup_bytes).ok()) {
    memory = std::min(memory, cgroup_bytes);
  }
  if (capacity_bytes > memory / 2) {
    return Status::InvalidArgument(
        std::to_string(capacity_bytes >> 20) + " MiB is more than half of this machine's memory (" +
        std::to_string(memory >> 20) + " MiB); choose a smaller cache_size");
  }
  return Status::Ok();
}

Status BlockCache::Make(uint64_t capacity_bytes, uint32_t block_size,
                        std::unique_ptr<BlockCache>* out) {
  out->reset();
  const uint64_t sets = block_size == 0 ? 0 : capacity_bytes / block_size / kWays;
  if (sets == 0) return Status::Ok();
  LSIFS_RETURN_IF_ERROR(CheckCapacity(capacity_bytes));
  std::unique_ptr<BlockCache> cache(new (std::nothrow) BlockCache(block_size, 0));
  if (cache) {
    try {
      cache->sets_ = std::vector<Set>(static_cast<size_t>(sets));
      cache->data_.reset(new (std::nothrow) uint8_t[sets * kWays * block_size]);
    } catch (const std::exception&) {  // bad_alloc, or length_error
      cache->data_.reset();
    }
  }
  if (!cache || !cache->data_) {
    return Status::InvalidArgument("cannot reserve " + std::to_string(capacity_bytes >> 20) +
                                   " MiB for the block cache; choose a smaller cache_size");
  }
  *out = std::move(cache);
  return Status::Ok();
}

bool BlockCache::Get(uint64_t lsi, uint64_t block, uint32_t offset, uint32_t len, uint8_t* out) {
  const Tag tag{lsi, block};
  Set& set = SetFor(tag);
  std::lock_guard<std::mutex> lock(set.mu);
  for (int w = 0; w < kWays; ++w) {
    if (set.tags[w] == tag) {
      set.age[w] = ++set.clock;
      std::memcpy(out, Data(set, w) + offset, len);
      return true;
    }
  }
  return false;
}

void BlockCache::Put(uint64_t lsi, uint64_t block, const uint8_t* data) {
  const Tag tag{lsi, block};
  Set& set = SetFor(tag);
  std::lock_guard<std::mutex> lock(set.mu);
  int victim = 0;
  for (int w = 0; w < kWays; ++w) {
    if (set.tags[w] == tag) return;
    if (set.tags[w].lsi == 0 || set.age[w] < set.age[victim]) victim = w;
    if (set.tags[w].lsi == 0) break;
  }
  if (set.tags[victim].lsi == 0) used_.fetch_add(1, std::memory_order_relaxed);
  set.tags[victim] = tag;
  set.age[victim] = ++set.clock;
  std::memcpy(Data(set, victim), data, block_size_);
}

}  // namespace lsifs
