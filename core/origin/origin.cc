#include "core/origin/origin.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "core/crypto/aead.h"

namespace lsifs {
namespace {

class LocalSnapshot : public OriginSnapshot {
 public:
  explicit LocalSnapshot(std::unique_ptr<SnapshotBlocks> blocks) : blocks_(std::move(blocks)) {
    present_.reserve(blocks_->map().size());
    for (const auto& loc : blocks_->map()) present_.push_back(loc.block);
  }

  const SnapshotInfo& info() const override { return blocks_->info(); }
  const std::vector<uint64_t>& present() const override { return present_; }

  Status Fetch(std::span<const uint64_t> blocks, std::span<uint8_t* const> outs) override {
    // Fetches are rare next to reads and cross the origin boundary; the
    // per-thread scratch keeps them allocation-free after the first.
    thread_local Aead aead;
    thread_local Bytes record;
    const uint32_t bs = blocks_->info().block_size;
    record.resize(bs + kSealOverhead);
    for (size_t i = 0; i < blocks.size(); ++i) {
      const BlockLocation* loc = blocks_->Find(blocks[i]);
      if (loc == nullptr) return Status::InvalidArgument("fetch of an absent block");
      LSIFS_RETURN_IF_ERROR(blocks_->ReadBlock(*loc, aead, record, MutableByteSpan(outs[i], bs)));
    }
    return Status::Ok();
  }

 private:
  std::unique_ptr<SnapshotBlocks> blocks_;
  std::vector<uint64_t> present_;
};

class ThrottledSnapshot : public OriginSnapshot {
 public:
  ThrottledSnapshot(ThrottledOrigin& origin, std::unique_ptr<OriginSnapshot> inner)
      : origin_(origin), inner_(std::move(inner)) {}
  const SnapshotInfo& info() const override { return inner_->info(); }
  const std::vector<uint64_t>& present() const override { return inner_->present(); }
  Status Fetch(std::span<const uint64_t> blocks, std::span<uint8_t* const> outs) override {
    origin_.Pay(blocks.size() * inner_->info().block_size);
    return inner_->Fetch(blocks, outs);
  }

 private:
  ThrottledOrigin& origin_;
  std::unique_ptr<OriginSnapshot> inner_;
};

}  // namespace

Status LocalOrigin::OpenSnapshot(const std::string& volume, uint64_t id,
                                 std::unique_ptr<OriginSnapshot>* out) {
  std::unique_ptr<SnapshotBlocks> blocks;
  LSIFS_RETURN_IF_ERROR(SnapshotBlocks::Open(store_, keys_, volume, id, &blocks));
  *out = std::make_unique<LocalSnapshot>(std::move(blocks));
  return Status::Ok();
}

ThrottledOrigin::ThrottledOrigin(Origin& inner, WanProfile profile)
    : inner_(inner), profile_(profile), link_free_(std::chrono::steady_clock::now()) {}

Status ThrottledOrigin::OpenSnapshot(const std::string& volume, uint64_t id,
                                     std::unique_ptr<OriginSnapshot>* out) {
  std::unique_ptr<OriginSnapshot> inner;
  LSIFS_RETURN_IF_ERROR(inner_.OpenSnapshot(volume, id, &inner));
  *out = std::make_unique<ThrottledSnapshot>(*this, std::move(inner));
  return Status::Ok();
}

void ThrottledOrigin::Pay(uint64_t bytes) {
  using Clock = std::chrono::steady_clock;
  // The request reaches the origin after half the round trip and its first
  // byte comes back after the other half; transfers queue on the shared link.
  auto now = Clock::now();
  auto arrival = now + profile_.latency;
  auto done = arrival;
  if (profile_.bytes_per_second > 0) {
    auto transfer = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
        static_cast<double>(bytes) / static_cast<double>(profile_.bytes_per_second)));
    std::lock_guard<std::mutex> lock(mu_);
    auto start = std::max(arrival, link_free_);
    done = start + transfer;
    link_free_ = done;
  }
  std::this_thread::sleep_until(done);
}

namespace {

// Splits "40ms" into 40 and "ms"; false when there is no leading number.
bool SplitQuantity(const std::string& text, double* value, std::string* unit) {
  size_t pos = 0;
  try {
    *value = std::stod(text, &pos);
  } catch (...) {
    return false;
  }
  *unit = text.substr(pos);
  return std::isfinite(*value);
}

}  // namespace

Status ParseLatency(const std::string& text, std::chrono::microseconds* out) {
  double v = 0;
  std::string unit;
  double us = 0;
  if (!SplitQuantity(text, &v, &unit) || v < 0) {
    return Status::InvalidArgument("'" + text + "' is not a latency (try 40ms)");
  } else if (unit == "us") {
    us = v;
  } else if (unit == "ms") {
    us = v * 1e3;
  } else if (unit == "s") {
    us = v * 1e6;
  } else {
    return Status::InvalidArgument("latency '" + text + "' needs a unit: us, ms or s (try 40ms)");
  }
  if (us > 3600e6) return Status::InvalidArgument("latency '" + text + "' is over an hour");
  *out = std::chrono::microseconds(static_cast<int64_t>(std::llround(us)));
  return Status::Ok();
}

Status ParseBandwidth(const std::string& text, uint64_t* bytes_per_second) {
  double v = 0;
  std::string unit;
  if (!SplitQuantity(text, &v, &unit) || v <= 0) {
    return Status::InvalidArgument("'" + text + "' is not a bandwidth (try 200Mbit)");
  }
  double bps = 0;  // bytes per second
  if (unit == "bit")
    bps = v / 8;
  else if (unit == "Kbit")
    bps = v * 1e3 / 8;
  else if (unit == "Mbit")
    bps = v * 1e6 / 8;
  else if (unit == "Gbit")
    bps = v * 1e9 / 8;
  else if (unit == "B")
    bps = v;
  else if (unit == "KB")
    bps = v * 1e3;
  else if (unit == "MB")
    bps = v * 1e6;
  else if (unit == "GB")
    bps = v * 1e9;
  else {
    return Status::InvalidArgument("bandwidth '" + text +
                                   "' needs a unit: bit, Kbit, Mbit, Gbit (per second) or B, KB, "
                                   "MB, GB (bytes per second)");
  }
  if (bps > 1e15) return Status::InvalidArgument("bandwidth '" + text + "' is too large");
  *bytes_per_second = static_cast<uint64_t>(std::max(1.0, bps));
  return Status::Ok();
}

}  // namespace lsifs
