// The origin link's scheduler, with the WAN model on and a trace of who got
// the wire when: demand reads go first and wait behind at most the one
// transfer on the wire, `low` keeps to its share while demand is active
// (and takes the whole link when it is not), classes are served in order,
// and Stop() ends every wait.
#include "core/origin/link.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace lsifs {
namespace {

using namespace std::chrono_literals;

class NoOrigin : public Origin {
 public:
  Status OpenSnapshot(const std::string&, uint64_t, std::unique_ptr<OriginSnapshot>*) override {
    return Status::NotFound("no snapshots here");
  }
};

struct Event {
  LinkClass cls;
  bool granted;
};

class LinkTest : public ::testing::Test {
 protected:
  std::unique_ptr<OriginLink> Link(uint64_t bytes_per_second,
                                   std::chrono::microseconds latency = 0us,
                                   double low_share = 0.25) {
    LinkOptions o;
    o.profile.bytes_per_second = bytes_per_second;
    o.profile.latency = latency;
    o.low_share = low_share;
    o.observer = [this](LinkClass c, bool granted) { trace_.push_back({c, granted}); };
    return std::make_unique<OriginLink>(origin_, o);
  }
  NoOrigin origin_;
  std::vector<Event> trace_;  // written under the link's lock
};

TEST_F(LinkTest, ADemandReadWaitsBehindAtMostTheTransferOnTheWire) {
  auto link = Link(4'000'000);  // a 64 KiB request is 16 ms on the wire
  std::atomic<bool> stop{false};
  std::vector<std::thread> low;
  for (int t = 0; t < 4; ++t) {
    low.emplace_back([&] {
      while (!stop) ASSERT_TRUE(link->Pay(LinkClass::kLow, kAssemblyRequestBytes).ok());
    });
  }
  std::this_thread::sleep_for(50ms);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(link->Pay(LinkClass::kDemand, 4096).ok());
    std::this_thread::sleep_for(20ms);
  }
  stop = true;
  for (auto& t : low) t.join();
  // Between a demand read's arrival at the wire and its turn, no assembly
  // request was let on: it waited only for the one already there.
  int demands = 0;
  for (size_t i = 0; i < trace_.size(); ++i) {
    if (trace_[i].cls != LinkClass::kDemand || trace_[i].granted) continue;
    ++demands;
    size_t j = i + 1;
    int others = 0;
    while (j < trace_.size() && !(trace_[j].cls == LinkClass::kDemand && trace_[j].granted)) {
      others += trace_[j].granted ? 1 : 0;
      ++j;
    }
    ASSERT_LT(j, trace_.size());
    EXPECT_EQ(others, 0) << "demand read " << demands << " waited behind later requests";
  }
  EXPECT_EQ(demands, 5);
  auto stats = link->Stats();
  EXPECT_EQ(stats[static_cast<size_t>(LinkClass::kDemand)].requests, 5u);
  // One 16 ms transfer at most, with room for a busy machine's scheduling.
  EXPECT_LT(stats[static_cast<size_t>(LinkClass::kDemand)].max_queued_us, 45'000u);
}

TEST_F(LinkTest, LowKeepsToItsShareOnlyWhileDemandReadsAreActive) {
  const uint64_t rate = 2'000'000;
  auto link = Link(rate);
  auto low_bytes = [&] { return link->Stats()[static_cast<size_t>(LinkClass::kLow)].bytes; };
  std::atomic<bool> stop_low{false}, stop_demand{false};
  std::vector<std::thread> low;
  for (int t = 0; t < 2; ++t) {
    low.emplace_back([&] {
      while (!stop_low) (void)link->Pay(LinkClass::kLow, kAssemblyRequestBytes);
    });
  }
  std::thread demand([&] {
    while (!stop_demand) {
      ASSERT_TRUE(link->Pay(LinkClass::kDemand, 4096).ok());
      std::this_thread::sleep_for(5ms);
    }
  });
  std::this_thread::sleep_for(200ms);
  uint64_t before = low_bytes();
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(1200ms);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double busy_share = static_cast<double>(low_bytes() - before) / (secs * rate);
  stop_demand = true;
  demand.join();
  EXPECT_LE(busy_share, 0.25 * 1.1 + 0.06) << "low took " << busy_share << " of the link";
  EXPECT_GT(busy_share, 0.1) << "low must still progress";
  // No demand: low has the link to itself.
  std::this_thread::sleep_for(700ms);
  before = low_bytes();
  t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(1000ms);
  secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double idle_share = static_cast<double>(low_bytes() - before) / (secs * rate);
  stop_low = true;
  link->Stop();
  for (auto& t : low) t.join();
  EXPECT_GT(idle_share, 0.6) << "low took only " << idle_share << " of an idle link";
}

TEST_F(LinkTest, HigherClassesGoBeforeQueuedLowerOnes) {
  auto link = Link(1'000'000);  // 64 KiB: 65 ms on the wire
  std::thread a([&] { ASSERT_TRUE(link->Pay(LinkClass::kLow, kAssemblyRequestBytes).ok()); });
  std::this_thread::sleep_for(10ms);
  std::thread b([&] { ASSERT_TRUE(link->Pay(LinkClass::kLow, kAssemblyRequestBytes).ok()); });
  std::this_thread::sleep_for(10ms);
  std::thread c([&] { ASSERT_TRUE(link->Pay(LinkClass::kHigh, kAssemblyRequestBytes).ok()); });
  std::this_thread::sleep_for(10ms);
  std::thread d([&] { ASSERT_TRUE(link->Pay(LinkClass::kExpansion, 4096).ok()); });
  for (auto* t : {&a, &b, &c, &d}) t->join();
  std::vector<LinkClass> granted;
  for (const auto& e : trace_) {
    if (e.granted) granted.push_back(e.cls);
  }
  EXPECT_EQ(granted, (std::vector<LinkClass>{LinkClass::kLow, LinkClass::kExpansion,
                                             LinkClass::kHigh, LinkClass::kLow}));
}

TEST_F(LinkTest, StopEndsEveryWaitAtOnce) {
  auto link = Link(1, 30s);  // a round trip of 30 s, 1 byte per second
  auto link2 = Link(1);
  Status in_round_trip, on_wire;
  std::thread a([&] { in_round_trip = link->Pay(LinkClass::kDemand, 4096); });
  std::thread b([&] { on_wire = link2->Pay(LinkClass::kLow, 4096); });
  std::this_thread::sleep_for(50ms);
  auto t0 = std::chrono::steady_clock::now();
  link->Stop();
  link2->Stop();
  a.join();
  b.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(in_round_trip.code(), Status::Code::kUnavailable);
  EXPECT_EQ(on_wire.code(), Status::Code::kUnavailable);
  EXPECT_FALSE(link->Pay(LinkClass::kDemand, 1).ok());
}

TEST_F(LinkTest, TheWindowFillsTheBandwidthDelayProduct) {
  auto edge = Link(25'000'000, 40ms);  // 200 Mbit/s: 1 MB in flight
  EXPECT_EQ(edge->Window(kAssemblyRequestBytes), 25u);  // 15.3 x 1.5 + 2
  EXPECT_EQ(Link(0)->Window(kAssemblyRequestBytes), 2u);  // overlap only
  EXPECT_EQ(Link(3'125'000, 150ms)->Window(kAssemblyRequestBytes), 13u);
  EXPECT_EQ(Link(1'000'000'000, 150ms)->Window(kAssemblyRequestBytes), 48u);  // the cap
}

TEST(LinkParse, SharesLatenciesAndBandwidths) {
  double share = 0;
  EXPECT_TRUE(ParseShare("0.25", &share).ok());
  EXPECT_DOUBLE_EQ(share, 0.25);
  EXPECT_TRUE(ParseShare("50%", &share).ok());
  EXPECT_DOUBLE_EQ(share, 0.5);
  for (const char* bad : {"0", "-0.1", "1.5", "abc", "20 %", "nan", ""}) {
    EXPECT_FALSE(ParseShare(bad, &share).ok()) << bad;
  }
  std::chrono::microseconds latency;
  EXPECT_TRUE(ParseLatency("40ms", &latency).ok());
  EXPECT_EQ(latency, 40ms);
  uint64_t bps = 0;
  EXPECT_TRUE(ParseBandwidth("200Mbit", &bps).ok());
  EXPECT_EQ(bps, 25'000'000u);
  EXPECT_TRUE(ParseBandwidth("1.5Mbit", &bps).ok());
  EXPECT_EQ(bps, 187'500u);
  // Below the floor, signs, blanks, hex, exponents, infinities, garbage.
  for (const char* bad : {"1bit", "100Kbit", "0Mbit", "-5Mbit", "+5Mbit", " 5Mbit", "0x10Mbit",
                          "1e3Mbit", "infMbit", "5..1Mbit", "5Mbitx", "Mbit", ""}) {
    EXPECT_FALSE(ParseBandwidth(bad, &bps).ok()) << bad;
  }
  EXPECT_NE(ParseBandwidth("1bit", &bps).message().find("1Mbit"), std::string::npos);
  for (const char* bad : {"-1ms", " 4ms", "1e2ms", "nanms", "4", "4msx", "2h"}) {
    EXPECT_FALSE(ParseLatency(bad, &latency).ok()) << bad;
  }
}

}  // namespace
}  // namespace lsifs
