#include <gtest/gtest.h>

#include "core/lsi/layer.h"
#include "core/util/hex.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

using testing::TempDir;

constexpr uint32_t kBlock = 4096;

struct Ext {
  KeyInfo info;
  SecretKey key;
};

Ext MakeExt(const std::string& name) {
  Ext e;
  e.info.kind = KeyKind::kExtension;
  e.info.name = name;
  e.info.id = RandomU64NonZero();
  e.key = SecretKey::Random();
  return e;
}

class LayerTest : public ::testing::Test {
 protected:
  // Writes a layer with blocks `blocks` (in that record order); block b's
  // content is PseudoRandom(kBlock, b + seed).
  std::string Write(const std::string& name, const std::vector<uint64_t>& blocks, const Ext& ext,
                    uint64_t seed = 0, uint64_t layer_id = 0) {
    LayerHeader h;
    h.layer_id = layer_id ? layer_id : RandomU64NonZero();
    h.volume = "vol";
    h.snapshot = 0x1234;
    h.block_size = kBlock;
    LayerWriter w;
    std::string path = dir_ / name;
    EXPECT_TRUE(w.Open(dir_.path(), path, h, ext.info, ext.key).ok());
    for (uint64_t b : blocks) EXPECT_TRUE(w.Add(b, Content(b + seed)).ok());
    Status s = w.Commit();
    EXPECT_TRUE(s.ok()) << s.ToString();
    return path;
  }

  static Bytes Content(uint64_t seed) { return testing::PseudoRandom(kBlock, seed); }

  // Opens the layer and reads every block; ok only if all verify and match.
  static Status OpenAndReadAll(const std::string& path, const Ext& ext, uint64_t seed = 0) {
    std::unique_ptr<LayerReader> r;
    LSIFS_RETURN_IF_ERROR(LayerReader::Open(path, ext.info, ext.key, &r));
    Aead aead;
    Bytes record(r->record_size()), out(kBlock);
    for (uint64_t slot = 0; slot < r->blocks().size(); ++slot) {
      uint64_t b = r->blocks()[slot];
      LSIFS_RETURN_IF_ERROR(r->ReadBlock(slot, b, aead, record, out));
      if (out != Content(b + seed)) return Status::Corruption("garbage returned");
    }
    return Status::Ok();
  }

  TempDir dir_;
  Ext ext_ = MakeExt("site-a");
};

TEST_F(LayerTest, RoundTripKeepsRecordOrder) {
  std::vector<uint64_t> blocks = {42, 7, 1000000, 0};
  std::string path = Write("l", blocks, ext_);
  std::unique_ptr<LayerReader> r;
  ASSERT_TRUE(LayerReader::Open(path, ext_.info, ext_.key, &r).ok());
  EXPECT_EQ(r->blocks(), blocks);
  EXPECT_EQ(r->header().volume, "vol");
  EXPECT_EQ(r->header().snapshot, 0x1234u);
  EXPECT_EQ(r->header().extension, "site-a");
  EXPECT_EQ(r->header().key_id, ext_.info.id);
  EXPECT_TRUE(OpenAndReadAll(path, ext_).ok());
  Aead aead;
  Bytes record(r->record_size()), out(kBlock);
  EXPECT_FALSE(r->ReadBlock(0, 7, aead, record, out).ok()) << "slot 0 holds block 42";
}

TEST_F(LayerTest, EmptyLayerRoundTrips) {
  std::string path = Write("l", {}, ext_);
  EXPECT_TRUE(OpenAndReadAll(path, ext_).ok());
}

TEST_F(LayerTest, DuplicateBlockIsRefusedAndLeavesNoFile) {
  LayerHeader h;
  h.layer_id = 1;
  h.volume = "vol";
  h.block_size = kBlock;
  {
    LayerWriter w;
    ASSERT_TRUE(w.Open(dir_.path(), dir_ / "l", h, ext_.info, ext_.key).ok());
    ASSERT_TRUE(w.Add(3, Content(3)).ok());
    ASSERT_TRUE(w.Add(3, Content(3)).ok());
    EXPECT_FALSE(w.Commit().ok());
  }
  EXPECT_TRUE(testing::TreeListing(dir_.path()).empty());
}

TEST_F(LayerTest, EverySingleByteFlipIsDetected) {
  std::string path = Write("l", {5, 1, 9}, ext_);
  Bytes good = testing::ReadFileBytes(path);
  for (size_t i = 0; i < good.size(); ++i) {
    Bytes bad = good;
    bad[i] ^= 0x01;
    testing::WriteFileBytes(path, bad);
    EXPECT_FALSE(OpenAndReadAll(path, ext_).ok()) << "flip at byte " << i << " of " << good.size();
  }
}

TEST_F(LayerTest, TruncationAtEveryRecordBoundaryIsDetected) {
  std::string path = Write("l", {5, 1, 9}, ext_);
  Bytes good = testing::ReadFileBytes(path);
  std::unique_ptr<LayerReader> r;
  ASSERT_TRUE(LayerReader::Open(path, ext_.info, ext_.key, &r).ok());
  std::vector<size_t> cuts = {0, 8, 16};
  for (uint64_t slot = 0; slot <= 3; ++slot) {
    uint64_t at = r->RecordOffset(slot);
    for (uint64_t d : {0ull, 1ull, 12ull}) cuts.push_back(static_cast<size_t>(at + d));
    if (at > 0) cuts.push_back(static_cast<size_t>(at - 1));
  }
  cuts.push_back(good.size() - 8);  // index whole, end marker gone
  cuts.push_back(good.size() - 1);
  r.reset();
  for (size_t len : cuts) {
    testing::WriteFileBytes(path, ByteSpan(good).first(len));
    Status s = OpenAndReadAll(path, ext_);
    EXPECT_TRUE(s.IsCorruption()) << "cut at " << len << ": " << s.ToString();
  }
  // And an appended byte.
  Bytes longer = good;
  longer.push_back(0);
  testing::WriteFileBytes(path, longer);
  EXPECT_FALSE(OpenAndReadAll(path, ext_).ok());
}

TEST_F(LayerTest, BlockMovedBetweenLayersIsDetected) {
  std::string a = Write("a", {1, 2}, ext_);
  std::string b = Write("b", {1, 2}, ext_);  // same blocks, same contents
  Bytes la = testing::ReadFileBytes(a);
  Bytes lb = testing::ReadFileBytes(b);
  std::unique_ptr<LayerReader> ra;
  ASSERT_TRUE(LayerReader::Open(a, ext_.info, ext_.key, &ra).ok());
  uint64_t off = ra->RecordOffset(0);
  ra.reset();
  std::copy(la.begin() + static_cast<long>(off),
            la.begin() + static_cast<long>(off + kBlock + kSealOverhead),
            lb.begin() + static_cast<long>(off));
  testing::WriteFileBytes(b, lb);
  EXPECT_TRUE(OpenAndReadAll(b, ext_).IsCorruption());
}

TEST_F(LayerTest, BlockMovedBetweenBlockNumbersIsDetected) {
  std::string path = Write("l", {1, 2}, ext_, /*seed=*/0);
  Bytes l = testing::ReadFileBytes(path);
  std::unique_ptr<LayerReader> r;
  ASSERT_TRUE(LayerReader::Open(path, ext_.info, ext_.key, &r).ok());
  uint64_t r0 = r->RecordOffset(0), r1 = r->RecordOffset(1), n = r->record_size();
  r.reset();
  Bytes swapped = l;
  std::copy(l.begin() + static_cast<long>(r0), l.begin() + static_cast<long>(r0 + n),
            swapped.begin() + static_cast<long>(r1));
  std::copy(l.begin() + static_cast<long>(r1), l.begin() + static_cast<long>(r1 + n),
            swapped.begin() + static_cast<long>(r0));
  testing::WriteFileBytes(path, swapped);
  EXPECT_TRUE(OpenAndReadAll(path, ext_).IsCorruption());
}

TEST_F(LayerTest, IndexSwappedFromAnotherLayerIsDetected) {
  // Same layer id and key would be needed to forge; even a same-sized index
  // from a layer with other blocks is refused.
  std::string a = Write("a", {1, 2}, ext_);
  std::string b = Write("b", {3, 4}, ext_);
  Bytes la = testing::ReadFileBytes(a), lb = testing::ReadFileBytes(b);
  size_t index_size = kSealOverhead + 2 * 8 + 8;
  std::copy(la.end() - static_cast<long>(index_size), la.end(),
            lb.end() - static_cast<long>(index_size));
  testing::WriteFileBytes(b, lb);
  EXPECT_TRUE(OpenAndReadAll(b, ext_).IsCorruption());
}

TEST_F(LayerTest, AnotherExtensionsKeyIsRefusedNamingBothKeys) {
  std::string path = Write("l", {1}, ext_);
  Ext other = MakeExt("site-b");
  std::unique_ptr<LayerReader> r;
  Status s = LayerReader::Open(path, other.info, other.key, &r);
  EXPECT_TRUE(s.IsPermission()) << s.ToString();
  EXPECT_NE(s.message().find("'site-a'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("'site-b'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(FormatId(ext_.info.id)), std::string::npos) << s.message();
  // Right name and id but the wrong key bytes (a replaced key file).
  Ext impostor = MakeExt("site-a");
  impostor.info.id = ext_.info.id;
  s = LayerReader::Open(path, impostor.info, impostor.key, &r);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST_F(LayerTest, RewrapChangesOnlyTheHeader) {
  std::string path = Write("l", {8, 3, 5}, ext_);
  Bytes before = testing::ReadFileBytes(path);
  std::unique_ptr<LayerReader> r;
  ASSERT_TRUE(LayerReader::Open(path, ext_.info, ext_.key, &r).ok());
  uint64_t data_start = r->RecordOffset(0);
  r.reset();
  Ext rotated = MakeExt("site-a");
  ASSERT_TRUE(RewrapLayer(dir_.path(), path, ext_.info, ext_.key, rotated.info, rotated.key).ok());
  Bytes after = testing::ReadFileBytes(path);
  ASSERT_EQ(after.size(), before.size());
  EXPECT_TRUE(std::equal(before.begin() + static_cast<long>(data_start), before.end(),
                         after.begin() + static_cast<long>(data_start)))
      << "records or index changed";
  EXPECT_TRUE(OpenAndReadAll(path, rotated).ok());
  EXPECT_TRUE(OpenAndReadAll(path, ext_).IsPermission());
}

}  // namespace
}  // namespace lsifs
