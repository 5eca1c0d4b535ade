// The origin link: one per daemon, shared by everything that fetches base
// blocks (DESIGN.md, "Where each part runs"). It applies the WAN model
// (every request pays one round trip; all transfers share one bandwidth)
// and orders the transfers by class, first to last:
//
//   demand      a read a workload is waiting on
//   expansion   read-time co-access expansion after a demand miss
//   layer-pull  pulls of delivered layers (two-site form)
//   high, normal, low   assemblies, by their priority
//   hydration   filling the rest of a volume in the background
//
// A transfer is never cut short: a demand request waits behind at most the
// one transfer on the wire (and one that took its turn in the last
// millisecond before the wire freed), so assembly traffic goes in small requests
// (kAssemblyRequestBytes). While demand reads are active, `low` takes at
// most `low_share` of the bandwidth. Waits are interruptible: Stop() fails
// every waiting and later request at once.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/origin/origin.h"
#include "core/util/status.h"

namespace lsifs {

// Assembly fetches are cut to this size, so that a demand read waits
// behind little (2.6 ms on the edge profile's 200 Mbit/s).
constexpr uint64_t kAssemblyRequestBytes = 64 * 1024;

// The WAN model: every request pays one round trip (`latency`), and all
// requests share one bandwidth limit (`bytes_per_second`, 0 = unlimited).
struct WanProfile {
  std::chrono::microseconds latency{0};
  uint64_t bytes_per_second = 0;
  bool enabled() const { return latency.count() > 0 || bytes_per_second > 0; }
};

// Parses "40ms", "1.5s", "250us" / "200Mbit", "1Gbit", "25MB" (bytes/s).
Status ParseLatency(const std::string& text, std::chrono::microseconds* out);
Status ParseBandwidth(const std::string& text, uint64_t* bytes_per_second);
// Parses a share of the bandwidth: "0.25" or "25%", in (0, 1].
Status ParseShare(const std::string& text, double* out);

struct LinkOptions {
  WanProfile profile;
  // The most of the bandwidth `low` takes while demand reads are active.
  double low_share = 0.25;
  // Demand reads count as active while one is in flight and this long after.
  std::chrono::milliseconds demand_active{500};
  // Told, under the link's lock, when a request starts waiting for the
  // wire (granted = false) and when it gets it: for traces and tests.
  std::function<void(LinkClass cls, bool granted)> observer;
};

// Per class, since the link started.
struct LinkClassStats {
  uint64_t requests = 0;
  uint64_t bytes = 0;
  uint64_t queued_us = 0;      // waiting for the wire, beyond the round trip
  uint64_t max_queued_us = 0;  // the longest such wait
};

class OriginLink : public Origin {
 public:
  // `inner` must outlive the link and every snapshot opened through it.
  OriginLink(Origin& inner, LinkOptions options);
  ~OriginLink() override;

  // Snapshots whose fetches travel as demand reads.
  Status OpenSnapshot(const std::string& volume, uint64_t id,
                      std::unique_ptr<OriginSnapshot>* out) override;
  // Snapshots whose fetches travel in the class `*cls` holds at each fetch
  // (an assembly whose priority is raised while it runs moves up at once).
  // `cls` must outlive the snapshot.
  Status OpenSnapshotAs(const std::string& volume, uint64_t id, const std::atomic<LinkClass>* cls,
                        std::unique_ptr<OriginSnapshot>* out);

  // An origin whose snapshots fetch in the class `*cls` holds (see
  // OpenSnapshotAs); it must not outlive the link or `cls`.
  std::unique_ptr<Origin> As(const std::atomic<LinkClass>* cls);

  // How many requests of `request_bytes` must be in flight to keep the
  // link busy (1.5x its bandwidth-delay product, plus 2), at least 2 so
  // that fetching overlaps whatever the caller does with the blocks.
  size_t Window(uint64_t request_bytes) const;
  // The size of an assembly's requests: kAssemblyRequestBytes on a
  // modelled link (a demand read waits behind at most one of them), 1 MiB
  // on a link with nothing to model, where nothing waits on a wire and
  // larger requests cost fewer hand-offs between threads.
  uint64_t AssemblyRequestBytes() const;
  const LinkOptions& options() const { return options_; }
  std::string Describe() const;

  // Waits out one request of `bytes` in class `cls`: the round trip, then
  // its turn on the wire. Unavailable once the link is stopped.
  Status Pay(LinkClass cls, uint64_t bytes);
  // Fails every wait, now and later (the daemon is stopping).
  void Stop();

  std::array<LinkClassStats, kLinkClasses> Stats() const;

 private:
  bool DemandActive(std::chrono::steady_clock::time_point now) const;
  // Sleeps until `until` unless stopped; false when stopped.
  bool SleepUntil(std::unique_lock<std::mutex>& lock, std::chrono::steady_clock::time_point until);

  Origin& inner_;
  const LinkOptions options_;
  static const std::atomic<LinkClass> kDemandClass;

  mutable std::mutex mu_;
  std::condition_variable turn_cv_;                  // a turn on the wire was taken
  std::condition_variable stop_cv_;                  // only Stop() wakes it
  std::atomic<bool> stopped_{false};                 // written under mu_
  std::chrono::steady_clock::time_point wire_free_;  // when the transfer on the wire ends
  std::chrono::steady_clock::time_point low_next_;   // low's share: its next start at the earliest
  std::chrono::steady_clock::time_point last_demand_end_;
  uint32_t demand_in_flight_ = 0;
  // Turns per class, first come first served within a class: a request
  // takes a ticket and goes when its class's turn reaches it (no list, so
  // a demand request allocates nothing).
  std::array<uint64_t, kLinkClasses> next_ticket_{};
  std::array<uint64_t, kLinkClasses> serving_{};
  std::array<LinkClassStats, kLinkClasses> queued_{};  // its queued_us fields only
  std::array<std::atomic<uint64_t>, kLinkClasses> requests_{};
  std::array<std::atomic<uint64_t>, kLinkClasses> bytes_{};
};

}  // namespace lsifs
