#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>

#include "core/origin/import.h"
#include "core/origin/snapshot.h"
#include "core/util/file.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

using testing::TempDir;

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = testing::MakeStore(dir_, 4096);
    keys_ = testing::OriginKeysOf(*store_);
  }

  Status Import(const std::string& volume, const std::string& image, ImportResult* r) {
    ImportOptions options;
    return ImportImage(*store_, *keys_, volume, image, options, r);
  }

  // Reads the whole volume back through the origin, zeros where absent.
  Bytes ReadBack(const std::string& volume, uint64_t id) {
    std::unique_ptr<SnapshotBlocks> snap;
    Status s = SnapshotBlocks::Open(*store_, *keys_, volume, id, &snap);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return {};
    const SnapshotInfo& info = snap->info();
    Bytes out(info.block_count() * info.block_size, 0);
    Bytes record(info.block_size + kSealOverhead);
    Aead aead;
    for (const BlockLocation& loc : snap->map()) {
      MutableByteSpan dst(out.data() + loc.block * info.block_size, info.block_size);
      s = snap->ReadBlock(loc, aead, record, dst);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    out.resize(info.size);
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<OriginKeys> keys_;
};

// An image with data, zero blocks and a partial last block.
Bytes MixedImage(size_t size, uint64_t seed) {
  Bytes img = testing::PseudoRandom(size, seed);
  for (size_t b = 0; b * 4096 < size; ++b) {
    if (b % 3 == 1)
      std::fill(img.begin() + static_cast<long>(b * 4096),
                img.begin() + static_cast<long>(std::min(size, (b + 1) * 4096)), 0);
  }
  return img;
}

TEST_F(ImportTest, RoundTripIsByteIdenticalAndSkipsZeroBlocks) {
  Bytes img = MixedImage(30 * 4096 + 123, 7);
  testing::WriteFileBytes(dir_ / "img", img);
  ImportResult r;
  ASSERT_TRUE(Import("vol-a", dir_ / "img", &r).ok());
  EXPECT_EQ(r.snapshot.size, img.size());
  EXPECT_EQ(r.zero_blocks, 10u);
  EXPECT_EQ(r.new_blocks, 21u);
  EXPECT_EQ(r.snapshot.present_blocks, 21u);
  EXPECT_EQ(ReadBack("vol-a", r.snapshot.id), img);

  std::vector<SnapshotInfo> list;
  ASSERT_TRUE(ListSnapshots(*store_, *keys_, "vol-a", &list).ok());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].id, r.snapshot.id);
  EXPECT_EQ(list[0].present_blocks, 21u);
  EXPECT_EQ(list[0].stored_blocks, 21u);
}

TEST_F(ImportTest, SecondImportStoresOnlyChangedBlocks) {
  Bytes img = MixedImage(64 * 4096, 1);
  testing::WriteFileBytes(dir_ / "img", img);
  ImportResult first, second, third;
  ASSERT_TRUE(Import("vol", dir_ / "img", &first).ok());
  ASSERT_TRUE(Import("vol", dir_ / "img", &second).ok());
  EXPECT_NE(first.snapshot.id, second.snapshot.id);
  EXPECT_EQ(second.snapshot.parent, first.snapshot.id);
  EXPECT_EQ(second.new_blocks, 0u);
  EXPECT_EQ(second.reused_blocks, first.new_blocks);

  // Change three blocks, zero one, fill one zero block.
  for (size_t b : {0u, 10u, 63u}) img[b * 4096 + 5] ^= 0xff;
  std::fill(img.begin() + 2 * 4096, img.begin() + 3 * 4096, 0);
  std::fill(img.begin() + 4 * 4096, img.begin() + 5 * 4096, 9);
  testing::WriteFileBytes(dir_ / "img", img);
  ASSERT_TRUE(Import("vol", dir_ / "img", &third).ok());
  EXPECT_EQ(third.snapshot.parent, second.snapshot.id);
  EXPECT_EQ(third.new_blocks, 4u);
  // Blocks 0 and 63 changed and block 2 became zero: the other present blocks are reused.
  EXPECT_EQ(third.reused_blocks, first.new_blocks - 3);
  EXPECT_EQ(ReadBack("vol", third.snapshot.id), img);
  // Earlier snapshots are untouched.
  EXPECT_EQ(ReadBack("vol", first.snapshot.id).size(), img.size());
}

TEST_F(ImportTest, SparseGigabyteImportsFastAndStoresOnlyItsData) {
  std::string path = dir_ / "sparse.img";
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 1ll << 30), 0);
  Bytes chunk = testing::PseudoRandom(1 << 20, 5);
  for (int i = 0; i < 10; ++i) {
    off_t at = static_cast<off_t>(i) * (100ll << 20) + 12345 * 4096;
    ASSERT_EQ(::pwrite(fd, chunk.data(), chunk.size(), at), static_cast<ssize_t>(chunk.size()));
  }
  ::close(fd);
  ImportResult r;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(Import("sparse", path, &r).ok());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.new_blocks, 10u * 256);
  EXPECT_NEAR(static_cast<double>(r.bytes_stored), 10.0 * (1 << 20), 0.01 * 10 * (1 << 20));
  uint64_t stored = 0;
  for (const auto& f : testing::TreeListing(store_->volume_dir("sparse"))) {
    stored += std::stoull(f.substr(f.find(' ') + 1));
  }
  EXPECT_LT(stored, 11ull << 20);
  // "In seconds": generous, so that a loaded machine does not fail it.
  EXPECT_LT(secs, 30.0);
}

TEST_F(ImportTest, MissingOrUnreadableImageFailsAndLeavesStoreUnchanged) {
  auto before = testing::TreeListing(store_->root());
  ImportResult r;
  Status s = Import("vol", dir_ / "missing.img", &r);
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_NE(s.message().find("missing.img"), std::string::npos);
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
  ::mkdir((dir_ / "adir").c_str(), 0755);
  s = Import("vol", dir_ / "adir", &r);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not a regular file"), std::string::npos) << s.message();
  testing::WriteFileBytes(dir_ / "empty.img", {});
  EXPECT_FALSE(Import("vol", dir_ / "empty.img", &r).ok());
  EXPECT_FALSE(Import("../x", dir_ / "empty.img", &r).ok());
  EXPECT_EQ(testing::TreeListing(store_->root()), before);
}

TEST_F(ImportTest, CorruptOrTruncatedSnapshotFilesAreDetected) {
  Bytes img = MixedImage(16 * 4096, 3);
  testing::WriteFileBytes(dir_ / "img", img);
  ImportResult r;
  ASSERT_TRUE(Import("vol", dir_ / "img", &r).ok());
  std::string map_path = store_->snapshot_map_path("vol", r.snapshot.id);
  Bytes map = testing::ReadFileBytes(map_path);
  // Every byte of the map file is covered by a check.
  for (size_t i = 0; i < map.size(); ++i) {
    Bytes bad = map;
    bad[i] ^= 0x20;
    testing::WriteFileBytes(map_path, bad);
    std::unique_ptr<SnapshotBlocks> snap;
    EXPECT_FALSE(SnapshotBlocks::Open(*store_, *keys_, "vol", r.snapshot.id, &snap).ok())
        << "byte " << i;
  }
  for (size_t len : {size_t{0}, size_t{10}, map.size() - 1, map.size() - 88}) {
    testing::WriteFileBytes(map_path, ByteSpan(map).first(len));
    std::unique_ptr<SnapshotBlocks> snap;
    EXPECT_FALSE(SnapshotBlocks::Open(*store_, *keys_, "vol", r.snapshot.id, &snap).ok()) << len;
  }
  testing::WriteFileBytes(map_path, map);
  // A flipped data byte fails that block only.
  std::string data_path = store_->snapshot_data_path("vol", r.snapshot.id);
  Bytes data = testing::ReadFileBytes(data_path);
  data[DataRecordOffset(4096, 1) + 100] ^= 1;
  testing::WriteFileBytes(data_path, data);
  std::unique_ptr<SnapshotBlocks> snap;
  ASSERT_TRUE(SnapshotBlocks::Open(*store_, *keys_, "vol", r.snapshot.id, &snap).ok());
  Aead aead;
  Bytes record(4096 + kSealOverhead), out(4096);
  int failed = 0;
  for (const auto& loc : snap->map()) failed += !snap->ReadBlock(loc, aead, record, out).ok();
  EXPECT_EQ(failed, 1);
}

TEST_F(ImportTest, ARecordAppendedToADataFileOrCutOffIsCaught) {
  Bytes img = MixedImage(16 * 4096, 3);
  testing::WriteFileBytes(dir_ / "img", img);
  ImportResult first, second;
  ASSERT_TRUE(Import("vol", dir_ / "img", &first).ok());
  img[5 * 4096] ^= 1;
  testing::WriteFileBytes(dir_ / "img", img);
  ASSERT_TRUE(Import("vol", dir_ / "img", &second).ok());
  // The first snapshot's data file serves both snapshots: a change to it is
  // caught when either is opened.
  std::string data_path = store_->snapshot_data_path("vol", first.snapshot.id);
  Bytes data = testing::ReadFileBytes(data_path);
  const size_t record = 4096 + kSealOverhead;
  Bytes appended = data;
  appended.insert(appended.end(), data.end() - static_cast<long>(record), data.end());
  Bytes cut(data.begin(), data.end() - static_cast<long>(record));
  for (const Bytes* bad : {&appended, &cut}) {
    testing::WriteFileBytes(data_path, *bad);
    for (uint64_t id : {first.snapshot.id, second.snapshot.id}) {
      std::unique_ptr<SnapshotBlocks> snap;
      Status s = SnapshotBlocks::Open(*store_, *keys_, "vol", id, &snap);
      EXPECT_TRUE(s.IsCorruption()) << s.ToString();
      EXPECT_NE(s.message().find("appended or cut off"), std::string::npos) << s.message();
    }
  }
  testing::WriteFileBytes(data_path, data);
  std::unique_ptr<SnapshotBlocks> snap;
  EXPECT_TRUE(SnapshotBlocks::Open(*store_, *keys_, "vol", second.snapshot.id, &snap).ok());
}

}  // namespace
}  // namespace lsifs
