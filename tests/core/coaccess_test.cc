#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include <cmath>

#include "core/access/access_db.h"
#include "core/access/coaccess.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

CoAccessParams Params() {
  CoAccessParams p;
  p.half_life = 2;
  p.window = 2;
  p.top_k = 3;
  return p;
}

TEST(CoAccess, FrequencyRankAndSuccessorsOfOneSession) {
  ModelMeta meta;
  std::unordered_map<uint64_t, BlockStats> stats;
  EXPECT_EQ(FoldSession({10, 20, 30, 40}, Params(), &meta, &stats), 4u);
  EXPECT_EQ(meta.sessions, 1u);
  EXPECT_DOUBLE_EQ(meta.total, 1.0);
  EXPECT_DOUBLE_EQ(stats[10].weight, 1.0);
  EXPECT_DOUBLE_EQ(stats[30].rank, 2.0);
  // window 2: 10 -> 20, 30
  ASSERT_EQ(stats[10].successors.size(), 2u);
  EXPECT_EQ(stats[10].successors[0].block, 20u);
  EXPECT_EQ(stats[10].successors[1].block, 30u);
  EXPECT_TRUE(stats[40].successors.empty());
}

TEST(CoAccess, DecayHalvesWeightEveryHalfLife) {
  CoAccessParams p = Params();  // half-life 2 sessions
  ModelMeta meta;
  std::unordered_map<uint64_t, BlockStats> stats;
  FoldSession({1}, p, &meta, &stats);
  FoldSession({2}, p, &meta, &stats);
  FoldSession({2}, p, &meta, &stats);
  // Block 1 was read 2 sessions ago: weight 1 decayed by one half-life.
  EXPECT_NEAR(stats[1].WeightAt(meta.sessions, p), 0.5, 1e-12);
  // total = ((1*d + 1)*d + 1) with d = 2^-1/2
  double d = std::pow(0.5, 0.5);
  EXPECT_NEAR(meta.total, (1 * d + 1) * d + 1, 1e-12);
  // Block 2 read in the last two sessions: 1*d + 1.
  EXPECT_NEAR(stats[2].WeightAt(meta.sessions, p), d + 1, 1e-12);
  EXPECT_EQ(stats[2].sessions, 2u);
}

TEST(CoAccess, RankIsTheWeightedMeanOfFirstAccessPositions) {
  CoAccessParams p = Params();
  p.half_life = 1e9;  // no decay: a plain mean
  ModelMeta meta;
  std::unordered_map<uint64_t, BlockStats> stats;
  FoldSession({5, 7}, p, &meta, &stats);        // 7 at rank 1
  FoldSession({1, 2, 3, 7}, p, &meta, &stats);  // 7 at rank 3
  EXPECT_NEAR(stats[7].rank, 2.0, 1e-6);
}

TEST(CoAccess, SuccessorsAccumulateSupportAndKeepTopK) {
  CoAccessParams p = Params();
  p.half_life = 1e9;
  p.window = 4;
  p.top_k = 2;
  ModelMeta meta;
  std::unordered_map<uint64_t, BlockStats> stats;
  FoldSession({1, 2, 3, 4}, p, &meta, &stats);
  FoldSession({1, 3, 2, 5}, p, &meta, &stats);
  FoldSession({1, 3}, p, &meta, &stats);
  // After block 1: 3 in all three sessions, 2 in two, 4 and 5 in one each.
  ASSERT_EQ(stats[1].successors.size(), 2u);
  EXPECT_EQ(stats[1].successors[0].block, 3u);
  EXPECT_NEAR(stats[1].successors[0].support, 3.0, 1e-6);
  EXPECT_EQ(stats[1].successors[1].block, 2u);
  EXPECT_NEAR(stats[1].successors[1].support, 2.0, 1e-6);
}

TEST(CoAccess, EncodingRoundTripsAndRejectsJunk) {
  BlockStats st;
  st.weight = 1.5;
  st.rank = 3.25;
  st.as_of = 9;
  st.sessions = 4;
  st.successors = {{7, 2.0}, {8, 1.0}};
  BlockStats back;
  Bytes enc = st.Encode();
  ASSERT_TRUE(BlockStats::Decode(enc, &back).ok());
  EXPECT_EQ(back.successors.size(), 2u);
  EXPECT_DOUBLE_EQ(back.rank, 3.25);
  enc.pop_back();
  EXPECT_FALSE(BlockStats::Decode(enc, &back).ok());
}

class AccessDbTest : public ::testing::Test {
 protected:
  void Open(const CoAccessParams& p, SessionPolicy policy = SessionPolicy()) {
    db_.reset();
    ASSERT_TRUE(
        AccessDb::Open(dir_ / "db", CoAccessSettings::Exactly(p), &db_, std::move(policy)).ok());
  }
  // The model of (ext, vol) as block -> sessions that read it.
  std::map<uint64_t, uint32_t> Model(const std::string& ext, ModelMeta* meta = nullptr) {
    ModelMeta m;
    std::vector<std::pair<uint64_t, BlockStats>> blocks;
    EXPECT_TRUE(db_->LoadModel(ext, "vol", &m, &blocks).ok());
    if (meta) *meta = m;
    std::map<uint64_t, uint32_t> out;
    for (const auto& [b, st] : blocks) out[b] = st.sessions;
    return out;
  }
  uint32_t Session(const std::string& ext, const std::vector<uint64_t>& blocks, bool end = true) {
    uint32_t n = 0;
    EXPECT_TRUE(db_->BeginSession(ext, "vol", 0xabc, 0xdef, &n).ok());
    std::vector<LoggedEvent> events;
    for (uint32_t i = 0; i < blocks.size(); ++i)
      events.push_back({ext, "vol", n, i, {blocks[i], i * 10u}});
    EXPECT_TRUE(db_->AppendEvents(events).ok());
    if (end) {
      EXPECT_TRUE(db_->EndSession(ext, "vol", n, blocks.size(), 0).ok());
    }
    return n;
  }
  testing::TempDir dir_;
  std::unique_ptr<AccessDb> db_;
};

TEST_F(AccessDbTest, SessionsAreNumberedPerExtensionAndVolume) {
  Open(Params());
  EXPECT_EQ(Session("a", {1, 2}), 1u);
  EXPECT_EQ(Session("a", {1}), 2u);
  EXPECT_EQ(Session("b", {3}), 1u);
  std::vector<SessionRecord> s;
  ASSERT_TRUE(db_->ListSessions("a", "vol", &s).ok());
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].events, 2u);
  EXPECT_EQ(s[1].state, SessionState::kEnded);
  std::vector<AccessEvent> log;
  ASSERT_TRUE(db_->SessionLog("a", "vol", 1, &log).ok());
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].block, 2u);
}

TEST_F(AccessDbTest, StatisticsPerExtensionAndVolumeWide) {
  Open(Params());
  Session("a", {1, 2});
  Session("b", {2, 3});
  ModelMeta meta;
  std::vector<std::pair<uint64_t, BlockStats>> blocks;
  ASSERT_TRUE(db_->LoadModel("a", "vol", &meta, &blocks).ok());
  EXPECT_EQ(meta.sessions, 1u);
  EXPECT_EQ(blocks.size(), 2u);
  ASSERT_TRUE(db_->LoadModel(kAllExtensions, "vol", &meta, &blocks).ok());
  EXPECT_EQ(meta.sessions, 2u);
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(blocks[1].first, 2u);
  EXPECT_EQ(blocks[1].second.sessions, 2u);
}

TEST_F(AccessDbTest, CapKeepsTheMostFrequentBlocks) {
  CoAccessParams p = Params();
  p.max_blocks = 3;
  Open(p);
  Session("a", {1, 2, 3});
  Session("a", {1, 2, 4});
  Session("a", {1, 5});
  ModelMeta meta;
  std::vector<std::pair<uint64_t, BlockStats>> blocks;
  ASSERT_TRUE(db_->LoadModel("a", "vol", &meta, &blocks).ok());
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(meta.blocks, 3u);
  EXPECT_EQ(blocks[0].first, 1u);  // in every session
  EXPECT_EQ(blocks[1].first, 2u);  // in two
  EXPECT_EQ(blocks[2].first, 5u);  // the newest of the rest
}

TEST_F(AccessDbTest, RawLogsAreKeptForTheLastSessionsOnly) {
  CoAccessParams p = Params();
  p.keep_sessions = 2;
  Open(p);
  for (int i = 0; i < 4; ++i) Session("a", {static_cast<uint64_t>(i)});
  std::vector<SessionRecord> s;
  ASSERT_TRUE(db_->ListSessions("a", "vol", &s).ok());
  ASSERT_EQ(s.size(), 4u);
  EXPECT_FALSE(s[0].log_kept);
  EXPECT_FALSE(s[1].log_kept);
  EXPECT_TRUE(s[2].log_kept);
  std::vector<AccessEvent> log;
  ASSERT_TRUE(db_->SessionLog("a", "vol", 1, &log).ok());
  EXPECT_TRUE(log.empty());
  ASSERT_TRUE(db_->SessionLog("a", "vol", 4, &log).ok());
  EXPECT_EQ(log.size(), 1u);
}

TEST(CoAccess, AWholeImageReadInOrderIsToldFromARestore) {
  std::vector<uint64_t> in_order(1000);
  for (uint64_t i = 0; i < in_order.size(); ++i) in_order[i] = i;
  EXPECT_TRUE(IsSequentialWholeRead(in_order, 1000));
  EXPECT_TRUE(IsSequentialWholeRead(in_order, 1100));   // 91% of the image
  EXPECT_FALSE(IsSequentialWholeRead(in_order, 2000));  // half of it: a restore may do that
  // Two readers or readahead finishing out of order: a few swaps still pass.
  std::vector<uint64_t> swapped = in_order;
  // (one pair in eight out of order: cp and dd were seen at 92-95% ascending)
  for (size_t i = 0; i + 1 < swapped.size(); i += 8) std::swap(swapped[i], swapped[i + 1]);
  EXPECT_TRUE(IsSequentialWholeRead(swapped, 1000));
  // A scan in another order (a filesystem walk) is not.
  std::vector<uint64_t> walk = in_order;
  std::mt19937_64 rng(1);
  std::shuffle(walk.begin(), walk.end(), rng);
  EXPECT_FALSE(IsSequentialWholeRead(walk, 1000));
  EXPECT_FALSE(IsSequentialWholeRead({}, 0));
}

TEST_F(AccessDbTest, ASequentialWholeImageReadIsNotLearnedUnlessAsked) {
  SessionPolicy policy;
  policy.present_blocks = [](const std::string&, uint64_t) { return uint64_t{100}; };
  Open(Params(), policy);
  std::vector<uint64_t> copy(100);
  for (uint64_t i = 0; i < copy.size(); ++i) copy[i] = i;
  Session("a", {5, 9, 2});
  Session("a", copy);
  std::vector<SessionRecord> s;
  ASSERT_TRUE(db_->ListSessions("a", "vol", &s).ok());
  ASSERT_EQ(s.size(), 2u);
  EXPECT_TRUE(s[0].learned());
  EXPECT_TRUE(s[1].sequential);
  EXPECT_FALSE(s[1].learned());
  ModelMeta meta;
  EXPECT_EQ(Model("a", &meta).size(), 3u);
  EXPECT_EQ(meta.sessions, 1u);
  EXPECT_EQ(Model(kAllExtensions).size(), 3u);
  // Asked to, it learns from it.
  policy.learn_sequential = true;
  Open(Params(), policy);
  Session("a", copy);
  EXPECT_EQ(Model("a").size(), 100u);
}

TEST_F(AccessDbTest, ForgettingASessionLearnsTheModelsAgainWithoutIt) {
  Open(Params());
  Session("a", {1, 2, 3});
  uint32_t check = Session("a", {7, 8, 9});  // a verification, not a restore
  Session("a", {1, 2, 4});
  Session("b", {8});
  EXPECT_EQ(Model("a").count(7), 1u);
  Relearned r;
  ASSERT_TRUE(db_->Forget("a", "vol", check, &r).ok());
  EXPECT_EQ(r.sessions, 2u);
  EXPECT_EQ(r.without_log, 0u);
  ModelMeta meta;
  auto model = Model("a", &meta);
  EXPECT_EQ(meta.sessions, 2u);
  EXPECT_EQ(model.count(7), 0u);
  EXPECT_EQ(model.count(9), 0u);
  EXPECT_EQ(model[1], 2u);
  EXPECT_EQ(model[4], 1u);
  // The volume-wide model keeps b's block 8 but no longer a's.
  auto all = Model(kAllExtensions, &meta);
  EXPECT_EQ(meta.sessions, 3u);
  EXPECT_EQ(all[8], 1u);
  EXPECT_EQ(all.count(7), 0u);
  std::vector<SessionRecord> s;
  ASSERT_TRUE(db_->ListSessions("a", "vol", &s).ok());
  EXPECT_TRUE(s[1].forgotten);
  std::map<std::pair<std::string, std::string>, int64_t> relearned;
  ASSERT_TRUE(db_->RelearnedTimes(&relearned).ok());
  EXPECT_GT((relearned[{"a", "vol"}]), 1700000000) << "LSIs planned before are stale";
  EXPECT_EQ(relearned.count({"b", "vol"}), 0u);
  // Again is harmless; a session that is not there is named.
  ASSERT_TRUE(db_->Forget("a", "vol", check, &r).ok());
  EXPECT_EQ(Model("a").count(7), 0u);
  EXPECT_TRUE(db_->Forget("a", "vol", 99, &r).IsNotFound());
  // An open session cannot be forgotten yet.
  uint32_t open = Session("a", {3}, /*end=*/false);
  EXPECT_EQ(db_->Forget("a", "vol", open, &r).code(), Status::Code::kUnavailable);
}

TEST_F(AccessDbTest, ForgettingCountsWhatRetentionAlreadyDropped) {
  CoAccessParams p = Params();
  p.keep_sessions = 2;
  Open(p);
  Session("a", {1});
  Session("a", {2});
  Session("a", {3});
  uint32_t last = Session("a", {4});
  Relearned r;
  ASSERT_TRUE(db_->Forget("a", "vol", last, &r).ok());
  EXPECT_EQ(r.sessions, 1u);     // session 3: its log is kept
  EXPECT_EQ(r.without_log, 2u);  // sessions 1 and 2: theirs are gone
  EXPECT_EQ(Model("a"), (std::map<uint64_t, uint32_t>{{3, 1}}));
}

TEST_F(AccessDbTest, AResetForgetsOneExtensionAndKeepsTheOthers) {
  Open(Params());
  Session("a", {1, 2});
  Session("a", {1});
  Session("b", {5});
  uint32_t removed = 0;
  Relearned r;
  ASSERT_TRUE(db_->Reset("a", "vol", &removed, &r).ok());
  EXPECT_EQ(removed, 2u);
  EXPECT_TRUE(Model("a").empty());
  std::vector<SessionRecord> s;
  ASSERT_TRUE(db_->ListSessions("a", "vol", &s).ok());
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(Model(kAllExtensions), (std::map<uint64_t, uint32_t>{{5, 1}}));
  EXPECT_EQ(Session("a", {3}), 1u) << "numbering starts again";
  EXPECT_EQ(Model("b"), (std::map<uint64_t, uint32_t>{{5, 1}}));
}

TEST_F(AccessDbTest, SessionsLeftOpenByACrashAreEndedAndFoldedAtOpen) {
  Open(Params());
  Session("a", {7, 8, 9}, /*end=*/false);
  Open(Params());  // as a restarted daemon would
  std::vector<SessionRecord> s;
  ASSERT_TRUE(db_->ListSessions("a", "vol", &s).ok());
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].state, SessionState::kRecovered);
  EXPECT_TRUE(s[0].folded);
  ModelMeta meta;
  std::vector<std::pair<uint64_t, BlockStats>> blocks;
  ASSERT_TRUE(db_->LoadModel("a", "vol", &meta, &blocks).ok());
  EXPECT_EQ(blocks.size(), 3u);
}

TEST_F(AccessDbTest, ASecondOpenWhileHeldIsUnavailable) {
  Open(Params());
  std::unique_ptr<AccessDb> other;
  Status s = AccessDb::Open(dir_ / "db", CoAccessSettings(), &other);
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("in use"), std::string::npos);
}

}  // namespace
}  // namespace lsifs

namespace lsifs {
namespace {

TEST(CoAccessSettings, ParametersAreKeptInTheDatabaseAndChangedOnlyWhenSet) {
  testing::TempDir dir;
  std::unique_ptr<AccessDb> db;
  CoAccessSettings set;
  Status st;
  ASSERT_TRUE(set.Parse("keep_sessions", "5", &st));
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(set.Parse("half_life", "3.5", &st) && st.ok());
  EXPECT_FALSE(set.Parse("colour", "red", &st));
  ASSERT_TRUE(set.Parse("successor_top_k", "0", &st));
  EXPECT_FALSE(st.ok());
  set.top_k.reset();
  // Out of bounds or not numbers: refused, and nothing is changed.
  CoAccessSettings bad;
  for (auto [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"half_life", "inf"},
                                                        {"half_life", "nan"},
                                                        {"half_life", "0"},
                                                        {"half_life", "8x"},
                                                        {"max_stat_blocks", "-1"},
                                                        {"successor_window", "+3"},
                                                        {"keep_sessions", "5 "}}) {
    ASSERT_TRUE(bad.Parse(key, value, &st)) << key;
    EXPECT_FALSE(st.ok()) << key << "=" << value;
  }
  EXPECT_TRUE(bad.empty());
  ASSERT_TRUE(AccessDb::Open(dir / "db", set, &db).ok());
  EXPECT_EQ(db->params().keep_sessions, 5u);
  db.reset();
  ASSERT_TRUE(AccessDb::Open(dir / "db", CoAccessSettings(), &db).ok());
  EXPECT_EQ(db->params().keep_sessions, 5u);
  EXPECT_DOUBLE_EQ(db->params().half_life, 3.5);
  EXPECT_EQ(db->params().top_k, CoAccessParams().top_k);
}

}  // namespace
}  // namespace lsifs
