// A bounded cache of decrypted blocks, one for every image of a mount (so
// that its cap is one cap however many images are open): entries are
// tagged by LSI and block. Set-associative (4 ways), one small lock per set,
// all memory reserved up front, so that lookups and inserts allocate nothing
// and threads touching different sets never contend.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/util/encoding.h"
#include "core/util/status.h"

namespace lsifs {

class BlockCache {
 public:
  // A cache of at most `capacity_bytes` of blocks of `block_size` bytes;
  // fewer bytes than four blocks make no cache (*out null). Fails, rather
  // than abort, when the memory cannot be reserved.
  static Status Make(uint64_t capacity_bytes, uint32_t block_size,
                     std::unique_ptr<BlockCache>* out);
  // Whether a cache of `capacity_bytes` may be asked for at all: at most
  // half of the memory there is (the machine's, or the cgroup's memory.max
  // when that is less). Make checks it too; this says so before a mount.
  static Status CheckCapacity(uint64_t capacity_bytes);
  uint64_t capacity_bytes() const { return sets_.size() * kWays * block_size_; }
  // Bytes of the capacity holding a block (slots are never emptied).
  uint64_t used_bytes() const { return used_.load(std::memory_order_relaxed) * block_size_; }
  uint32_t block_size() const { return block_size_; }

  // Copies `len` bytes from `offset` inside block `block` of LSI `lsi`
  // (nonzero) into `out`; false on a miss.
  bool Get(uint64_t lsi, uint64_t block, uint32_t offset, uint32_t len, uint8_t* out);
  void Put(uint64_t lsi, uint64_t block, const uint8_t* data);

 private:
  static constexpr int kWays = 4;
  struct Tag {
    uint64_t lsi = 0;  // 0: empty
    uint64_t block = 0;
    bool operator==(const Tag&) const = default;
  };
  struct Set {
    std::mutex mu;
    Tag tags[kWays];
    uint32_t age[kWays] = {0, 0, 0, 0};  // larger = more recently used
    uint32_t clock = 0;
  };
  BlockCache(uint32_t block_size, size_t sets) : block_size_(block_size), sets_(sets) {}

  Set& SetFor(const Tag& t) { return sets_[Mix(t.block ^ Mix(t.lsi)) % sets_.size()]; }
  uint8_t* Data(const Set& set, int way) {
    size_t index = static_cast<size_t>(&set - sets_.data()) * kWays + static_cast<size_t>(way);
    return data_.get() + index * block_size_;
  }
  static uint64_t Mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
  }

  uint32_t block_size_;
  std::atomic<uint64_t> used_{0};
  std::vector<Set> sets_;
  std::unique_ptr<uint8_t[]> data_;
};

}  // namespace lsifs
