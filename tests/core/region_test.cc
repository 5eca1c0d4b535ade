// The region's pieces that need no network: the request parser (every
// route, every refusal) and the fair share of handling slots. The TLS
// server and client are tested over a real network namespace in
// tests/integration/region_tls_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/region/protocol.h"
#include "core/region/server.h"
#include "core/util/hex.h"

namespace lsifs {
namespace {

RegionRequest Parse(std::string_view method, std::string_view target, std::string_view body = "",
                    std::string_view cls = "", std::string_view range = "") {
  RegionRequest r;
  Status s = ParseRegionRequest(method, target, body, cls, range, &r);
  EXPECT_TRUE(s.ok()) << method << " " << target << ": " << s.ToString();
  return r;
}

Status Refused(std::string_view method, std::string_view target, std::string_view body = "",
               std::string_view cls = "", std::string_view range = "") {
  RegionRequest r;
  return ParseRegionRequest(method, target, body, cls, range, &r);
}

TEST(RegionProtocol, EveryRouteParses) {
  const std::string snap = FormatId(0x1234), lsi = FormatId(0xabc), layer = FormatId(0xdef);
  EXPECT_EQ(Parse("GET", "/v1/volumes").route, RegionRoute::kVolumes);
  EXPECT_EQ(Parse("GET", "/v1/store").route, RegionRoute::kStore);
  EXPECT_EQ(Parse("GET", "/v1/deliveries").route, RegionRoute::kDeliveries);
  RegionRequest r = Parse("GET", "/v1/volumes/vol-db/snapshots/" + snap);
  EXPECT_EQ(r.route, RegionRoute::kSnapshot);
  EXPECT_EQ(r.volume, "vol-db");
  EXPECT_EQ(r.snapshot, 0x1234u);
  EXPECT_EQ(Parse("GET", "/v1/volumes/v/snapshots/latest").snapshot, 0u);
  EXPECT_EQ(Parse("GET", "/v1/volumes/v/snapshots/latest/present").route, RegionRoute::kPresent);
  r = Parse("POST", "/v1/volumes/v/snapshots/" + snap + "/blocks", EncodeBlockList({7, 1, 9}),
            "expansion");
  EXPECT_EQ(r.route, RegionRoute::kBlocks);
  EXPECT_EQ(r.blocks, (std::vector<uint64_t>{7, 1, 9}));
  EXPECT_EQ(r.link_class, LinkClass::kExpansion);
  r = Parse("POST", "/v1/restore", R"({"volume":"v","snapshot":")" + snap + "\"}");
  EXPECT_EQ(r.route, RegionRoute::kRestore);
  EXPECT_EQ(r.snapshot, 0x1234u);
  r = Parse("POST", "/v1/preassemble",
            R"({"volume":"v","priority":"low","budget":4096,"explain":true})");
  EXPECT_EQ(r.route, RegionRoute::kPreassemble);
  EXPECT_EQ(r.priority, "low");
  EXPECT_EQ(r.budget, 4096u);
  EXPECT_TRUE(r.explain);
  EXPECT_EQ(Parse("GET", "/v1/assemblies").route, RegionRoute::kAssemblies);
  EXPECT_EQ(Parse("POST", "/v1/assemblies/42/cancel").assembly, 42u);
  EXPECT_EQ(Parse("GET", "/v1/lsis").route, RegionRoute::kLsis);
  EXPECT_EQ(Parse("GET", "/v1/lsis/" + lsi).lsi, 0xabcu);
  EXPECT_EQ(Parse("GET", "/v1/lsis/" + lsi + "/manifest").route, RegionRoute::kManifest);
  r = Parse("GET", "/v1/lsis/" + lsi + "/layers/" + layer, "", "layer-pull", "bytes=100-199");
  EXPECT_EQ(r.route, RegionRoute::kLayer);
  EXPECT_EQ(r.layer, 0xdefu);
  ASSERT_TRUE(r.range.has_value());
  EXPECT_EQ(r.range->first, 100u);
  EXPECT_EQ(r.range->last.value_or(0), 199u);
  EXPECT_EQ(r.link_class, LinkClass::kLayerPull);
  r = Parse("GET", "/v1/lsis/" + lsi + "/layers/" + layer, "", "", "bytes=5-");
  EXPECT_FALSE(r.range->last.has_value());
  EXPECT_EQ(Parse("GET", "/v1/successors/v").route, RegionRoute::kSuccessors);
}

TEST(RegionProtocol, MalformedRequestsAreRefusedWithAReason) {
  const std::string snap = FormatId(1), lsi = FormatId(2);
  // Targets that name nothing.
  EXPECT_TRUE(Refused("GET", "/").IsNotFound());
  EXPECT_TRUE(Refused("GET", "/v2/volumes").IsNotFound());
  EXPECT_TRUE(Refused("GET", "/v1/nothing").IsNotFound());
  EXPECT_TRUE(Refused("GET", "/v1/volumes?x=1").IsNotFound());
  EXPECT_TRUE(Refused("GET", "/v1/volumes/%2e%2e/snapshots/latest").IsNotFound());
  EXPECT_TRUE(Refused("GET", "/v1/lsis/" + lsi + "/other").IsNotFound());
  // Names and ids that are not.
  EXPECT_EQ(Refused("GET", "/v1/volumes/../snapshots/latest").code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(Refused("GET", "/v1/volumes/v/snapshots/xyz").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Refused("GET", "/v1/lsis/" + FormatId(0).substr(1) + "0").code(),
            Status::Code::kInvalidArgument);
  // Wrong methods and bodies.
  EXPECT_EQ(Refused("DELETE", "/v1/volumes").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Refused("POST", "/v1/volumes").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Refused("GET", "/v1/volumes", "x").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Refused("GET", "/v1/restore").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Refused("POST", "/v1/restore", "not json").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Refused("POST", "/v1/restore", "{}").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Refused("POST", "/v1/restore", R"({"volume":5})").code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(Refused("POST", "/v1/preassemble", R"({"volume":"v","priority":"urgent"})").code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(Refused("POST", "/v1/preassemble", R"({"volume":"v","budget":-1})").code(),
            Status::Code::kInvalidArgument);
  // Batches: empty, ragged, too many.
  const std::string blocks = "/v1/volumes/v/snapshots/" + snap + "/blocks";
  EXPECT_EQ(Refused("POST", blocks, "").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Refused("POST", blocks, "1234567").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(
      Refused("POST", blocks, EncodeBlockList(std::vector<uint64_t>(kMaxBatchBlocks + 1))).code(),
      Status::Code::kInvalidArgument);
  EXPECT_EQ(Refused("POST", blocks, std::string(kMaxRequestBodyBytes + 8, '\0')).code(),
            Status::Code::kInvalidArgument);
  // Classes and ranges.
  EXPECT_EQ(Refused("GET", "/v1/volumes", "", "urgent").code(), Status::Code::kInvalidArgument);
  const std::string layer = "/v1/lsis/" + lsi + "/layers/" + FormatId(3);
  for (const char* range :
       {"bytes=", "bytes=-5", "bytes=9-1", "items=1-2", "bytes=1-2,4-5", "bytes=0-99999999999"}) {
    EXPECT_EQ(Refused("GET", layer, "", "", range).code(), Status::Code::kInvalidArgument) << range;
  }
}

TEST(RegionProtocol, BlockListsAndErrorsRoundTrip) {
  const std::vector<uint64_t> blocks = {0, 1, UINT64_MAX, 1ull << 40};
  std::vector<uint64_t> back;
  ASSERT_TRUE(DecodeBlockList(EncodeBlockList(blocks), &back).ok());
  EXPECT_EQ(back, blocks);
  // The AAD binds every field: change one, the AAD differs.
  const std::string aad = RegionBlockAad("site-a", "vol", 1, 2);
  EXPECT_NE(aad, RegionBlockAad("site-b", "vol", 1, 2));
  EXPECT_NE(aad, RegionBlockAad("site-a", "vol2", 1, 2));
  EXPECT_NE(aad, RegionBlockAad("site-a", "vol", 3, 2));
  EXPECT_NE(aad, RegionBlockAad("site-a", "vol", 1, 3));
  // Statuses cross as HTTP and come back with their code.
  for (const Status& s :
       {Status::NotFound("n"), Status::Permission("p"), Status::InvalidArgument("i"),
        Status::Unavailable("u"), Status::Cancelled("c"), Status::Corruption("x")}) {
    RegionReply reply;
    ErrorReply(s, &reply);
    Status back_status = StatusOfHttp(reply.status, reply.body);
    EXPECT_EQ(back_status.code(), s.code()) << s.message();
    EXPECT_EQ(back_status.message(), s.message());
  }
  // An answer from something that is not lsid is judged by its HTTP status.
  EXPECT_EQ(StatusOfHttp(503, "<html>busy</html>").code(), Status::Code::kUnavailable);
  EXPECT_EQ(StatusOfHttp(404, "").code(), Status::Code::kNotFound);
  EXPECT_TRUE(StatusOfHttp(206, "").ok());
}

TEST(RegionProtocol, SuccessorTablesRoundTripAndBadOnesAreRefused) {
  SuccessorTable table;
  const std::vector<uint64_t> a = {7, 3}, b = {UINT64_MAX}, none;
  ASSERT_TRUE(table.Append(5, a));
  ASSERT_TRUE(table.Append(9, none));
  ASSERT_TRUE(table.Append(1ull << 40, b));
  EXPECT_FALSE(table.Append(9, a)) << "seeds go in ascending order";
  SuccessorTable back;
  ASSERT_TRUE(DecodeSuccessorTable(EncodeSuccessorTable("vol", table), "vol", 100, &back).ok());
  ASSERT_EQ(back.seeds(), 3u);
  EXPECT_EQ(std::vector<uint64_t>(back.Of(5).begin(), back.Of(5).end()), a);
  EXPECT_TRUE(back.Of(9).empty());
  EXPECT_EQ(std::vector<uint64_t>(back.Of(1ull << 40).begin(), back.Of(1ull << 40).end()), b);
  EXPECT_TRUE(back.Of(6).empty());
  // At most max_entries successors are taken: the seeds after are left out.
  ASSERT_TRUE(DecodeSuccessorTable(EncodeSuccessorTable("vol", table), "vol", 2, &back).ok());
  EXPECT_EQ(back.entries(), 2u);
  EXPECT_TRUE(back.Of(1ull << 40).empty());
  // Another volume's table, unordered seeds, wrong shapes: Corruption, and
  // the table given is left as it was.
  for (const char* bad :
       {"", "[]", "{\"volume\":\"other\",\"seeds\":[]}", "{\"volume\":\"vol\"}",
        "{\"volume\":\"vol\",\"seeds\":[[2,[]],[1,[]]]}", "{\"volume\":\"vol\",\"seeds\":[[1]]}",
        "{\"volume\":\"vol\",\"seeds\":[[1,[-4]]]}", "{\"volume\":\"vol\",\"seeds\":[[\"1\",[2]]]}",
        "{\"volume\":"}) {
    Status s = DecodeSuccessorTable(bad, "vol", 100, &back);
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << bad;
    EXPECT_EQ(back.entries(), 2u) << bad;
  }
}

TEST(RegionFairShare, ExtensionsAlternateHoweverManyOneQueues) {
  FairShare share(1);
  ASSERT_TRUE(share.Acquire("greedy", LinkClass::kLow));  // holds the only slot
  std::mutex mu;
  std::vector<std::string> order;
  std::vector<std::thread> waiters;
  std::atomic<int> started{0};
  auto wait_for = [&](const std::string& ext, LinkClass cls) {
    waiters.emplace_back([&, ext, cls] {
      ++started;
      ASSERT_TRUE(share.Acquire(ext, cls));
      {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(ext + ":" + LinkClassName(cls));
      }
      share.Release(ext);
    });
  };
  // The greedy extension queues four, then another extension one: the
  // other goes right after the slot frees, not after the greedy four.
  for (int i = 0; i < 4; ++i) {
    wait_for("greedy", LinkClass::kLow);
    while (started < i + 1) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  wait_for("greedy", LinkClass::kDemand);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  wait_for("modest", LinkClass::kNormal);
  while (started < 6) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  share.Release("greedy");
  for (auto& t : waiters) t.join();
  ASSERT_EQ(order.size(), 6u);
  EXPECT_EQ(order[0], "modest:normal");
  // Within the greedy one, its demand read goes before its low ones.
  EXPECT_EQ(order[1], "greedy:demand");
  EXPECT_EQ(share.Held("greedy"), 0u);
}

TEST(RegionFairShare, StopFailsWaiters) {
  FairShare share(1);
  ASSERT_TRUE(share.Acquire("a", LinkClass::kDemand));
  std::atomic<bool> got{true};
  std::thread waiter([&] { got = share.Acquire("b", LinkClass::kDemand); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  share.Stop();
  waiter.join();
  EXPECT_FALSE(got);
}

}  // namespace
}  // namespace lsifs
