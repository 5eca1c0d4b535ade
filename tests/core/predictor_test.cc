// The predictor on synthetic histories with known answers.
#include "core/predictor/predictor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <string>
#include <unordered_map>

namespace lsifs {
namespace {

// A model built the way the access database builds it: by folding sessions.
class History {
 public:
  explicit History(CoAccessParams params = CoAccessParams()) : params_(params) {}
  History& Session(const std::vector<uint64_t>& order) {
    FoldSession(order, params_, &meta_, &stats_);
    return *this;
  }
  ModelView View() const {
    ModelView v;
    v.meta = meta_;
    for (const auto& [b, s] : stats_) v.blocks.emplace_back(b, s);
    std::sort(v.blocks.begin(), v.blocks.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    return v;
  }
  const CoAccessParams& params() const { return params_; }

 private:
  CoAccessParams params_;
  ModelMeta meta_;
  std::unordered_map<uint64_t, BlockStats> stats_;
};

std::vector<uint64_t> AllPresent(uint64_t n) {
  std::vector<uint64_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

std::vector<uint64_t> Blocks(const Plan& p) {
  std::vector<uint64_t> out;
  for (const auto& b : p.blocks) out.push_back(b.block);
  return out;
}

bool Has(const Plan& p, uint64_t block) {
  auto b = Blocks(p);
  return std::find(b.begin(), b.end(), block) != b.end();
}

const PlannedBlock* Find(const Plan& p, uint64_t block) {
  for (const auto& b : p.blocks) {
    if (b.block == block) return &b;
  }
  return nullptr;
}

constexpr uint32_t kBlock = 65536;

TEST(Predictor, FrequentBlocksAreChosenRareOnesNotAndOrderIsFirstAccess) {
  History own;
  own.Session({5, 3, 9, 77});  // 77: once, long ago
  for (int i = 0; i < 9; ++i) own.Session({5, 3, 9, 11 + static_cast<uint64_t>(i % 2)});
  PlanOptions options;
  options.floor = 0.2;
  Plan plan = PlanBlocks(own.View(), own.View(), own.params(), AllPresent(100), kBlock, options);
  // 5, 3, 9 every time, 11 and 12 about half the time; 77 once: below the floor.
  EXPECT_EQ(Blocks(plan), (std::vector<uint64_t>{5, 3, 9, 11, 12}));
  EXPECT_FALSE(Has(plan, 77));
  EXPECT_NEAR(Find(plan, 5)->p, 1.0, 1e-9);
  EXPECT_EQ(Find(plan, 5)->tier, PlanTier::kOwn);
  EXPECT_LT(Find(plan, 11)->p, 0.7);
  EXPECT_GT(Find(plan, 11)->p, 0.3);
}

TEST(Predictor, TheBudgetTakesTheMostLikelyFirstAndTheDefaultFollowsHistory) {
  History own;
  for (int i = 0; i < 8; ++i) own.Session({1, 2, 3, 4, 10 + static_cast<uint64_t>(i % 4)});
  PlanOptions options;
  options.budget_bytes = 4 * kBlock;
  Plan plan = PlanBlocks(own.View(), own.View(), own.params(), AllPresent(100), kBlock, options);
  EXPECT_EQ(Blocks(plan), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(plan.cut_by_budget, 4u);  // 10..13, each about a quarter
  // Default: 1.5 x the blocks a session is expected to read (4 + 4 x 1/4).
  Plan by_default =
      PlanBlocks(own.View(), own.View(), own.params(), AllPresent(100), kBlock, PlanOptions());
  EXPECT_NEAR(by_default.expected_blocks, 5.0, 0.2);
  EXPECT_EQ(by_default.budget_bytes, 8u * kBlock);
  EXPECT_EQ(by_default.blocks.size(), 8u);
}

TEST(Predictor, AbsentBlocksAreNeverPlanned) {
  History own;
  for (int i = 0; i < 4; ++i) own.Session({1, 2, 3});
  std::vector<uint64_t> present = {1, 3};  // block 2 is zeros in this snapshot
  Plan plan = PlanBlocks(own.View(), own.View(), own.params(), present, kBlock, PlanOptions());
  EXPECT_EQ(Blocks(plan), (std::vector<uint64_t>{1, 3}));
}

TEST(Predictor, LittleOwnHistoryLeansOnTheVolumeWideModel) {
  History own, all;
  own.Session({1, 2});
  all.Session({1, 2});
  for (int i = 0; i < 9; ++i) all.Session({1, 7, 8});
  Plan plan =
      PlanBlocks(own.View(), all.View(), own.params(), AllPresent(100), kBlock, PlanOptions());
  // One own session against a prior worth two: a = 1/3.
  EXPECT_NEAR(plan.own_weight, 1.0 / 3, 1e-9);
  ASSERT_TRUE(Has(plan, 7));
  EXPECT_EQ(Find(plan, 7)->tier, PlanTier::kVolumeWide);
  EXPECT_GT(Find(plan, 7)->p, 0.5);
  ASSERT_TRUE(Has(plan, 2));
  EXPECT_EQ(Find(plan, 2)->tier, PlanTier::kOwn);
  // With much own history the extension's own habits win.
  for (int i = 0; i < 30; ++i) {
    own.Session({1, 2});
    all.Session({1, 2});
  }
  PlanOptions tight;
  tight.floor = 0.3;
  Plan later = PlanBlocks(own.View(), all.View(), own.params(), AllPresent(100), kBlock, tight);
  EXPECT_GT(later.own_weight, 0.8);  // about 11 decayed sessions
  EXPECT_TRUE(Has(later, 2));
  EXPECT_FALSE(Has(later, 7));
}

TEST(Predictor, ColdStartFromOtherExtensionsThenMetadataThenNothing) {
  History none, others;
  for (int i = 0; i < 6; ++i) others.Session({0, 1, 2, 40 + static_cast<uint64_t>(i % 2), 9});
  Plan plan =
      PlanBlocks(none.View(), others.View(), none.params(), AllPresent(100), kBlock, PlanOptions());
  EXPECT_EQ(plan.own_weight, 0);
  EXPECT_EQ(Blocks(plan), (std::vector<uint64_t>{0, 1, 2, 40, 41, 9}));
  // Read first by every session: the filesystem's metadata.
  EXPECT_EQ(Find(plan, 0)->tier, PlanTier::kMetadata);
  EXPECT_EQ(Find(plan, 9)->tier, PlanTier::kMetadata);
  EXPECT_EQ(Find(plan, 40)->tier, PlanTier::kVolumeWide);
  EXPECT_EQ(plan.tier_blocks[static_cast<int>(PlanTier::kMetadata)], 4u);
  Plan nothing =
      PlanBlocks(none.View(), none.View(), none.params(), AllPresent(100), kBlock, PlanOptions());
  EXPECT_TRUE(nothing.blocks.empty());
  EXPECT_EQ(nothing.budget_bytes, 0u);
}

TEST(Predictor, ConfidentSuccessorsNeedSupportAndShare) {
  PlanOptions o;
  CoAccessParams p;
  EXPECT_FALSE(ConfidentSuccessor({1, 1.5}, 2.0, p, o));   // too few sessions
  EXPECT_FALSE(ConfidentSuccessor({1, 3.0}, 10.0, p, o));  // follows in 30% only
  EXPECT_TRUE(ConfidentSuccessor({1, 6.0}, 10.0, p, o));
  EXPECT_FALSE(ConfidentSuccessor({1, 6.0}, 0.0, p, o));
}

TEST(Predictor, TwoSessionsOfCoAccessAreEnoughEvenDecayed) {
  // A then B in the last two sessions: support 1 + decay(1) < 2, and still
  // confident, as "seen in two sessions" promises.
  History own;
  own.Session({1, 2});
  own.Session({1, 2});
  ModelView v = own.View();
  ASSERT_EQ(v.blocks[0].first, 1u);
  const BlockStats& a = v.blocks[0].second;
  ASSERT_FALSE(a.successors.empty());
  double decay = own.params().Decay(v.meta.sessions - a.as_of);
  EXPECT_LT(a.successors[0].support * decay, 2.0);
  EXPECT_TRUE(ConfidentSuccessor({2, a.successors[0].support * decay}, a.weight * decay,
                                 own.params(), PlanOptions()));
}

TEST(Predictor, ConfidentSeedsBringSuccessorsTheModelNoLongerRanks) {
  // A model whose cap dropped block 200's own statistics, but whose seed
  // remembers that 200 follows it in 8 of 10 sessions.
  ModelView own;
  own.meta.sessions = 10;
  own.meta.total = 10;
  BlockStats seed;
  seed.weight = 10;
  seed.rank = 3;
  seed.as_of = 10;
  seed.successors = {{200, 8.0}, {300, 1.0}};
  own.blocks = {{1, seed}};
  Plan plan =
      PlanBlocks(own, ModelView(), CoAccessParams(), AllPresent(400), kBlock, PlanOptions());
  ASSERT_TRUE(Has(plan, 200));
  EXPECT_EQ(Find(plan, 200)->tier, PlanTier::kSuccessor);
  EXPECT_NEAR(Find(plan, 200)->p, 0.8, 1e-9);
  EXPECT_GT(Find(plan, 200)->rank, Find(plan, 1)->rank);  // right after its seed
  EXPECT_FALSE(Has(plan, 300));
}

TEST(Predictor, ThePlanDoesNotDependOnTheOrderOrNumberingOfBlocks) {
  // A chain a -> b -> c (a model whose cap dropped c's own statistics), with
  // a, b, c numbered 1, 3, 5 or 3, 1, 5, listed in either order: the same
  // plan up to the numbering.
  auto chain = [](uint64_t a, uint64_t b, uint64_t c, bool reversed) {
    ModelView m;
    m.meta.sessions = 10;
    m.meta.total = 10;
    BlockStats sa, sb;
    sa.weight = 10;
    sa.as_of = 10;
    sa.successors = {{b, 6.0}};
    sb.weight = 4;  // p 0.4 alone: a seed only if its lifting counted
    sb.rank = 1;
    sb.as_of = 10;
    sb.successors = {{c, 4.0}};
    m.blocks = {{a, sa}, {b, sb}};
    if (reversed) std::reverse(m.blocks.begin(), m.blocks.end());
    return m;
  };
  auto plan = [&](uint64_t a, uint64_t b, uint64_t c, bool reversed) {
    Plan p = PlanBlocks(chain(a, b, c, reversed), ModelView(), CoAccessParams(), AllPresent(10),
                        kBlock, PlanOptions());
    std::set<std::string> out;
    for (const auto& x : p.blocks) out.insert(x.block == a ? "a" : x.block == b ? "b" : "c");
    return out;
  };
  auto first = plan(1, 3, 5, false);
  EXPECT_EQ(plan(3, 1, 5, false), first);
  EXPECT_EQ(plan(1, 3, 5, true), first);
  EXPECT_EQ(plan(3, 1, 5, true), first);
  EXPECT_EQ(first, (std::set<std::string>{"a", "b"}));  // b lifted to 0.6; c one level on
}

}  // namespace
}  // namespace lsifs

namespace lsifs {
namespace {

TEST(SuccessorTable, ConfidentSuccessorsOwnFirstThenTheVolumeWideOnes) {
  History own, all;
  for (int i = 0; i < 3; ++i) {
    own.Session({1, 2, 3});
    all.Session({1, 9}).Session({50, 51});
  }
  own.Session({7, 8});  // once: noise
  SuccessorTable t = BuildSuccessorTable(own.View(), all.View(), own.params(), PlanOptions());
  auto of = [&](uint64_t b) { return std::vector<uint64_t>(t.Of(b).begin(), t.Of(b).end()); };
  EXPECT_EQ(of(1), (std::vector<uint64_t>{2, 3}));  // the own model decides for a seed it knows
  EXPECT_EQ(of(2), (std::vector<uint64_t>{3}));
  EXPECT_TRUE(of(7).empty());
  EXPECT_TRUE(of(3).empty());
  EXPECT_EQ(of(50), (std::vector<uint64_t>{51}));  // cold start from the volume-wide model
  EXPECT_TRUE(of(12345).empty());
  EXPECT_EQ(t.entries(), 4u);
  EXPECT_GT(t.bytes(), 0u);
  // A cap keeps the most read seeds whole.
  SuccessorTable capped =
      BuildSuccessorTable(own.View(), all.View(), own.params(), PlanOptions(), 3);
  EXPECT_LE(capped.entries(), 3u);
  EXPECT_EQ(capped.Of(1).size(), 2u);
}

}  // namespace
}  // namespace lsifs
