// A bounded cache of decrypted blocks: set-associative (4 ways), one small
// lock per set, all memory reserved up front, so that lookups and inserts
// allocate nothing and threads touching different sets never contend.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/util/encoding.h"

namespace lsifs {

class BlockCache {
 public:
  // Holds at most capacity_bytes / block_size blocks (0 disables the cache).
  BlockCache(uint64_t capacity_bytes, uint32_t block_size);

  // Copies `len` bytes from `offset` inside cached block `block` into `out`;
  // false on a miss.
  bool Get(uint64_t block, uint32_t offset, uint32_t len, uint8_t* out);
  void Put(uint64_t block, const uint8_t* data);

 private:
  static constexpr int kWays = 4;
  static constexpr uint64_t kEmpty = UINT64_MAX;
  struct Set {
    std::mutex mu;
    uint64_t tags[kWays] = {kEmpty, kEmpty, kEmpty, kEmpty};
    uint32_t age[kWays] = {0, 0, 0, 0};  // larger = more recently used
    uint32_t clock = 0;
  };

  Set& SetFor(uint64_t block) { return sets_[Mix(block) % sets_.size()]; }
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
  std::vector<Set> sets_;
  std::unique_ptr<uint8_t[]> data_;
};

}  // namespace lsifs
