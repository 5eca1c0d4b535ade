// Every lsifs reads the stores its predecessor wrote: a store made by the
// lsifs of the previous format (tests/data/store-format1.tar.gz, written by
// tests/data/make_store_format1.sh) opens, lists, restores and reads
// byte-identical data with this one.
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "core/access/access_db.h"
#include "core/catalog/catalog.h"
#include "core/image/image.h"
#include "core/origin/origin.h"
#include "core/origin/snapshot.h"
#include "core/store/store.h"
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
  ASSERT_TRUE(
      LsiImage::Open(*store_, pin->manifest(), info, key, origin, ImageOptions(), &image).ok());
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

}  // namespace
}  // namespace lsifs
