// Every lsifs reads the stores its predecessor wrote: a store made by the
// lsifs of the previous format (tests/data/store-format1.tar.gz, written by
// tests/data/make_store_format1.sh) opens, lists, restores and reads
// byte-identical data with this one.
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <leveldb/db.h>

#include "core/access/access_db.h"
#include "core/catalog/catalog.h"
#include "core/image/image.h"
#include "core/lsi/layer.h"
#include "core/lsi/manifest.h"
#include "core/origin/origin.h"
#include "core/origin/snapshot.h"
#include "core/store/store.h"
#include "core/util/encoding.h"
#include "core/util/hex.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

using testing::TempDir;

class PreviousFormatStore : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(testing::RunShell("tar -C " + dir_.path() +
                                " -xzf " LSIFS_SOURCE_DIR "/tests/data/store-format1.tar.gz"),
              0);
    std::ifstream in(dir_ / "ids");
    std::string name, id;
    while (in >> name >> id) ids_[name] = *ParseId(id);
    ASSERT_EQ(ids_.size(), 4u);
    ASSERT_TRUE(Store::Open(dir_ / "store", &store_).ok());
  }

  TempDir dir_;
  std::map<std::string, uint64_t> ids_;
  std::unique_ptr<Store> store_;
};

TEST_F(PreviousFormatStore, SnapshotsReadByteIdentical) {
  auto keys = testing::OriginKeysOf(*store_);
  std::vector<SnapshotInfo> snaps;
  ASSERT_TRUE(ListSnapshots(*store_, *keys, "disk", &snaps).ok());
  ASSERT_EQ(snaps.size(), 2u);
  EXPECT_EQ(snaps[0].id, ids_["snapshot_one"]);
  EXPECT_EQ(snaps[1].parent, ids_["snapshot_one"]);
  for (const auto& [name, file] :
       {std::pair{"snapshot_one", "one.img"}, {"snapshot_two", "two.img"}}) {
    Bytes want = testing::ReadFileBytes(dir_ / file);
    LocalOrigin origin(*store_, *keys);
    std::unique_ptr<OriginSnapshot> snap;
    ASSERT_TRUE(origin.OpenSnapshot("disk", ids_[name], &snap).ok()) << name;
    const uint32_t bs = snap->info().block_size;
    Bytes got(want.size(), 0);
    std::vector<uint8_t*> outs;
    for (uint64_t b : snap->present()) outs.push_back(got.data() + b * bs);
    ASSERT_TRUE(snap->Fetch(snap->present(), outs).ok()) << name;
    EXPECT_TRUE(got == want) << name;
  }
}

TEST_F(PreviousFormatStore, DeliveredLsiReadsTheLatestSnapshot) {
  std::unique_ptr<Catalog> catalog;
  ASSERT_TRUE(Catalog::Open(*store_, &catalog).ok());
  KeyInfo info;
  SecretKey key;
  ASSERT_TRUE(store_->keyring().Load("site", &info, &key).ok());
  DeliveryView view;
  ASSERT_TRUE(catalog->ReadDeliveries(info, key, &view).ok());
  ASSERT_EQ(view.deliveries.size(), 2u);
  std::unique_ptr<LsiPin> pin;
  ASSERT_TRUE(catalog->Pin(ids_["lsi_latest"], info, key, &pin).ok());
  EXPECT_EQ(pin->manifest().snapshot, ids_["snapshot_two"]);
  EXPECT_GT(pin->manifest().delta_blocks(), 0u) << "the learned session should have planned blocks";

  auto keys = testing::OriginKeysOf(*store_);
  LocalOrigin origin(*store_, *keys);
  std::unique_ptr<LsiImage> image;
  ASSERT_TRUE(LsiImage::Open(*store_, pin->manifest(), testing::KeysOf(info, key), origin,
                             ImageOptions(), &image)
                  .ok());
  Bytes want = testing::ReadFileBytes(dir_ / "two.img");
  Bytes got(want.size());
  size_t done = 0;
  ASSERT_TRUE(image->Read(0, MutableByteSpan(got.data(), got.size()), &done).ok());
  EXPECT_EQ(done, want.size());
  EXPECT_TRUE(got == want);
  EXPECT_GT(image->lsi_counters().Values().from_delta, 0u);
  image.reset();
  catalog->Unpin(std::move(pin));
}

TEST_F(PreviousFormatStore, AccessDatabaseKeepsItsSession) {
  std::unique_ptr<AccessDb> db;
  ASSERT_TRUE(AccessDb::Open(store_->db_dir(), CoAccessSettings(), &db).ok());
  std::vector<SessionRecord> sessions;
  ASSERT_TRUE(db->ListSessions("site", "disk", &sessions).ok());
  ASSERT_EQ(sessions.size(), 1u);
  std::vector<AccessEvent> events;
  ASSERT_TRUE(db->SessionLog("site", "disk", sessions[0].number, &events).ok());
  // make_store_format1.sh read blocks 8..15 and 20..23 (the kernel's
  // readahead may have read more).
  std::set<uint64_t> read;
  for (const AccessEvent& e : events) read.insert(e.block);
  for (uint64_t b : {8u, 15u, 20u, 23u}) EXPECT_TRUE(read.count(b)) << b;
}

// Every on-disk format refuses a version newer than it reads by saying so,
// and what to do: each file of the previous store, its version bumped.
TEST_F(PreviousFormatStore, ANewerFormatVersionIsRefusedWithWhatToDo) {
  auto bump_u32 = [](const std::string& path, size_t offset, uint32_t version) {
    Bytes data = testing::ReadFileBytes(path);
    EncodeFixed32(data.data() + offset, version);
    testing::WriteFileBytes(path, data);
  };
  auto expect_newer = [](const Status& s, const std::string& what) {
    EXPECT_FALSE(s.ok()) << what;
    EXPECT_NE(s.message().find("format version 9 is newer than this lsifs reads"),
              std::string::npos)
        << what << ": " << s.ToString();
    EXPECT_NE(s.message().find("upgrade lsifs"), std::string::npos) << what;
  };
  const std::string store = dir_ / "store";
  auto keys = testing::OriginKeysOf(*store_);
  KeyInfo info;
  SecretKey key;
  ASSERT_TRUE(store_->keyring().Load("site", &info, &key).ok());

  // Snapshot map and data file.
  std::string map = store_->snapshot_map_path("disk", ids_["snapshot_one"]);
  Bytes saved = testing::ReadFileBytes(map);
  bump_u32(map, 8, 9);
  SnapshotInfo si;
  expect_newer(ReadSnapshotInfo(map, *keys, &si), "snapshot map");
  testing::WriteFileBytes(map, saved);
  std::string data = store_->snapshot_data_path("disk", ids_["snapshot_one"]);
  bump_u32(data, 8, 9);
  std::unique_ptr<SnapshotBlocks> blocks;
  expect_newer(SnapshotBlocks::Open(*store_, *keys, "disk", ids_["snapshot_one"], &blocks),
               "snapshot data");

  // A layer and a manifest.
  std::unique_ptr<Catalog> catalog;
  ASSERT_TRUE(Catalog::Open(*store_, &catalog).ok());
  Manifest m;
  ASSERT_TRUE(catalog->ReadManifest(ids_["lsi_latest"], info, key, &m).ok());
  ASSERT_FALSE(m.layers.empty());
  std::string layer = store_->layer_path(m.layers[0].layer_id);
  bump_u32(layer, 8, 9);
  std::unique_ptr<LayerReader> reader;
  expect_newer(LayerReader::Open(layer, info, key, &reader), "layer");
  std::string manifest = store_->manifest_path(ids_["lsi_latest"]);
  bump_u32(manifest, 8, 9);
  expect_newer(ReadManifest(manifest, info, key, &m), "manifest");

  // Key file and store configuration (text).
  ASSERT_EQ(testing::RunShell("sed -i 's/lsifs-key-1/lsifs-key-9/' " + store + "/keys/site.key"),
            0);
  expect_newer(store_->keyring().Load("site", &info, &key), "key file");
  ASSERT_EQ(testing::RunShell("sed -i 's/lsifs-store-1/lsifs-store-9/' " + store + "/config"), 0);
  std::unique_ptr<Store> reopened;
  expect_newer(Store::Open(store, &reopened), "store configuration");
  ASSERT_EQ(testing::RunShell("sed -i 's/lsifs-store-9/lsifs-store-1/' " + store + "/config"), 0);

  // The access database's schema.
  {
    leveldb::DB* db = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(leveldb::Options(), store_->db_dir(), &db).ok());
    ASSERT_TRUE(db->Put(leveldb::WriteOptions(), "meta/format", "9").ok());
    delete db;
  }
  std::unique_ptr<AccessDb> adb;
  expect_newer(AccessDb::Open(store_->db_dir(), CoAccessSettings(), &adb), "access database");

  // The delivery record.
  std::string deliveries = store_->deliveries_path("site");
  bump_u32(deliveries, 8, 9);
  DeliveryView view;
  ASSERT_EQ(testing::RunShell("sed -i 's/lsifs-key-9/lsifs-key-1/' " + store + "/keys/site.key"),
            0);
  ASSERT_TRUE(store_->keyring().Load("site", &info, &key).ok());
  expect_newer(catalog->ReadDeliveries(info, key, &view), "delivery record");
}

}  // namespace
}  // namespace lsifs
