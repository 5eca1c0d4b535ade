#include "core/origin/link.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace lsifs {
namespace {

using Clock = std::chrono::steady_clock;

// How long before the wire frees the next request may take its turn (and
// the slot right after the transfer on the wire): a demand read arriving
// then waits behind that transfer and this one, at most this much longer.
constexpr auto kTurnLead = std::chrono::milliseconds(1);

// An origin snapshot whose fetches pay their way on the link first.
class LinkSnapshot : public OriginSnapshot {
 public:
  LinkSnapshot(OriginLink& link, const std::atomic<LinkClass>* cls,
               std::unique_ptr<OriginSnapshot> inner)
      : link_(link), cls_(cls), inner_(std::move(inner)) {}
  const SnapshotInfo& info() const override { return inner_->info(); }
  const std::vector<uint64_t>& present() const override { return inner_->present(); }
  Status Fetch(std::span<const uint64_t> blocks, std::span<uint8_t* const> outs) override {
    const LinkClass cls = cls_->load(std::memory_order_relaxed);
    LSIFS_RETURN_IF_ERROR(link_.Pay(cls, blocks.size() * inner_->info().block_size));
    return inner_->FetchIn(cls, blocks, outs);
  }

 private:
  OriginLink& link_;
  const std::atomic<LinkClass>* cls_;
  std::unique_ptr<OriginSnapshot> inner_;
};

class ClassOrigin : public Origin {
 public:
  ClassOrigin(OriginLink& link, const std::atomic<LinkClass>* cls) : link_(link), cls_(cls) {}
  Status OpenSnapshot(const std::string& volume, uint64_t id,
                      std::unique_ptr<OriginSnapshot>* out) override {
    return link_.OpenSnapshotAs(volume, id, cls_, out);
  }

 private:
  OriginLink& link_;
  const std::atomic<LinkClass>* cls_;
};

bool Gated(LinkClass c) {
  return c >= LinkClass::kLow;
}

}  // namespace

const std::atomic<LinkClass> OriginLink::kDemandClass{LinkClass::kDemand};

const char* LinkClassName(LinkClass c) {
  switch (c) {
    case LinkClass::kDemand:
      return "demand";
    case LinkClass::kExpansion:
      return "expansion";
    case LinkClass::kLayerPull:
      return "layer-pull";
    case LinkClass::kHigh:
      return "high";
    case LinkClass::kNormal:
      return "normal";
    case LinkClass::kLow:
      return "low";
    case LinkClass::kHydration:
      return "hydration";
  }
  return "?";
}

OriginLink::OriginLink(Origin& inner, LinkOptions options)
    : inner_(inner), options_(options), wire_free_(Clock::now()), low_next_(wire_free_) {}

OriginLink::~OriginLink() = default;

Status OriginLink::OpenSnapshot(const std::string& volume, uint64_t id,
                                std::unique_ptr<OriginSnapshot>* out) {
  return OpenSnapshotAs(volume, id, &kDemandClass, out);
}

Status OriginLink::OpenSnapshotAs(const std::string& volume, uint64_t id,
                                  const std::atomic<LinkClass>* cls,
                                  std::unique_ptr<OriginSnapshot>* out) {
  std::unique_ptr<OriginSnapshot> inner;
  LSIFS_RETURN_IF_ERROR(inner_.OpenSnapshot(volume, id, &inner));
  *out = std::make_unique<LinkSnapshot>(*this, cls, std::move(inner));
  return Status::Ok();
}

std::unique_ptr<Origin> OriginLink::As(const std::atomic<LinkClass>* cls) {
  return std::make_unique<ClassOrigin>(*this, cls);
}

size_t OriginLink::Window(uint64_t request_bytes) const {
  const WanProfile& p = options_.profile;
  if (p.latency.count() == 0) return 2;
  // Without a bandwidth limit only the round trips bound the rate.
  if (p.bytes_per_second == 0 || request_bytes == 0) return 32;
  double in_flight = std::chrono::duration<double>(p.latency).count() *
                     static_cast<double>(p.bytes_per_second) / static_cast<double>(request_bytes);
  // Half as many again as the bandwidth-delay product: a request's place
  // in the window is also held while its blocks are opened, sealed and
  // written in order, so exactly the product left the wire idle whenever
  // that lagged (1.2x the ideal time on the metro profile).
  return std::clamp<size_t>(static_cast<size_t>(std::ceil(in_flight * 1.5)) + 2, 2, 48);
}

uint64_t OriginLink::AssemblyRequestBytes() const {
  return options_.profile.enabled() ? kAssemblyRequestBytes : 1024 * 1024;
}

std::string OriginLink::Describe() const {
  const WanProfile& p = options_.profile;
  char text[160];
  std::snprintf(text, sizeof text, "latency %.3g ms, bandwidth %s, low share %.0f%%",
                static_cast<double>(p.latency.count()) / 1e3,
                p.bytes_per_second == 0
                    ? "unlimited"
                    : (std::to_string(p.bytes_per_second * 8 / 1000000) + " Mbit/s").c_str(),
                options_.low_share * 100);
  return text;
}

bool OriginLink::DemandActive(Clock::time_point now) const {
  return demand_in_flight_ > 0 || now - last_demand_end_ < options_.demand_active;
}

bool OriginLink::SleepUntil(std::unique_lock<std::mutex>& lock, Clock::time_point until) {
  while (!stopped_ && Clock::now() < until) stop_cv_.wait_until(lock, until);
  return !stopped_;
}

Status OriginLink::Pay(LinkClass cls, uint64_t bytes) {
  const size_t c = static_cast<size_t>(cls);
  if (!options_.profile.enabled()) {
    // Nothing to model: no lock on a miss of the read path.
    if (stopped_.load(std::memory_order_relaxed)) {
      return Status::Unavailable("the origin link is closed (lsifs is stopping)");
    }
    requests_[c].fetch_add(1, std::memory_order_relaxed);
    bytes_[c].fetch_add(bytes, std::memory_order_relaxed);
    return Status::Ok();
  }
  const bool demand = cls == LinkClass::kDemand;
  const Clock::time_point sent = Clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  if (demand) ++demand_in_flight_;
  Status result = Status::Ok();
  // The round trip first: the request reaches the origin and its first
  // byte comes back; requests travel in parallel, as a real client's do.
  if (!SleepUntil(lock, sent + options_.profile.latency)) {
    result = Status::Unavailable("the origin link is closed (lsifs is stopping)");
  } else if (options_.profile.bytes_per_second > 0) {
    const auto transfer = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
        static_cast<double>(bytes) / static_cast<double>(options_.profile.bytes_per_second)));
    const uint64_t ticket = next_ticket_[c]++;
    if (options_.observer) options_.observer(cls, false);
    const Clock::time_point queued = Clock::now();
    Clock::time_point done;
    for (;;) {
      if (stopped_) break;
      const Clock::time_point now = Clock::now();
      bool first = serving_[c] == ticket;
      for (size_t h = 0; first && h < c; ++h) first = next_ticket_[h] == serving_[h];
      Clock::time_point ready = wire_free_;
      if (Gated(cls) && DemandActive(now)) ready = std::max(ready, low_next_);
      if (first && ready <= now + kTurnLead) {
        // The transfer starts when the one ahead ends, not when this thread
        // wakes: a wake-up's lag would otherwise leave the wire idle between
        // transfers (12% of a 1 Gbit/s link in 64 KiB requests).
        const Clock::time_point start = std::max(now, ready);
        ++serving_[c];
        if (options_.observer) options_.observer(cls, true);
        done = start + transfer;
        wire_free_ = done;
        if (Gated(cls)) {
          low_next_ =
              start + std::chrono::duration_cast<Clock::duration>(transfer / options_.low_share);
        }
        LinkClassStats& st = queued_[c];
        uint64_t waited = static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(now - queued).count());
        st.queued_us += waited;
        st.max_queued_us = std::max(st.max_queued_us, waited);
        turn_cv_.notify_all();
        break;
      }
      if (first) {
        // The demand window may close before `ready`: look again then.
        turn_cv_.wait_until(lock, std::min(ready - kTurnLead, now + options_.demand_active));
      } else {
        turn_cv_.wait(lock);
      }
    }
    if (stopped_ || !SleepUntil(lock, done)) {
      result = Status::Unavailable("the origin link is closed (lsifs is stopping)");
    }
  }
  if (result.ok()) {
    requests_[c].fetch_add(1, std::memory_order_relaxed);
    bytes_[c].fetch_add(bytes, std::memory_order_relaxed);
  }
  if (demand) {
    --demand_in_flight_;
    last_demand_end_ = Clock::now();
  }
  return result;
}

void OriginLink::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  stop_cv_.notify_all();
  turn_cv_.notify_all();
}

std::array<LinkClassStats, kLinkClasses> OriginLink::Stats() const {
  std::array<LinkClassStats, kLinkClasses> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t c = 0; c < kLinkClasses; ++c) {
    out[c] = queued_[c];
    out[c].requests = requests_[c].load(std::memory_order_relaxed);
    out[c].bytes = bytes_[c].load(std::memory_order_relaxed);
  }
  return out;
}

namespace {

// Splits "40ms" into 40 and "ms"; false when there is no leading number.
// "12.5ms" -> 12.5 and "ms". The number is plain decimal digits and one
// point: stod alone would take " 5", "+5", "0x10", "1e3" and "inf".
bool SplitQuantity(const std::string& text, double* value, std::string* unit) {
  size_t end = text.find_first_not_of("0123456789.");
  std::string number = text.substr(0, end);
  if (number.empty() || number[0] == '.' || std::count(number.begin(), number.end(), '.') > 1) {
    return false;
  }
  size_t pos = 0;
  try {
    *value = std::stod(number, &pos);
  } catch (...) {
    return false;
  }
  *unit = end == std::string::npos ? "" : text.substr(end);
  return pos == number.size() && std::isfinite(*value);
}

constexpr double kMinBandwidth = 1e6 / 8;  // bytes per second

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
  // Slower than this, one 64 KiB request holds the link for over half a
  // second: a typo (1bit for 1Gbit), not a WAN.
  if (bps < kMinBandwidth) {
    return Status::InvalidArgument("bandwidth '" + text + "' is below the least the model takes, " +
                                   "1Mbit");
  }
  *bytes_per_second = static_cast<uint64_t>(bps);
  return Status::Ok();
}

Status ParseShare(const std::string& text, double* out) {
  double v = 0;
  std::string unit;
  if (!SplitQuantity(text, &v, &unit) || (unit != "" && unit != "%")) {
    return Status::InvalidArgument("'" + text + "' is not a share (try 0.25 or 25%)");
  }
  if (unit == "%") v /= 100;
  if (!(v > 0 && v <= 1)) {
    return Status::InvalidArgument("share '" + text + "' must be above 0 and at most 1 (100%)");
  }
  *out = v;
  return Status::Ok();
}

}  // namespace lsifs
