// The requests lsictl makes, served in-process on a real store and a real
// LevelDB (the daemon serves the same function): what each answers, in the
// JSON lsictl(8) documents, and how bad requests are refused.
#include "core/service/service.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <thread>

#include "core/control/control.h"
#include "core/origin/import.h"
#include "core/util/hex.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

using testing::TempDir;

constexpr uint64_t kBlocks = 32;

class ServiceTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(AccessDb::Open(store_->db_dir(), CoAccessSettings(), &db_).ok());
    snapshot_ = ImportBytes("vol", testing::PseudoRandom(kBlocks * kBlock, 5));
    env_.store = store_.get();
    env_.keys = keys_.get();
    link_ = std::make_unique<OriginLink>(*origin_, LinkOptions());
    env_.link = link_.get();
    env_.catalog = catalog_.get();
    env_.with_db = [this](const std::function<Status(AccessDb*)>& fn) {
      return fn(db_available_ ? db_.get() : nullptr);
    };
    queue_ = std::make_unique<AssemblyQueue>(MakeAssemblyWork(env_), AssemblyQueue::Options());
    env_.queue = queue_.get();
  }

  // A session of site-a that read `blocks` of the LSI `lsi`.
  void Session(uint64_t lsi, const std::vector<uint64_t>& blocks) {
    uint32_t n = 0;
    ASSERT_TRUE(db_->BeginSession("site-a", "vol", lsi, snapshot_, &n).ok());
    std::vector<LoggedEvent> events;
    for (uint32_t i = 0; i < blocks.size(); ++i) {
      events.push_back({"site-a", "vol", n, i, {blocks[i], i}});
    }
    ASSERT_TRUE(db_->AppendEvents(events).ok());
    ASSERT_TRUE(db_->EndSession("site-a", "vol", n, blocks.size(), 0).ok());
  }

  boost::json::value Serve(const std::vector<std::string>& request) {
    std::string body;
    Status s = ServeRequest(env_, request, &body);
    EXPECT_TRUE(s.ok()) << request[0] << ": " << s.ToString();
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(body, ec);
    EXPECT_FALSE(ec) << body;
    return v;
  }

  static std::string Str(const boost::json::value& v, const char* key) {
    return std::string(v.as_object().at(key).as_string());
  }
  static uint64_t Num(const boost::json::value& v, const char* key) {
    return v.as_object().at(key).to_number<uint64_t>();
  }

  std::unique_ptr<AccessDb> db_;
  bool db_available_ = true;
  uint64_t snapshot_ = 0;
  std::unique_ptr<OriginLink> link_;
  ServiceEnv env_;
  std::unique_ptr<AssemblyQueue> queue_;  // after env_: its work uses env_
};

TEST_F(ServiceTest, RestoreThenPreassembleFromWhatWasLearned) {
  auto first = Serve({"restore", "site-a", "vol", "-"});
  EXPECT_FALSE(first.as_object().at("reused").as_bool());
  EXPECT_EQ(Str(first, "state"), "delivered");
  EXPECT_TRUE(first.as_object().at("alias").as_bool());
  EXPECT_EQ(Num(first, "prefetched_blocks"), 0u);  // nothing learned yet
  EXPECT_EQ(Str(first, "snapshot"), FormatId(snapshot_));
  uint64_t lsi = *ParseId(Str(first, "lsi"));
  for (int i = 0; i < 3; ++i) Session(lsi, {4, 2, 9});

  auto planned = Serve({"preassemble", "site-a", "vol", "predicted", "low", "0", "1"});
  EXPECT_EQ(Str(planned, "state"), "assembled");
  EXPECT_EQ(Str(planned, "strategy"), "predicted");
  EXPECT_EQ(Str(planned, "priority"), "low");
  EXPECT_EQ(Num(planned, "model_sessions"), 3u);
  EXPECT_EQ(Num(planned, "fetched_blocks"), 3u);
  const auto& plan = planned.as_object().at("plan");
  std::vector<uint64_t> order;
  for (const auto& b : plan.as_object().at("blocks").as_array()) order.push_back(Num(b, "block"));
  EXPECT_EQ(order, (std::vector<uint64_t>{4, 2, 9}));  // first-access order
  EXPECT_EQ(Num(plan.as_object().at("tiers"), "own"), 3u);

  // The next restore delivers exactly that LSI, fresh.
  auto again = Serve({"restore", "site-a", "vol", "-"});
  EXPECT_TRUE(again.as_object().at("reused").as_bool());
  EXPECT_EQ(Str(again, "lsi"), Str(planned, "lsi"));
}

TEST_F(ServiceTest, ConcurrentRequestsForOneVolumeAssembleOnce) {
  auto first = Serve({"restore", "site-a", "vol", "-"});
  uint64_t lsi = *ParseId(Str(first, "lsi"));
  for (int i = 0; i < 3; ++i) Session(lsi, {4, 2, 9, 11, 12, 13});
  // A slow link, so that the requests meet in the queue.
  LinkOptions slow;
  slow.profile.latency = std::chrono::milliseconds(100);
  OriginLink link(*origin_, slow);
  env_.link = &link;
  const uint64_t fetched_before = origin_->blocks.load();
  std::vector<boost::json::value> replies(3);
  std::vector<std::thread> askers;
  for (size_t i = 0; i < replies.size(); ++i) {
    askers.emplace_back([&, i] {
      replies[i] = i == 2 ? Serve({"restore", "site-a", "vol", "-"})
                          : Serve({"preassemble", "site-a", "vol", "predicted", "low", "0", "0"});
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& t : askers) t.join();
  env_.link = link_.get();
  std::string id = Str(replies[0], "lsi");
  for (const auto& r : replies) EXPECT_EQ(Str(r, "lsi"), id);
  // One assembly's blocks crossed the origin, not three.
  EXPECT_GT(Num(replies[0], "fetched_blocks"), 0u);
  EXPECT_EQ(origin_->blocks.load() - fetched_before, Num(replies[0], "fetched_blocks"));
  // The restore joined at high priority and delivered what was assembled.
  EXPECT_EQ(Str(replies[2], "state"), "delivered");
  EXPECT_EQ(Serve({"assemblies"}).as_array().size(), 0u);
  std::string body;
  EXPECT_TRUE(ServeRequest(env_, {"assembly-cancel", "7"}, &body).IsNotFound());
  EXPECT_EQ(ServeRequest(env_, {"assembly-cancel", "x7"}, &body).code(),
            Status::Code::kInvalidArgument);
}

TEST_F(ServiceTest, ListingsGcAndStatsSpeakJson) {
  auto restored = Serve({"restore", "site-a", "vol", "-"});
  uint64_t lsi = *ParseId(Str(restored, "lsi"));
  auto full = Serve({"preassemble", "site-a", "vol", "full", "normal", "0", "0"});
  EXPECT_EQ(Num(full, "prefetched_blocks"), kBlocks);
  EXPECT_FALSE(full.as_object().contains("plan"));  // a baseline has no plan

  auto list = Serve({"lsi-list"});
  ASSERT_EQ(list.as_array().size(), 2u);
  auto shown = Serve({"lsi-show", Str(full, "lsi")});
  EXPECT_EQ(shown.as_object().at("layer_list").as_array().size(), 1u);
  EXPECT_TRUE(shown.as_object().at("counters").is_null());  // never read by a mount

  // A session read half the full LSI's blocks: recall 1, precision 0.5.
  std::vector<uint64_t> half;
  for (uint64_t b = 0; b < kBlocks / 2; ++b) half.push_back(b);
  Session(*ParseId(Str(full, "lsi")), half);
  auto stats = Serve({"stats"});
  const auto& ext = stats.as_object()
                        .at("volumes")
                        .as_array()
                        .at(0)
                        .as_object()
                        .at("extensions")
                        .as_array()
                        .at(0);
  EXPECT_EQ(Str(ext, "extension"), "site-a");
  EXPECT_EQ(Num(ext, "restores"), 1u);
  EXPECT_EQ(Num(ext, "sessions"), 1u);
  EXPECT_DOUBLE_EQ(ext.as_object().at("recall").to_number<double>(), 1.0);
  EXPECT_DOUBLE_EQ(ext.as_object().at("precision").to_number<double>(), 0.5);
  EXPECT_EQ(Num(stats, "lsi_bytes"),
            Num(list.as_array()[0], "bytes") + Num(list.as_array()[1], "bytes"));

  // gc at a tiny cap: the full LSI (assembled, stale after the session)
  // goes before the delivered image.
  ASSERT_TRUE(store_->UpdateCaps(Num(restored, "bytes") + 1, 0).ok());
  auto gc = Serve({"gc"});
  const auto& dropped = gc.as_object().at("dropped").as_array();
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(Str(dropped[0], "lsi"), Str(full, "lsi"));
  EXPECT_TRUE(gc.as_object().at("satisfied").as_bool());
  EXPECT_TRUE(PathExists(store_->manifest_path(lsi)));
}

TEST_F(ServiceTest, BadRequestsAreRefusedWithAReason) {
  std::string body;
  EXPECT_EQ(ServeRequest(env_, {"frobnicate"}, &body).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ServeRequest(env_, {"restore", "site-a", "vol"}, &body).code(),
            Status::Code::kInvalidArgument);  // wrong arity
  EXPECT_EQ(ServeRequest(env_, {"restore", "../x", "vol", "-"}, &body).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(ServeRequest(env_, {"restore", "site-a", "vol", "zz"}, &body).code(),
            Status::Code::kInvalidArgument);
  EXPECT_TRUE(ServeRequest(env_, {"restore", "nobody", "vol", "-"}, &body).IsNotFound());
  EXPECT_TRUE(ServeRequest(env_, {"restore", "site-a", "novol", "-"}, &body).IsNotFound());
  EXPECT_EQ(ServeRequest(env_, {"preassemble", "site-a", "vol", "magic", "normal", "0", "0"}, &body)
                .code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(ServeRequest(env_, {"preassemble", "site-a", "vol", "full", "urgent", "0", "0"}, &body)
                .code(),
            Status::Code::kInvalidArgument);
  EXPECT_TRUE(ServeRequest(env_, {"lsi-show", "0123456789abcdef"}, &body).IsNotFound());
  // Without the learned models, nothing is assembled or restored.
  db_available_ = false;
  Status s = ServeRequest(env_, {"restore", "site-a", "vol", "-"}, &body);
  EXPECT_EQ(s.code(), Status::Code::kUnavailable);
  EXPECT_NE(s.message().find("co-access database"), std::string::npos) << s.message();
  EXPECT_EQ(ServeRequest(env_, {"access-show", "site-a", "vol", "0", "1"}, &body).code(),
            Status::Code::kUnavailable);
  // Listings still work, judging staleness without the models.
  EXPECT_TRUE(ServeRequest(env_, {"lsi-list"}, &body).ok());
}

TEST_F(ServiceTest, TheCatalogContextHoldsLatestSnapshotsAndModels) {
  auto restored = Serve({"restore", "site-a", "vol", "-"});
  Session(*ParseId(Str(restored, "lsi")), {1, 2});
  CatalogContext c;
  ASSERT_TRUE(MakeCatalogContext(*store_, *keys_, db_.get(), &c).ok());
  EXPECT_EQ(c.latest_snapshot.at("vol"), snapshot_);
  EXPECT_TRUE(c.models_known);
  EXPECT_EQ(c.model_sessions.at({"site-a", "vol"}), 1u);
  ASSERT_TRUE(MakeCatalogContext(*store_, *keys_, nullptr, &c).ok());
  EXPECT_FALSE(c.models_known);
  EXPECT_TRUE(c.model_sessions.empty());
}

TEST_F(ServiceTest, TheHeatmapComesAsSvgOrPngAlikeOverTheControlSocket) {
  Session(1, {0, 1, 2});
  std::string body;
  // Without a format (as lsictl asked before PNG existed): SVG.
  ASSERT_TRUE(ServeRequest(env_, {"access-heatmap", "site-a", "vol"}, &body).ok());
  EXPECT_EQ(body.rfind("<?xml", 0), 0u) << body.substr(0, 100);
  EXPECT_NE(body.find("<svg "), std::string::npos);
  std::string svg;
  ASSERT_TRUE(ServeRequest(env_, {"access-heatmap", "site-a", "vol", "svg"}, &svg).ok());
  EXPECT_EQ(svg, body);
  std::string png;
  ASSERT_TRUE(ServeRequest(env_, {"access-heatmap", "site-a", "vol", "png"}, &png).ok());
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  Status s = ServeRequest(env_, {"access-heatmap", "site-a", "vol", "gif"}, &body);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("not svg or png"), std::string::npos) << s.message();
  EXPECT_EQ(ServeRequest(env_, {"access-heatmap", "site-a", "vol", "png", "x"}, &body).code(),
            Status::Code::kInvalidArgument);
  EXPECT_TRUE(ServeRequest(env_, {"access-heatmap", "site-a", "novol", "png"}, &body).IsNotFound());
  // A body runs to the end of the connection: the PNG's bytes (NULs and
  // all) arrive as the service made them.
  std::unique_ptr<ControlServer> server;
  const std::string socket = dir_ / "control.sock";
  ASSERT_TRUE(ControlServer::Start(
                  socket,
                  [this](const std::vector<std::string>& request, const ControlServer::Progress&,
                         std::string* out) { return ServeRequest(env_, request, out); },
                  &server)
                  .ok());
  std::string over;
  ASSERT_TRUE(ControlCall(socket, {"access-heatmap", "site-a", "vol", "png"}, &over).ok());
  EXPECT_NE(png.find('\0'), std::string::npos);
  EXPECT_EQ(over, png);
}

}  // namespace
}  // namespace lsifs
