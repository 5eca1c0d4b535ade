// PreAssembleSnapshot's paths without a mount: a miss assembles what the
// predictor planned, a fresh LSI is returned as is, a new snapshot or a new
// session makes a new one, and blocks held unchanged in the extension's
// earlier layers never cross the origin link again (across snapshots too).
// The images are read back through the read path (no mount) and compared
// with the snapshot byte for byte.
#include "core/assembler/assemble.h"

#include <gtest/gtest.h>

#include <atomic>
#include <unordered_map>

#include "core/image/image.h"
#include "core/origin/import.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

using testing::TempDir;

constexpr uint64_t kBlocks = 64;

class AssemblerTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    image_ = testing::PseudoRandom(kBlocks * kBlock, 1);
    Import();
  }

  void Import() { ImportBytes("vol", image_); }

  // Sessions of site-a, folded as the access database folds them.
  void Session(const std::vector<uint64_t>& order) {
    FoldSession(order, models_.params, &own_meta_, &own_);
    FoldSession(order, models_.params, &all_meta_, &all_);
    ++sessions_;
  }

  LearnedModels Models() {
    LearnedModels m;
    m.own.meta = own_meta_;
    m.all.meta = all_meta_;
    for (const auto& [b, s] : own_) m.own.blocks.emplace_back(b, s);
    for (const auto& [b, s] : all_) m.all.blocks.emplace_back(b, s);
    return m;
  }

  CatalogContext Context() {
    CatalogContext c;
    c.now = static_cast<int64_t>(std::time(nullptr));
    std::vector<SnapshotInfo> snaps;
    EXPECT_TRUE(ListSnapshots(*store_, *keys_, "vol", &snaps).ok());
    c.latest_snapshot["vol"] = snaps.back().id;
    c.model_sessions[{"site-a", "vol"}] = sessions_;
    c.models_known = true;
    return c;
  }

  // Runs a pre-assembly of "vol" as `request` asks (its volume set here).
  Status Run(PreassembleRequest request, PreassembleResult* r) {
    request.volume = "vol";
    return PreAssembleSnapshot(*catalog_, *origin_, *keys_, info_, key_, Models(), Context(),
                               request, nullptr, r);
  }

  PreassembleResult Preassemble(const std::string& strategy = "predicted") {
    PreassembleRequest request;
    request.strategy = strategy;
    PreassembleResult r;
    Status s = Run(request, &r);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r;
  }

  // The LSI read back through the read path equals the current image.
  void ExpectReadsAsImage(const Manifest& m) {
    std::unique_ptr<LsiImage> img;
    ASSERT_TRUE(
        LsiImage::Open(*store_, m, testing::KeysOf(info_, key_), *local_, ImageOptions(), &img)
            .ok());
    Bytes got(image_.size());
    size_t done = 0;
    ASSERT_TRUE(img->Read(0, got, &done).ok());
    ASSERT_EQ(done, image_.size());
    EXPECT_TRUE(got == image_);
  }

  Bytes image_;
  LearnedModels models_;
  ModelMeta own_meta_, all_meta_;
  std::unordered_map<uint64_t, BlockStats> own_, all_;
  uint32_t sessions_ = 0;
};

TEST_F(AssemblerTest, AMissAssemblesThePlanInFirstAccessOrderAndAFreshLsiIsReturnedAsIs) {
  for (int i = 0; i < 4; ++i) Session({9, 2, 30, 4});
  PreassembleResult first = Preassemble();
  EXPECT_FALSE(first.reused);
  EXPECT_EQ(first.manifest.strategy, "predicted");
  EXPECT_EQ(first.manifest.model_sessions, 4u);
  ASSERT_EQ(first.manifest.layers.size(), 1u);
  EXPECT_EQ(first.manifest.layers[0].blocks, (std::vector<uint64_t>{2, 4, 9, 30}));
  EXPECT_EQ(first.stats.fetched_blocks, 4u);
  EXPECT_EQ(origin_->blocks.load(), 4u);
  // The layer holds them in first-access order.
  std::unique_ptr<LayerReader> layer;
  ASSERT_TRUE(
      LayerReader::Open(store_->layer_path(first.manifest.layers[0].layer_id), info_, key_, &layer)
          .ok());
  EXPECT_EQ(layer->blocks(), (std::vector<uint64_t>{9, 2, 30, 4}));
  ExpectReadsAsImage(first.manifest);

  PreassembleResult again = Preassemble();
  EXPECT_TRUE(again.reused);
  EXPECT_EQ(again.manifest.lsi_id, first.manifest.lsi_id);
  EXPECT_EQ(origin_->blocks.load(), 4u);  // nothing fetched
}

TEST_F(AssemblerTest, ANewSessionMakesANewLsiFromLocalCopiesWithoutTheLink) {
  for (int i = 0; i < 4; ++i) Session({1, 2, 3, 4, 5, 6});
  PreassembleResult first = Preassemble();
  ASSERT_EQ(first.manifest.delta_blocks(), 6u);
  Session({1, 2, 3, 4, 5, 6, 7});  // a block more, learned
  uint64_t before = origin_->blocks.load();
  PreassembleResult second = Preassemble();
  EXPECT_FALSE(second.reused);
  EXPECT_NE(second.manifest.lsi_id, first.manifest.lsi_id);
  EXPECT_EQ(second.manifest.model_sessions, 5u);
  EXPECT_EQ(second.stats.local_blocks, 6u);
  EXPECT_EQ(second.stats.fetched_blocks, second.manifest.delta_blocks() - 6);
  EXPECT_EQ(origin_->blocks.load() - before, second.stats.fetched_blocks);
  ExpectReadsAsImage(second.manifest);
}

TEST_F(AssemblerTest, ANewSnapshotCostsOnlyItsChangedPredictedBlocks) {
  for (int i = 0; i < 4; ++i) Session({0, 1, 2, 3, 4, 5, 6, 7});
  PreassembleResult first = Preassemble();
  ASSERT_EQ(first.stats.fetched_blocks, 8u);
  // Blocks 2 and 5 change; the rest are referenced, unchanged, by the new
  // snapshot.
  for (uint64_t b : {2u, 5u}) image_[b * kBlock + 7] ^= 0xff;
  Import();
  uint64_t before = origin_->blocks.load();
  PreassembleResult second = Preassemble();
  EXPECT_FALSE(second.reused);
  EXPECT_NE(second.manifest.snapshot, first.manifest.snapshot);
  EXPECT_EQ(second.stats.fetched_blocks, 2u);
  EXPECT_EQ(second.stats.local_blocks, 6u);
  EXPECT_EQ(origin_->blocks.load() - before, 2u);
  // The re-sealed blocks are bound to the new snapshot and read right.
  ExpectReadsAsImage(second.manifest);
}

TEST_F(AssemblerTest, ASwappedLayerIsNeverALocalCopy) {
  for (int i = 0; i < 4; ++i) Session({0, 1, 2, 3, 4, 5, 6, 7});
  Bytes first_image = image_;
  PreassembleResult first = Preassemble();
  uint64_t first_snapshot = first.manifest.snapshot;
  for (uint64_t b : {2u, 5u}) image_[b * kBlock + 7] ^= 0xff;
  Import();
  PreassembleResult second = Preassemble();
  // The new snapshot's layer copied over the old one's name: authentic, for
  // this extension, but for another snapshot.
  ASSERT_EQ(::rename(store_->layer_path(second.manifest.layers[0].layer_id).c_str(),
                     store_->layer_path(first.manifest.layers[0].layer_id).c_str()),
            0);
  Session({0, 1, 2, 3, 4, 5, 6, 7});  // the first LSI is stale now
  PreassembleRequest request;
  request.snapshot = first_snapshot;
  PreassembleResult again;
  ASSERT_TRUE(Run(request, &again).ok());
  EXPECT_EQ(again.stats.local_blocks, 0u);
  EXPECT_EQ(again.stats.fetched_blocks, 8u);
  image_ = first_image;
  ExpectReadsAsImage(again.manifest);
}

TEST_F(AssemblerTest, WithoutHistoryTheLsiIsBaseOnlyAndBaselinesAreAlwaysBuilt) {
  PreassembleResult none = Preassemble();
  EXPECT_TRUE(none.manifest.layers.empty());
  EXPECT_TRUE(none.plan.blocks.empty());
  PreassembleResult full = Preassemble("full");
  EXPECT_FALSE(full.reused);
  EXPECT_EQ(full.manifest.delta_blocks(), kBlocks);
  ExpectReadsAsImage(full.manifest);
  PreassembleRequest bad;
  bad.strategy = "magic";
  PreassembleResult r;
  EXPECT_EQ(Run(bad, &r).code(), Status::Code::kInvalidArgument);
}

TEST_F(AssemblerTest, ACancelledAssemblyLeavesNothing) {
  for (int i = 0; i < 3; ++i) Session({1, 2, 3});
  std::atomic<bool> cancel{true};
  PreassembleRequest request;
  request.cancel = &cancel;
  PreassembleResult r;
  EXPECT_EQ(Run(request, &r).code(), Status::Code::kCancelled);
  std::vector<CatalogEntry> all;
  ASSERT_TRUE(catalog_->List(Context(), &all).ok());
  EXPECT_TRUE(all.empty());
  EXPECT_TRUE(testing::TreeListing(store_->layers_dir()).empty());
}

}  // namespace
}  // namespace lsifs
