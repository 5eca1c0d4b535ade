// The corruption matrix: every file an image reads (layers, manifest,
// snapshot maps and data files) is damaged at every structural offset,
// truncated, extended, zeroed, swapped with another authentic file and rolled
// back, one case at a time on a fresh copy of the store. In each case:
//   - the image is refused whole, or every block reads either its exact
//     bytes or an error, and the blocks that fail are only those the damaged
//     file holds (never garbage, never a neighbour);
//   - lsictl verify's core names the damage.
// CI runs a sample of the offsets (every 7th, and all of the small files);
// LSIFS_MATRIX=full runs all of them (tests/bench, scripts/bench.sh).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/assembler/assemble.h"
#include "core/image/image.h"
#include "core/lsi/layer.h"
#include "core/verify/verify.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

constexpr uint64_t kBlocks = 32;

bool FullMatrix() {
  const char* m = std::getenv("LSIFS_MATRIX");
  return m != nullptr && std::string(m) == "full";
}

class CorruptionMatrix : public testing::StoreTest {
 protected:
  void SetUp() override {
    one_image_ = testing::PseudoRandom(kBlocks * kBlock, 11);
    for (uint64_t b : {5u, 17u}) {
      std::fill(one_image_.begin() + static_cast<long>(b * kBlock),
                one_image_.begin() + static_cast<long>((b + 1) * kBlock), 0);
    }
    one_ = ImportBytes("vol", one_image_);
    image_ = one_image_;
    for (uint64_t b : {2u, 3u, 20u, 21u}) image_[b * kBlock + 7] ^= 0x5a;
    two_ = ImportBytes("vol", image_);  // stores 4 blocks, points into one's file
    KeyInfo b_info;
    SecretKey b_key;
    ASSERT_TRUE(store_->keyring().Create("site-b", &b_info).ok());
    ASSERT_TRUE(store_->keyring().Load("site-b", &b_info, &b_key).ok());
    lsi_ = Assemble(two_, info_, key_, {{1, 2, 3, 4}, {10, 11}});
    older_ = Assemble(one_, info_, key_, {{1, 2}});
    other_ext_ = Assemble(two_, b_info, b_key, {{1, 2, 3, 4}});
    base_in_[one_] = BaseBlocksIn(one_);
    base_in_[two_] = BaseBlocksIn(two_);
    ASSERT_FALSE(base_in_[one_].empty());
    ASSERT_FALSE(base_in_[two_].empty());
    ASSERT_EQ(testing::RunShell("cp -a " + store_->root() + " " + dir_ / "pristine"), 0);
  }

  Manifest Assemble(uint64_t snapshot, const KeyInfo& info, const SecretKey& key,
                    const std::vector<std::vector<uint64_t>>& layers) {
    std::unique_ptr<OriginSnapshot> base;
    EXPECT_TRUE(local_->OpenSnapshot("vol", snapshot, &base).ok());
    Manifest m;
    EXPECT_TRUE(AssembleLsi(*catalog_, *base, info, key, layers, AssembleOptions(), &m).ok());
    return m;
  }

  void Restore() {
    ASSERT_EQ(testing::RunShell("rm -rf " + store_->root() + " && cp -a " + dir_ / "pristine" +
                                " " + store_->root()),
              0);
  }

  // One case: `damage` changes the store; `affected` are the blocks that
  // may fail (the image may also be refused whole when `may_refuse`).
  void Case(const std::string& name, const std::function<void()>& damage,
            const std::set<uint64_t>& affected, bool may_refuse) {
    Restore();
    damage();
    ++cases_;
    SCOPED_TRACE(name);
    // lsictl verify names it.
    std::vector<VerifyResult> results;
    ASSERT_TRUE(Verify(*store_, *keys_, "", nullptr, &results).ok());
    bool named = false;
    for (const auto& r : results) named |= !r.ok();
    EXPECT_TRUE(named) << name << ": verify found nothing";

    std::unique_ptr<LsiPin> pin;
    Status s = catalog_->Pin(lsi_.lsi_id, info_, key_, &pin);
    std::unique_ptr<LsiImage> image;
    if (s.ok())
      s = LsiImage::Open(*store_, pin->manifest(), testing::KeysOf(info_, key_), *local_, Options(),
                         &image);
    if (!s.ok()) {
      ++refused_;
      EXPECT_TRUE(may_refuse) << name << ": refused whole: " << s.ToString();
      if (pin) catalog_->Unpin(std::move(pin));
      return;
    }
    Bytes got(kBlock);
    for (uint64_t b = 0; b < kBlocks; ++b) {
      size_t done = 0;
      Status r = image->Read(b * kBlock, got, &done);
      if (!r.ok()) {
        ++failed_blocks_;
        EXPECT_TRUE(affected.count(b)) << name << ": block " << b << " failed: " << r.ToString();
        continue;
      }
      ASSERT_EQ(done, kBlock);
      ASSERT_TRUE(
          std::equal(got.begin(), got.end(), image_.begin() + static_cast<long>(b * kBlock)))
          << name << ": block " << b << " read WRONG BYTES";
    }
    image.reset();
    catalog_->Unpin(std::move(pin));
  }

  static ImageOptions Options() {
    ImageOptions o;
    o.persist_spill = false;  // every case starts cold
    return o;
  }

  // Offsets to damage in a file of `size` bytes whose structure starts at
  // `fixed` (every byte of the header), then `record`-sized records from
  // `records_at` (first, middle and last byte of each), then the rest (every
  // `tail_step`th byte). Sampled unless the full matrix is asked for.
  std::vector<uint64_t> Offsets(uint64_t size, uint64_t fixed, uint64_t records_at, uint64_t record,
                                uint64_t records, uint64_t tail_step) {
    std::vector<uint64_t> out;
    for (uint64_t i = 0; i < std::min(fixed, size); ++i) out.push_back(i);
    for (uint64_t r = 0; r < records; ++r) {
      uint64_t at = records_at + r * record;
      for (uint64_t o : {at, at + record / 2, at + record - 1}) out.push_back(o);
    }
    for (uint64_t o = records_at + records * record; o < size; o += tail_step) out.push_back(o);
    if (FullMatrix()) return out;
    std::vector<uint64_t> sample;
    for (size_t i = 0; i < out.size(); i += 7) sample.push_back(out[i]);
    return sample;
  }

  static void Flip(const std::string& path, uint64_t offset) {
    Bytes data = testing::ReadFileBytes(path);
    if (offset < data.size()) data[offset] ^= 0x01;
    testing::WriteFileBytes(path, data);
  }
  static void Resize(const std::string& path, int64_t delta) {
    Bytes data = testing::ReadFileBytes(path);
    data.resize(static_cast<size_t>(static_cast<int64_t>(data.size()) + delta), 0);
    testing::WriteFileBytes(path, data);
  }
  static void Zero(const std::string& path, uint64_t at, uint64_t len) {
    Bytes data = testing::ReadFileBytes(path);
    for (uint64_t i = at; i < std::min<uint64_t>(at + len, data.size()); ++i) data[i] = 0;
    testing::WriteFileBytes(path, data);
  }
  void Copy(const std::string& from, const std::string& to) {
    ASSERT_EQ(testing::RunShell("cp " + from + " " + to), 0);
  }

  std::set<uint64_t> LayerBlocks(size_t layer) const {
    return {lsi_.layers[layer].blocks.begin(), lsi_.layers[layer].blocks.end()};
  }
  // Base blocks (not in the LSI's layers) stored in snapshot `source`'s file.
  std::set<uint64_t> BaseBlocksIn(uint64_t source) const {
    std::unique_ptr<SnapshotBlocks> sb;
    EXPECT_TRUE(SnapshotBlocks::Open(*store_, *keys_, "vol", two_, &sb).ok());
    std::set<uint64_t> out;
    for (const auto& loc : sb->map()) {
      if (loc.source == source && !LayerBlocks(0).count(loc.block) &&
          !LayerBlocks(1).count(loc.block)) {
        out.insert(loc.block);
      }
    }
    return out;
  }

  Bytes one_image_, image_;
  uint64_t one_ = 0, two_ = 0;
  Manifest lsi_, older_, other_ext_;
  std::map<uint64_t, std::set<uint64_t>> base_in_;  // by source snapshot, of the pristine store
  int cases_ = 0, refused_ = 0, failed_blocks_ = 0;
};

TEST_F(CorruptionMatrix, LayersNeverServeGarbageAndFailOnlyTheirOwnBlocks) {
  for (size_t l = 0; l < lsi_.layers.size(); ++l) {
    const std::string path = store_->layer_path(lsi_.layers[l].layer_id);
    std::unique_ptr<LayerReader> reader;
    ASSERT_TRUE(LayerReader::Open(path, info_, key_, &reader).ok());
    const uint64_t size = testing::ReadFileBytes(path).size();
    const uint64_t records = reader->blocks().size();
    const uint64_t header = reader->RecordOffset(0);
    const std::set<uint64_t> own = LayerBlocks(l);
    const std::string what = "layer " + std::to_string(l);
    for (uint64_t o : Offsets(size, header, header, reader->record_size(), records, 3)) {
      Case(
          what + " byte " + std::to_string(o), [&] { Flip(path, o); }, own, false);
    }
    for (int64_t d : {int64_t{-1}, int64_t{1}, int64_t{-static_cast<int64_t>(size) / 2},
                      static_cast<int64_t>(reader->record_size())}) {
      Case(
          what + " resized by " + std::to_string(d), [&] { Resize(path, d); }, own, false);
    }
    Case(
        what + " header zeroed", [&] { Zero(path, 0, header); }, own, false);
    Case(
        what + " a record zeroed", [&] { Zero(path, header, reader->record_size()); }, own, false);
    Case(
        what + " emptied", [&] { Resize(path, -static_cast<int64_t>(size)); }, own, false);
    Case(
        what + " missing", [&] { ::unlink(path.c_str()); }, own, false);
    // Records moved: two of this layer's records swapped, and a record of
    // another extension's layer holding the same block put in its place
    // (each record is bound to its layer and block: both fail).
    const uint64_t rs = reader->record_size();
    // Puts the record at `from_offset` of file `from` into slot `to_slot`
    // (and, within one file, the other way round too).
    auto swap_records = [&, path](const std::string& from, uint64_t from_offset, uint64_t to_slot) {
      Bytes src = testing::ReadFileBytes(from);
      Bytes dst = testing::ReadFileBytes(path);
      const Bytes moved(src.begin() + static_cast<long>(from_offset),
                        src.begin() + static_cast<long>(from_offset + rs));
      const uint64_t to_offset = reader->RecordOffset(to_slot);
      if (from == path) {
        std::copy(dst.begin() + static_cast<long>(to_offset),
                  dst.begin() + static_cast<long>(to_offset + rs),
                  dst.begin() + static_cast<long>(from_offset));
      }
      std::copy(moved.begin(), moved.end(), dst.begin() + static_cast<long>(to_offset));
      testing::WriteFileBytes(path, dst);
    };
    Case(
        what + " two records swapped", [&] { swap_records(path, reader->RecordOffset(0), 1); },
        {reader->blocks()[0], reader->blocks()[1]}, false);
    if (l == 0) {
      const std::string foreign_layer = store_->layer_path(other_ext_.layers[0].layer_id);
      std::unique_ptr<LayerReader> foreign_reader;
      KeyInfo b_info;
      SecretKey b_key;
      ASSERT_TRUE(store_->keyring().Load("site-b", &b_info, &b_key).ok());
      ASSERT_TRUE(LayerReader::Open(foreign_layer, b_info, b_key, &foreign_reader).ok());
      // The same block, from its slot in the other extension's layer.
      const uint64_t block = reader->blocks()[0];
      const auto& fb = foreign_reader->blocks();
      const uint64_t from_slot =
          static_cast<uint64_t>(std::find(fb.begin(), fb.end(), block) - fb.begin());
      ASSERT_LT(from_slot, fb.size());
      Case(
          what + " a record from another extension's layer",
          [&] { swap_records(foreign_layer, foreign_reader->RecordOffset(from_slot), 0); }, {block},
          false);
    }
    // Swapped for another authentic layer: the other layer of this LSI,
    // and a layer of another extension with the same blocks.
    const std::string sibling = store_->layer_path(lsi_.layers[1 - l].layer_id);
    Case(
        what + " swapped with its sibling", [&] { Copy(sibling, path); }, own, false);
    const std::string foreign = store_->layer_path(other_ext_.layers[0].layer_id);
    Case(
        what + " swapped with another extension's", [&] { Copy(foreign, path); }, own, false);
  }
  std::printf("[ matrix   ] layers: %d cases, %d refused whole, %d block reads failed\n", cases_,
              refused_, failed_blocks_);
}

TEST_F(CorruptionMatrix, ManifestsAreRefusedWholeWhenDamagedSwappedOrRolledBack) {
  const std::string path = store_->manifest_path(lsi_.lsi_id);
  const uint64_t size = testing::ReadFileBytes(path).size();
  const std::set<uint64_t> none;
  for (uint64_t o : Offsets(size, size, size, 1, 0, 1)) {
    Case(
        "manifest byte " + std::to_string(o), [&] { Flip(path, o); }, none, true);
  }
  for (int64_t d : {int64_t{-1}, int64_t{1}, int64_t{-8}, int64_t{8}}) {
    Case(
        "manifest resized by " + std::to_string(d), [&] { Resize(path, d); }, none, true);
  }
  // Another authentic manifest under this LSI's name: an older LSI of the
  // same extension (a rollback), and another extension's.
  Case(
      "manifest rolled back to an older LSI's",
      [&] { Copy(store_->manifest_path(older_.lsi_id), path); }, none, true);
  Case(
      "manifest swapped with another extension's",
      [&] { Copy(store_->manifest_path(other_ext_.lsi_id), path); }, none, true);
  EXPECT_EQ(refused_, cases_) << "a damaged manifest was used";
  std::printf("[ matrix   ] manifests: %d cases, all refused whole\n", cases_);
}

TEST_F(CorruptionMatrix, SnapshotFilesNeverServeGarbage) {
  // The LSI stands on snapshot two, which stores 4 blocks and points into
  // snapshot one's data file for the rest.
  for (uint64_t snapshot : {one_, two_}) {
    const std::string name = snapshot == one_ ? "snapshot one" : "snapshot two";
    const std::string data = store_->snapshot_data_path("vol", snapshot);
    const uint64_t data_size = testing::ReadFileBytes(data).size();
    const uint64_t record = kBlock + kSealOverhead;
    const uint64_t records = (data_size - DataRecordOffset(kBlock, 0)) / record;
    const std::set<uint64_t> held = base_in_[snapshot];
    for (uint64_t o : Offsets(data_size, DataRecordOffset(kBlock, 0), DataRecordOffset(kBlock, 0),
                              record, records, 1)) {
      Case(
          name + " data byte " + std::to_string(o), [&] { Flip(data, o); }, held, true);
    }
    for (int64_t d : {int64_t{-1}, int64_t{1}, static_cast<int64_t>(record)}) {
      Case(
          name + " data resized by " + std::to_string(d), [&] { Resize(data, d); }, held, true);
    }
    const std::string map = store_->snapshot_map_path("vol", snapshot);
    const uint64_t map_size = testing::ReadFileBytes(map).size();
    std::set<uint64_t> all_base = base_in_[one_];
    all_base.insert(base_in_[two_].begin(), base_in_[two_].end());
    for (uint64_t o : Offsets(map_size, map_size, map_size, 1, 0, 1)) {
      Case(
          name + " map byte " + std::to_string(o), [&] { Flip(map, o); }, all_base, true);
    }
  }
  // Swapped for each other, whole files.
  Case(
      "map two := map one",
      [&] { Copy(store_->snapshot_map_path("vol", one_), store_->snapshot_map_path("vol", two_)); },
      {}, true);
  Case(
      "data two := data one",
      [&] {
        Copy(store_->snapshot_data_path("vol", one_), store_->snapshot_data_path("vol", two_));
      },
      base_in_[two_], true);
  std::printf("[ matrix   ] snapshots: %d cases, %d refused whole, %d block reads failed\n", cases_,
              refused_, failed_blocks_);
}

}  // namespace
}  // namespace lsifs
