// lsictl verify's core: every kind of damage is found and named, intact
// things are reported intact, and nothing is changed.
#include "core/verify/verify.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "core/assembler/assemble.h"
#include "core/lsi/layer.h"
#include "core/util/hex.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

class VerifyTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    snapshot_ = ImportBytes("vol", testing::PseudoRandom(32 * kBlock, 5));
    std::unique_ptr<OriginSnapshot> base;
    ASSERT_TRUE(local_->OpenSnapshot("vol", snapshot_, &base).ok());
    ASSERT_TRUE(
        AssembleLsi(*catalog_, *base, info_, key_, {{1, 2, 3}, {7}}, AssembleOptions(), &lsi_)
            .ok());
  }

  std::vector<VerifyResult> Run(const std::string& target = "") {
    std::vector<VerifyResult> out;
    Status s = Verify(*store_, *keys_, target, nullptr, &out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  static const VerifyResult* Find(const std::vector<VerifyResult>& rs, uint64_t id) {
    for (const auto& r : rs) {
      if (r.id == id) return &r;
    }
    return nullptr;
  }
  static std::string Problems(const VerifyResult& r) {
    std::string all;
    for (const auto& p : r.problems) all += p + "\n";
    return all;
  }
  void Flip(const std::string& path, uint64_t offset) {
    Bytes data = testing::ReadFileBytes(path);
    ASSERT_LT(offset, data.size());
    data[offset] ^= 0x10;
    testing::WriteFileBytes(path, data);
  }

  uint64_t snapshot_ = 0;
  Manifest lsi_;
};

TEST_F(VerifyTest, AnIntactStoreIsReportedIntactAndLeftUnchanged) {
  auto before = testing::TreeListing(store_->root());
  auto rs = Run();
  ASSERT_EQ(rs.size(), 2u);
  const VerifyResult* snap = Find(rs, snapshot_);
  const VerifyResult* lsi = Find(rs, lsi_.lsi_id);
  ASSERT_TRUE(snap && lsi);
  EXPECT_TRUE(snap->ok()) << Problems(*snap);
  EXPECT_EQ(snap->blocks_checked, 32u);
  EXPECT_TRUE(lsi->ok()) << Problems(*lsi);
  EXPECT_EQ(lsi->blocks_checked, 4u);
  EXPECT_EQ(testing::TreeListing(store_->root()), before);
  // One by id.
  rs = Run(FormatId(lsi_.lsi_id));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].kind, VerifyResult::Kind::kLsi);
  std::vector<VerifyResult> none;
  EXPECT_TRUE(Verify(*store_, *keys_, "0123456789abcdef", nullptr, &none).IsNotFound());
  EXPECT_FALSE(Verify(*store_, *keys_, "nonsense", nullptr, &none).ok());
}

TEST_F(VerifyTest, ADamagedBlockOfASnapshotIsNamed) {
  Flip(store_->snapshot_data_path("vol", snapshot_), DataRecordOffset(kBlock, 4) + 100);
  auto rs = Run();
  const VerifyResult* snap = Find(rs, snapshot_);
  ASSERT_TRUE(snap);
  ASSERT_FALSE(snap->ok());
  EXPECT_EQ(snap->problems.size(), 1u) << Problems(*snap);
  EXPECT_NE(snap->problems[0].find("authentication failed"), std::string::npos) << Problems(*snap);
  EXPECT_EQ(snap->blocks_checked, 32u) << "the other blocks are still checked";
}

TEST_F(VerifyTest, ADamagedSnapshotMapIsNamed) {
  Flip(store_->snapshot_map_path("vol", snapshot_), 40);
  const VerifyResult* snap = nullptr;
  auto rs = Run();
  snap = Find(rs, snapshot_);
  ASSERT_TRUE(snap);
  EXPECT_FALSE(snap->ok());
  // The LSI standing on it is damaged too: its base cannot be read.
  const VerifyResult* lsi = Find(rs, lsi_.lsi_id);
  ASSERT_TRUE(lsi);
  EXPECT_NE(Problems(*lsi).find("its base snapshot"), std::string::npos) << Problems(*lsi);
}

TEST_F(VerifyTest, DamagedMissingOrSwappedLayersAndManifestsAreNamed) {
  const std::string layer0 = store_->layer_path(lsi_.layers[0].layer_id);
  const std::string layer1 = store_->layer_path(lsi_.layers[1].layer_id);
  std::unique_ptr<LayerReader> reader;
  ASSERT_TRUE(LayerReader::Open(layer0, info_, key_, &reader).ok());
  const uint64_t record1 = reader->RecordOffset(1) + 50;
  reader.reset();
  Flip(layer0, record1);
  auto rs = Run(FormatId(lsi_.lsi_id));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_NE(Problems(rs[0]).find("authentication failed"), std::string::npos) << Problems(rs[0]);
  Flip(layer0, record1);  // repaired

  // Swapped: the second layer's file under the first's name.
  Bytes saved = testing::ReadFileBytes(layer0);
  ASSERT_EQ(testing::RunShell("cp " + layer1 + " " + layer0), 0);
  rs = Run(FormatId(lsi_.lsi_id));
  EXPECT_FALSE(rs[0].ok());
  testing::WriteFileBytes(layer0, saved);

  ASSERT_EQ(::unlink(layer1.c_str()), 0);
  rs = Run(FormatId(lsi_.lsi_id));
  EXPECT_NE(Problems(rs[0]).find("layer " + FormatId(lsi_.layers[1].layer_id)), std::string::npos)
      << Problems(rs[0]);

  const std::string manifest = store_->manifest_path(lsi_.lsi_id);
  Flip(manifest, testing::ReadFileBytes(manifest).size() - 40);  // in the block lists
  rs = Run(FormatId(lsi_.lsi_id));
  EXPECT_NE(Problems(rs[0]).find("manifest"), std::string::npos) << Problems(rs[0]);
}

TEST_F(VerifyTest, AnLsiNoKeyOfTheStoreOpensIsNamed) {
  ASSERT_EQ(::unlink(info_.path.c_str()), 0);
  auto rs = Run(FormatId(lsi_.lsi_id));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_NE(Problems(rs[0]).find("no key of the store opens it"), std::string::npos)
      << Problems(rs[0]);
}

}  // namespace
}  // namespace lsifs
