// The catalog without a mount: states and their listing, delivery and the
// volume's image, freshness and TTL, drops, pins, eviction order, the sweep
// of crash leftovers and kill -9 at random points.
#include "core/catalog/catalog.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "core/assembler/assemble.h"
#include "core/catalog/delivery_record.h"
#include "core/image/image.h"
#include "core/lsi/layer.h"
#include "core/origin/import.h"
#include "core/origin/origin.h"
#include "core/util/hex.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

using testing::TempDir;

constexpr uint64_t kBlocks = 64;

class CatalogTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    KeyInfo other;
    ASSERT_TRUE(store_->keyring().Create("site-b", &other).ok());
    Import("vol", 1);
  }

  uint64_t Import(const std::string& volume, uint64_t seed) {
    return ImportBytes(volume, testing::PseudoRandom(kBlocks * kBlock, seed));
  }

  void Key(const std::string& ext, KeyInfo* info, SecretKey* key) {
    ASSERT_TRUE(store_->keyring().Load(ext, info, key).ok());
  }

  CatalogContext Context(int64_t now = 0) {
    CatalogContext c;
    c.now = now ? now : static_cast<int64_t>(std::time(nullptr));
    std::vector<SnapshotInfo> snaps;
    EXPECT_TRUE(ListSnapshots(*store_, *keys_, "", &snaps).ok());
    for (const auto& s : snaps) c.latest_snapshot[s.volume] = s.id;
    c.model_sessions = models_;
    c.relearned_at = relearned_;
    c.models_known = true;
    return c;
  }

  // An assembled LSI of the volume's latest snapshot with these blocks.
  uint64_t Assemble(const std::string& ext, std::vector<uint64_t> blocks = {1, 2, 3},
                    int64_t ttl = 3600, const std::string& volume = "vol") {
    KeyInfo info;
    SecretKey key;
    Key(ext, &info, &key);
    std::vector<SnapshotInfo> snaps;
    EXPECT_TRUE(ListSnapshots(*store_, *keys_, volume, &snaps).ok());
    std::unique_ptr<OriginSnapshot> base;
    EXPECT_TRUE(origin_->OpenSnapshot(volume, snaps.back().id, &base).ok());
    AssembleOptions options;
    options.ttl = ttl;
    options.strategy = kPredictedStrategy;
    auto it = models_.find({ext, volume});
    options.model_sessions = it == models_.end() ? 0 : it->second;
    std::vector<std::vector<uint64_t>> layers;
    if (!blocks.empty()) layers.push_back(blocks);
    Manifest m;
    Status s = AssembleLsi(*catalog_, *base, info, key, layers, options, &m);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return m.lsi_id;
  }

  void Deliver(const std::string& ext, uint64_t id, bool alias, int64_t now = 0) {
    KeyInfo info;
    SecretKey key;
    Key(ext, &info, &key);
    Status s = catalog_->Deliver(id, info, key, alias, now ? now : std::time(nullptr));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  uint64_t Restore(const std::string& ext, uint64_t snapshot, bool* reused) {
    KeyInfo info;
    SecretKey key;
    Key(ext, &info, &key);
    PreassembleResult r;
    CatalogContext context = Context();
    Status s = lsifs::Restore(
        *catalog_, info, key, "vol", snapshot,
        [&](const PreassembleRequest& request, PreassembleResult* out) {
          return PreAssembleSnapshot(*catalog_, *origin_, *keys_, info, key, LearnedModels(),
                                     context, request, nullptr, out);
        },
        &r);
    EXPECT_TRUE(s.ok()) << s.ToString();
    *reused = r.reused;
    return r.manifest.lsi_id;
  }

  CatalogEntry Entry(uint64_t id, int64_t now = 0) {
    CatalogEntry e;
    Status s = catalog_->Find(id, Context(now), &e);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return e;
  }

  DeliveryView Deliveries(const std::string& ext) {
    KeyInfo info;
    SecretKey key;
    Key(ext, &info, &key);
    DeliveryView v;
    Status s = catalog_->ReadDeliveries(info, key, &v);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return v;
  }

  // The LSI shown as <volume>.img, or 0.
  uint64_t Alias(const std::string& ext, const std::string& volume = "vol") {
    for (const auto& d : Deliveries(ext).deliveries) {
      if (d.volume == volume && d.alias) return d.lsi_id;
    }
    return 0;
  }

  bool Shown(const std::string& ext, uint64_t id) {
    for (const auto& d : Deliveries(ext).deliveries) {
      if (d.lsi_id == id) return true;
    }
    return false;
  }

  bool FilesExist(uint64_t id) {
    Manifest m;
    if (!PeekManifest(store_->manifest_path(id), &m).ok()) return false;
    for (const auto& l : m.layers) {
      if (!PathExists(store_->layer_path(l.layer_id))) return false;
    }
    return true;
  }

  std::map<std::pair<std::string, std::string>, uint32_t> models_;
  std::map<std::pair<std::string, std::string>, int64_t> relearned_;
};

TEST_F(CatalogTest, AnAssembledLsiIsListedButShownToNoMount) {
  uint64_t id = Assemble("site-a");
  CatalogEntry e = Entry(id);
  EXPECT_EQ(e.state, LsiState::kAssembled);
  EXPECT_FALSE(e.in_use);
  EXPECT_FALSE(e.alias);
  EXPECT_EQ(e.delivered, 0);
  EXPECT_GT(e.bytes, 3u * kBlock);
  EXPECT_EQ(e.manifest.strategy, kPredictedStrategy);
  EXPECT_TRUE(Deliveries("site-a").deliveries.empty());
}

TEST_F(CatalogTest, TheVolumeImageIsTheLatestRestoreWithoutSnapshot) {
  uint64_t a = Assemble("site-a");
  uint64_t b = Assemble("site-a");
  Deliver("site-a", a, /*alias=*/true);
  EXPECT_EQ(Alias("site-a"), a);
  Deliver("site-a", b, /*alias=*/true);
  EXPECT_EQ(Alias("site-a"), b);
  // Delivered with --snapshot: shown by id only; the image stays.
  Deliver("site-a", a, /*alias=*/false);
  EXPECT_EQ(Alias("site-a"), b);
  EXPECT_TRUE(Shown("site-a", a));
  EXPECT_EQ(Entry(a).state, LsiState::kDelivered);
  EXPECT_FALSE(Entry(a).alias);
  EXPECT_TRUE(Entry(b).alias);
  // Another extension sees none of it.
  EXPECT_TRUE(Deliveries("site-b").deliveries.empty());
}

TEST_F(CatalogTest, RestoreReusesAFreshLsiAndFollowsNewSnapshotsOnlyWhenAsked) {
  bool reused = true;
  uint64_t first = Restore("site-a", 0, &reused);
  EXPECT_FALSE(reused);
  EXPECT_EQ(Alias("site-a"), first);
  uint64_t again = Restore("site-a", 0, &reused);
  EXPECT_TRUE(reused);
  EXPECT_EQ(again, first);

  uint64_t old_snapshot = Entry(first).manifest.snapshot;
  uint64_t new_snapshot = Import("vol", 2);
  // Imported, not restored: the image still serves what was delivered.
  EXPECT_EQ(Alias("site-a"), first);
  EXPECT_EQ(Entry(first).state, LsiState::kDelivered);
  EXPECT_NE(Entry(first).reason.find("newer"), std::string::npos) << Entry(first).reason;

  // Deliveries are timed in seconds: the next one must be strictly later.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  uint64_t second = Restore("site-a", 0, &reused);
  EXPECT_FALSE(reused);
  EXPECT_EQ(Entry(second).manifest.snapshot, new_snapshot);
  EXPECT_EQ(Alias("site-a"), second);
  EXPECT_TRUE(Entry(first).superseded);
  // An explicit older snapshot: its fresh LSI, by id only.
  uint64_t pinned = Restore("site-a", old_snapshot, &reused);
  EXPECT_TRUE(reused);
  EXPECT_EQ(pinned, first);
  EXPECT_EQ(Alias("site-a"), second);
  EXPECT_TRUE(Shown("site-a", first));
  EXPECT_FALSE(Entry(first).superseded);  // asked for again: current by id
}

TEST_F(CatalogTest, ALearnedSessionMakesAssembledLsisStale) {
  uint64_t id = Assemble("site-a");
  EXPECT_EQ(Entry(id).state, LsiState::kAssembled);
  models_[{"site-a", "vol"}] = 1;
  CatalogEntry e = Entry(id);
  EXPECT_EQ(e.state, LsiState::kStale);
  EXPECT_NE(e.reason.find("1 session(s) learned"), std::string::npos) << e.reason;
  // Another extension's sessions do not.
  uint64_t theirs = Assemble("site-b");
  EXPECT_EQ(Entry(theirs).state, LsiState::kAssembled);
  bool reused = true;
  uint64_t restored = Restore("site-a", 0, &reused);
  EXPECT_FALSE(reused);
  EXPECT_NE(restored, id);
  EXPECT_EQ(Entry(restored).manifest.model_sessions, 1u);
}

TEST_F(CatalogTest, AnLsiPlannedFromWhatWasSinceForgottenIsStale) {
  models_[{"site-a", "vol"}] = 3;
  uint64_t id = Assemble("site-a");
  EXPECT_EQ(Entry(id).state, LsiState::kAssembled);
  // Forgotten: the model is back at 3 sessions later, but learned again
  // after this LSI was planned, so that its 3 are not these 3.
  relearned_[{"site-a", "vol"}] = Entry(id).manifest.created;
  CatalogEntry e = Entry(id);
  EXPECT_EQ(e.state, LsiState::kStale);
  EXPECT_NE(e.reason.find("forgotten since"), std::string::npos) << e.reason;
  // Fewer sessions than it was planned from: the same.
  relearned_.clear();
  models_[{"site-a", "vol"}] = 2;
  EXPECT_EQ(Entry(id).state, LsiState::kStale);
}

TEST_F(CatalogTest, TtlFollowsTheIntervalBetweenRestoresAndExpires) {
  KeyInfo info;
  SecretKey key;
  Key("site-a", &info, &key);
  EXPECT_EQ(catalog_->TtlFor(info, key, "vol"), 86400);  // no history yet
  uint64_t id = Assemble("site-a");
  const int64_t t0 = 1'700'000'000;
  Deliver("site-a", id, true, t0);
  EXPECT_EQ(catalog_->TtlFor(info, key, "vol"), 86400);  // one restore: no interval
  Deliver("site-a", id, true, t0 + 10 * 3600);
  EXPECT_EQ(catalog_->TtlFor(info, key, "vol"), 20 * 3600);  // twice the interval
  Deliver("site-a", id, true, t0 + 10 * 3600 + 60);
  EXPECT_EQ(catalog_->TtlFor(info, key, "vol"), 2 * ((2 * 10 * 3600 + 60) / 3));  // decayed
  for (int i = 2; i < 40; ++i) Deliver("site-a", id, true, t0 + 10 * 3600 + 60 * i);
  EXPECT_EQ(catalog_->TtlFor(info, key, "vol"), 3600);  // clamped below
  EXPECT_EQ(catalog_->Restores(info, key, "vol"), 41u);

  uint64_t fresh = Assemble("site-a", {4}, /*ttl=*/600);
  int64_t expires = Entry(fresh).manifest.expires;
  EXPECT_EQ(Entry(fresh, expires - 1).state, LsiState::kAssembled);
  CatalogEntry e = Entry(fresh, expires);
  EXPECT_EQ(e.state, LsiState::kExpired);
  Manifest m;
  ASSERT_TRUE(
      catalog_->FindFresh(info, key, "vol", e.manifest.snapshot, Context(expires), &m).ok());
  EXPECT_EQ(m.lsi_id, id);  // the older LSI, whose TTL has not run out
  EXPECT_TRUE(catalog_
                  ->FindFresh(info, key, "vol", e.manifest.snapshot,
                              Context(Entry(id).manifest.expires), &m)
                  .IsNotFound());
}

TEST_F(CatalogTest, DroppingTheImageRemovesItsFilesAndTheVolumeImage) {
  uint64_t older = Assemble("site-a");
  uint64_t id = Assemble("site-a");
  Deliver("site-a", older, true);
  Deliver("site-a", id, true);
  DropResult r;
  ASSERT_TRUE(catalog_->Drop(id, &r).ok());
  EXPECT_FALSE(r.deferred);
  EXPECT_GT(r.bytes, 3u * kBlock);
  EXPECT_FALSE(PathExists(store_->manifest_path(id)));
  EXPECT_FALSE(PathExists(store_->tombstone_path(id)));
  EXPECT_FALSE(Shown("site-a", id));
  // No older LSI silently takes its place.
  EXPECT_EQ(Alias("site-a"), 0u);
  EXPECT_TRUE(Shown("site-a", older));
  EXPECT_TRUE(catalog_->Drop(id, &r).IsNotFound());
}

TEST_F(CatalogTest, APinnedLsiSurvivesDropAndEvictionAndGoesWhenReleased) {
  uint64_t id = Assemble("site-a");
  Deliver("site-a", id, true);
  KeyInfo info;
  SecretKey key;
  Key("site-a", &info, &key);
  std::unique_ptr<LsiPin> pin;
  ASSERT_TRUE(catalog_->Pin(id, info, key, &pin).ok());
  EXPECT_EQ(pin->manifest().lsi_id, id);
  EXPECT_TRUE(Entry(id).in_use);

  DropResult r;
  ASSERT_TRUE(catalog_->Drop(id, &r).ok());
  EXPECT_TRUE(r.deferred);
  EXPECT_TRUE(FilesExist(id));
  EXPECT_EQ(Entry(id).state, LsiState::kDropped);
  EXPECT_FALSE(Shown("site-a", id));
  // A second pin (a new open) is refused; eviction cannot take it; a sweep
  // leaves it.
  std::unique_ptr<LsiPin> second;
  EXPECT_TRUE(catalog_->Pin(id, info, key, &second).IsNotFound());
  ASSERT_TRUE(store_->UpdateCaps(1, 0).ok());
  EvictionReport report;
  ASSERT_TRUE(catalog_->Evict(Context(), &report).ok());
  EXPECT_TRUE(report.dropped.empty());
  EXPECT_FALSE(report.satisfied);
  catalog_->Sweep();
  EXPECT_TRUE(FilesExist(id));

  catalog_->Unpin(std::move(pin));
  EXPECT_FALSE(PathExists(store_->manifest_path(id)));
  EXPECT_FALSE(PathExists(store_->tombstone_path(id)));
  std::vector<CatalogEntry> all;
  ASSERT_TRUE(catalog_->List(Context(), &all).ok());
  EXPECT_TRUE(all.empty());
}

TEST_F(CatalogTest, ListingWhileDroppingNeverDefersADrop) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 60; ++i) ids.push_back(Assemble("site-a", {static_cast<uint64_t>(i)}));
  std::atomic<bool> stop{false};
  std::thread lister([&] {
    while (!stop) {
      std::vector<CatalogEntry> all;
      (void)catalog_->List(Context(), &all);
    }
  });
  int deferred = 0;
  for (uint64_t id : ids) {
    DropResult r;
    ASSERT_TRUE(catalog_->Drop(id, &r).ok());
    deferred += r.deferred;
  }
  stop = true;
  lister.join();
  EXPECT_EQ(deferred, 0);  // nothing had them open
  for (uint64_t id : ids) EXPECT_FALSE(PathExists(store_->manifest_path(id)));
}

TEST_F(CatalogTest, EvictionGoesFromUselessToCurrentAndNeverTakesWhatIsInUse) {
  // Oldest first within each class; created at distinct seconds.
  uint64_t current = Assemble("site-a");
  Deliver("site-a", current, true);
  uint64_t by_id = Assemble("site-a");
  Deliver("site-a", by_id, false);
  uint64_t superseded_old = Assemble("site-b");
  Deliver("site-b", superseded_old, false, std::time(nullptr) - 100);
  uint64_t superseded_new = Assemble("site-b");
  Deliver("site-b", superseded_new, true);
  uint64_t fresh = Assemble("site-a", {9});
  uint64_t unreadable = Assemble("site-a", {7, 8});
  Manifest m;
  ASSERT_TRUE(PeekManifest(store_->manifest_path(unreadable), &m).ok());
  ASSERT_EQ(::unlink(store_->layer_path(m.layers[0].layer_id).c_str()), 0);
  uint64_t in_use = Assemble("site-a", {5});
  KeyInfo info;
  SecretKey key;
  Key("site-a", &info, &key);
  std::unique_ptr<LsiPin> pin;
  ASSERT_TRUE(catalog_->Pin(in_use, info, key, &pin).ok());
  Import("vol", 3);  // every assembled LSI of site-a not delivered is now stale
  uint64_t stale = fresh;
  uint64_t fresh_b = Assemble("site-b", {10});

  EXPECT_EQ(Entry(unreadable).state, LsiState::kUnreadable);
  EXPECT_NE(Entry(unreadable).reason.find("missing"), std::string::npos);
  EXPECT_EQ(Entry(stale).state, LsiState::kStale);
  EXPECT_TRUE(Entry(superseded_old).superseded);

  // A floor no disk can meet: everything but the pinned LSI goes, in order.
  ASSERT_TRUE(store_->UpdateCaps(1ull << 40, UINT64_MAX / 2).ok());
  EvictionReport report;
  ASSERT_TRUE(catalog_->Evict(Context(), &report).ok());
  std::vector<uint64_t> order;
  for (const auto& v : report.dropped) order.push_back(v.lsi_id);
  std::vector<uint64_t> want = {unreadable, stale,   superseded_old, fresh_b,
                                by_id,      current, superseded_new};
  // The last class (current images) is ordered by last use: both delivered
  // now, so only membership is fixed there.
  ASSERT_EQ(order.size(), want.size());
  EXPECT_EQ(std::vector<uint64_t>(order.begin(), order.begin() + 5),
            std::vector<uint64_t>(want.begin(), want.begin() + 5));
  EXPECT_EQ(std::set<uint64_t>(order.begin() + 5, order.end()),
            std::set<uint64_t>(want.begin() + 5, want.end()));
  EXPECT_EQ(report.dropped[0].why, "unreadable");
  EXPECT_EQ(report.dropped[1].why, "stale");
  EXPECT_EQ(report.dropped[2].why, "superseded");
  EXPECT_FALSE(report.satisfied);
  EXPECT_TRUE(FilesExist(in_use));
  EXPECT_EQ(report.bytes_after, Entry(in_use).bytes);
}

TEST_F(CatalogTest, SupersededComparesEachLsiWithTheLatestOfItsExtensionAndVolume) {
  // LSIs of two extensions on two volumes, created and delivered at a few
  // seconds only (ties prove nothing), some delivered, some the volume's
  // image: each LSI's flag must be what comparing it with every other LSI
  // says (the rule the listing once applied pairwise, quadratically).
  Import("vol2", 3);
  std::mt19937 rng(7);
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  for (int i = 0; i < 48; ++i) {
    const std::string ext = rng() % 2 ? "site-a" : "site-b";
    const std::string volume = rng() % 2 ? "vol" : "vol2";
    uint64_t id = Assemble(ext, {}, 86400, volume);
    KeyInfo info;
    SecretKey key;
    Key(ext, &info, &key);
    Manifest m;
    ASSERT_TRUE(catalog_->ReadManifest(id, info, key, &m).ok());
    m.created = now - 10 * static_cast<int64_t>(rng() % 3);
    m.expires = m.created + 86400;
    ASSERT_TRUE(WriteManifest(store_->tmp_dir(), store_->manifest_path(id), m, info, key,
                              /*replace=*/true)
                    .ok());
    if (rng() % 2) Deliver(ext, id, rng() % 4 == 0, now - 10 * static_cast<int64_t>(rng() % 3));
  }
  std::vector<CatalogEntry> all;
  ASSERT_TRUE(catalog_->List(Context(), &all).ok());
  ASSERT_EQ(all.size(), 48u);
  size_t superseded = 0, judged = 0;
  for (const auto& e : all) {
    bool want = false;
    if ((e.state == LsiState::kDelivered || e.state == LsiState::kAssembled) && !e.alias) {
      ++judged;
      for (const auto& o : all) {
        if (o.lsi_id == e.lsi_id || o.manifest.extension != e.manifest.extension ||
            o.manifest.volume != e.manifest.volume) {
          continue;
        }
        want =
            want || (e.state == LsiState::kDelivered
                         ? o.state == LsiState::kDelivered && o.delivered > e.delivered
                         : (o.state == LsiState::kAssembled || o.state == LsiState::kDelivered) &&
                               o.manifest.created > e.manifest.created);
      }
    }
    EXPECT_EQ(e.superseded, want) << FormatId(e.lsi_id) << " " << LsiStateName(e.state);
    superseded += want;
  }
  // Both answers occur, among LSIs of both states.
  EXPECT_GT(superseded, 0u);
  EXPECT_LT(superseded, judged);
}

TEST_F(CatalogTest, TheByteCapEvictsOnlyWhatItMust) {
  uint64_t a = Assemble("site-a", {1, 2, 3, 4});
  uint64_t b = Assemble("site-a", {5, 6, 7, 8});
  Deliver("site-a", b, true);
  uint64_t per = Entry(a).bytes;
  ASSERT_TRUE(store_->UpdateCaps(per + Entry(b).bytes - 1, 0).ok());
  EvictionReport report;
  ASSERT_TRUE(catalog_->Evict(Context(), &report).ok());
  ASSERT_EQ(report.dropped.size(), 1u);
  EXPECT_EQ(report.dropped[0].lsi_id, a);  // assembled before the current image
  EXPECT_TRUE(report.satisfied);
  EXPECT_TRUE(FilesExist(b));
  // A publish evicts too, never the LSI it made.
  ASSERT_TRUE(store_->UpdateCaps(1, 0).ok());
  KeyInfo info;
  SecretKey key;
  Key("site-a", &info, &key);
  PreassembleRequest request;
  request.volume = "vol";
  request.strategy = "none";
  PreassembleResult made;
  ASSERT_TRUE(PreAssembleSnapshot(*catalog_, *origin_, *keys_, info, key, LearnedModels(),
                                  Context(), request, nullptr, &made)
                  .ok());
  EXPECT_TRUE(FilesExist(made.manifest.lsi_id));
  EXPECT_FALSE(PathExists(store_->manifest_path(b)));
}

TEST_F(CatalogTest, WhatNoKeyOpensIsUnreadable) {
  uint64_t id = Assemble("site-b");
  ASSERT_EQ(::unlink(store_->keyring().PathFor("site-b").c_str()), 0);
  CatalogEntry e = Entry(id);
  EXPECT_EQ(e.state, LsiState::kUnreadable);
  EXPECT_NE(e.reason.find("no key of extension 'site-b'"), std::string::npos) << e.reason;
  uint64_t bad = Assemble("site-a");
  Bytes data = testing::ReadFileBytes(store_->manifest_path(bad));
  data[3] ^= 1;
  testing::WriteFileBytes(store_->manifest_path(bad), data);
  EXPECT_EQ(Entry(bad).state, LsiState::kUnreadable);
}

TEST_F(CatalogTest, ATamperedDeliveryRecordIsRefusedAndGenerationsOnlyGrow) {
  uint64_t a = Assemble("site-a");
  Deliver("site-a", a, true);
  uint64_t g1 = Deliveries("site-a").generation;
  Bytes old = testing::ReadFileBytes(store_->deliveries_path("site-a"));
  Deliver("site-a", Assemble("site-a"), true);
  EXPECT_GT(Deliveries("site-a").generation, g1);
  KeyInfo info;
  SecretKey key;
  Key("site-a", &info, &key);
  Bytes now = testing::ReadFileBytes(store_->deliveries_path("site-a"));
  for (size_t at : {size_t{8}, size_t{20}, now.size() / 2, now.size() - 1}) {
    Bytes bad = now;
    bad[at] ^= 0x40;
    testing::WriteFileBytes(store_->deliveries_path("site-a"), bad);
    DeliveryView v;
    Status s = catalog_->ReadDeliveries(info, key, &v);
    EXPECT_FALSE(s.ok()) << at;
  }
  // Another extension's key refuses it by name.
  testing::WriteFileBytes(store_->deliveries_path("site-a"), now);
  KeyInfo other;
  SecretKey other_key;
  Key("site-b", &other, &other_key);
  other.name = "site-a";
  DeliveryView v;
  EXPECT_FALSE(catalog_->ReadDeliveries(other, other_key, &v).ok());
  // An authentic older record reads, with its lower generation (the mount
  // refuses to go back).
  testing::WriteFileBytes(store_->deliveries_path("site-a"), old);
  EXPECT_EQ(Deliveries("site-a").generation, g1);
}

TEST_F(CatalogTest, ADataFileAnImportLeftWithoutItsMapIsSweptUnlessClaimed) {
  uint64_t id = Import("vol", 2);
  const std::string data = store_->snapshot_data_path("vol", id);
  // Two crashes between an import's renames: data files with no map.
  const uint64_t orphan = 0x1111222233334444, claimed = 0x5555666677778888;
  for (uint64_t o : {orphan, claimed}) {
    ASSERT_EQ(testing::RunShell("cp " + data + " " + store_->snapshot_data_path("vol", o)), 0);
  }
  // A live import (this process) still claims the second.
  std::string claim = store_->claim_path(424242);
  testing::WriteFileBytes(claim, AsBytes(FormatId(claimed) + "\n"));
  std::unique_ptr<Catalog> reopened;
  ASSERT_TRUE(Catalog::Open(*store_, &reopened).ok());
  EXPECT_FALSE(PathExists(store_->snapshot_data_path("vol", orphan)));
  EXPECT_TRUE(PathExists(store_->snapshot_data_path("vol", claimed)));
  EXPECT_TRUE(PathExists(data)) << "a committed snapshot's data file went";
  ::unlink(claim.c_str());
  ASSERT_TRUE(Catalog::Open(*store_, &reopened).ok());
  EXPECT_FALSE(PathExists(store_->snapshot_data_path("vol", claimed)));
}

TEST_F(CatalogTest, ADamagedManifestHoldsBackOnlyTheLayerSweep) {
  KeyInfo info;
  SecretKey key;
  Key("site-a", &info, &key);
  Manifest m;
  ASSERT_TRUE(catalog_->ReadManifest(Assemble("site-a", {1, 2}), info, key, &m).ok());
  // A layer nothing names, stale counters of a gone LSI, a damaged manifest.
  const std::string stray = store_->layer_path(0x0123456789abcdef);
  ASSERT_EQ(testing::RunShell("cp " + store_->layer_path(m.layers[0].layer_id) + " " + stray), 0);
  const std::string counters = store_->counters_path(0x0fedcba987654321, "site-a");
  testing::WriteFileBytes(counters, AsBytes("{}"));
  testing::WriteFileBytes(store_->manifest_path(0x0aaaaaaaaaaaaaaa), AsBytes("damaged"));
  std::unique_ptr<Catalog> reopened;
  ASSERT_TRUE(Catalog::Open(*store_, &reopened).ok());
  // The damaged manifest might name the stray layer: it stays. The rest of
  // the sweep still runs.
  EXPECT_TRUE(PathExists(stray));
  EXPECT_FALSE(PathExists(counters));
  EXPECT_TRUE(PathExists(store_->layer_path(m.layers[0].layer_id)));
}

TEST_F(CatalogTest, OneUnusableKeyFileDoesNotMakeEveryLsiUnreadable) {
  uint64_t id = Assemble("site-a");
  testing::WriteFileBytes(store_->keyring().PathFor("site-b"), AsBytes("not a key\n"));
  std::vector<CatalogEntry> all;
  ASSERT_TRUE(catalog_->List(Context(), &all).ok());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].lsi_id, id);
  EXPECT_NE(all[0].state, LsiState::kUnreadable) << all[0].reason;
  std::vector<KeyInfo> keys;
  std::vector<std::string> unusable;
  ASSERT_TRUE(store_->keyring().List(&keys, &unusable).ok());
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].name, "site-a");
  ASSERT_EQ(unusable.size(), 1u);
  EXPECT_NE(unusable[0].find("site-b.key"), std::string::npos) << unusable[0];
  EXPECT_FALSE(store_->keyring().List(&keys).ok()) << "without the list, one bad file fails it";
}

TEST_F(CatalogTest, AListingFlagsALayerMissingTruncatedExtendedOrSwapped) {
  KeyInfo info;
  SecretKey key;
  Key("site-a", &info, &key);
  Manifest a, b;
  ASSERT_TRUE(catalog_->ReadManifest(Assemble("site-a", {1, 2, 3}), info, key, &a).ok());
  ASSERT_TRUE(catalog_->ReadManifest(Assemble("site-a", {4, 5}), info, key, &b).ok());
  const std::string layer = store_->layer_path(a.layers[0].layer_id);
  const Bytes good = testing::ReadFileBytes(layer);
  auto state_of_a = [&](std::string* reason) {
    CatalogEntry e;
    EXPECT_TRUE(catalog_->Find(a.lsi_id, Context(), &e).ok());
    *reason = e.reason;
    return e.state;
  };
  std::string reason;
  EXPECT_NE(state_of_a(&reason), LsiState::kUnreadable) << reason;
  Bytes longer = good;
  longer.push_back(0);
  const Bytes shorter(good.begin(), good.end() - 1);
  const Bytes other = testing::ReadFileBytes(store_->layer_path(b.layers[0].layer_id));
  for (const Bytes* bad : std::initializer_list<const Bytes*>{&longer, &shorter, &other}) {
    testing::WriteFileBytes(layer, *bad);
    EXPECT_EQ(state_of_a(&reason), LsiState::kUnreadable);
    EXPECT_NE(reason.find("truncated, extended or swapped"), std::string::npos) << reason;
  }
  ASSERT_EQ(::unlink(layer.c_str()), 0);
  EXPECT_EQ(state_of_a(&reason), LsiState::kUnreadable);
  EXPECT_NE(reason.find("is missing"), std::string::npos) << reason;
  testing::WriteFileBytes(layer, good);
  EXPECT_NE(state_of_a(&reason), LsiState::kUnreadable) << reason;
}

TEST_F(CatalogTest, AnLsiWithADamagedManifestIsDroppedWithForceAndItsLayersGo) {
  KeyInfo info;
  SecretKey key;
  Key("site-a", &info, &key);
  Manifest m;
  uint64_t id = Assemble("site-a", {1, 2, 3});
  ASSERT_TRUE(catalog_->ReadManifest(id, info, key, &m).ok());
  testing::WriteFileBytes(store_->manifest_path(id), AsBytes("damaged"));
  DropResult r;
  Status s = catalog_->Drop(id, &r);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("lsictl lsi drop --force " + FormatId(id)), std::string::npos)
      << s.message();
  EXPECT_TRUE(PathExists(store_->manifest_path(id)));
  ASSERT_TRUE(catalog_->Drop(id, &r, /*force=*/true).ok());
  EXPECT_FALSE(r.deferred);
  EXPECT_FALSE(PathExists(store_->manifest_path(id)));
  EXPECT_FALSE(PathExists(store_->layer_path(m.layers[0].layer_id)));
  EXPECT_GT(r.bytes, 3u * kBlock) << "its layer's bytes are counted as freed";
}

TEST_F(CatalogTest, OpenSweepsWhatACrashLeftAtEachStep) {
  uint64_t kept = Assemble("site-a");
  // Publish interrupted: a layer written, no manifest, its claimer dead.
  std::string orphan = store_->layer_path(0x1234);
  testing::WriteFileBytes(orphan, AsBytes("layer"));
  // A live assembly's claimed layer stays.
  std::unique_ptr<Claim> claim;
  ASSERT_TRUE(Claim::Begin(*store_, &claim).ok());
  uint64_t claimed_id = 0x5678;
  ASSERT_TRUE(claim->Add(claimed_id).ok());
  testing::WriteFileBytes(store_->layer_path(claimed_id), AsBytes("being written"));
  // Drop interrupted after its tombstone, and after its manifest went.
  uint64_t half_dropped = Assemble("site-a");
  testing::WriteFileBytes(store_->tombstone_path(half_dropped), AsBytes("dropped\n"));
  uint64_t gone = Assemble("site-a");
  Manifest gm;
  ASSERT_TRUE(PeekManifest(store_->manifest_path(gone), &gm).ok());
  testing::WriteFileBytes(store_->tombstone_path(gone), AsBytes("dropped\n"));
  ASSERT_EQ(::unlink(store_->manifest_path(gone).c_str()), 0);
  // Counters of an LSI that is gone.
  testing::WriteFileBytes(store_->counters_path(gone, "site-a"), AsBytes("{}"));

  std::unique_ptr<Catalog> reopened;
  ASSERT_TRUE(Catalog::Open(*store_, &reopened).ok());
  EXPECT_FALSE(PathExists(orphan));
  EXPECT_TRUE(PathExists(store_->layer_path(claimed_id)));
  EXPECT_FALSE(PathExists(store_->manifest_path(half_dropped)));
  EXPECT_FALSE(PathExists(store_->tombstone_path(half_dropped)));
  EXPECT_FALSE(PathExists(store_->tombstone_path(gone)));
  EXPECT_FALSE(PathExists(store_->layer_path(gm.layers[0].layer_id)));
  EXPECT_FALSE(PathExists(store_->counters_path(gone, "site-a")));
  EXPECT_TRUE(FilesExist(kept));
  // Once the claim is released, its unpublished layer is a leftover too.
  claim.reset();
  reopened->Sweep();
  EXPECT_FALSE(PathExists(store_->layer_path(claimed_id)));
}

// Checks the invariants every crash must keep: every LSI listed is readable
// whole, no layer is left unreferenced, no drop is half done, every delivery
// record authenticates.
void ExpectConsistent(const Store& store, const Catalog& catalog, const CatalogContext& context) {
  std::vector<CatalogEntry> all;
  ASSERT_TRUE(catalog.List(context, &all).ok());
  std::set<uint64_t> referenced;
  for (const auto& e : all) {
    EXPECT_NE(e.state, LsiState::kUnreadable) << FormatId(e.lsi_id) << ": " << e.reason;
    EXPECT_NE(e.state, LsiState::kDropped) << FormatId(e.lsi_id);
    for (const auto& l : e.manifest.layers) referenced.insert(l.layer_id);
  }
  DIR* d = ::opendir(store.layers_dir().c_str());
  ASSERT_NE(d, nullptr);
  while (struct dirent* de = ::readdir(d)) {
    StoreFile kind;
    uint64_t id = 0;
    if (Store::ParseFileName(de->d_name, &kind, &id)) {
      EXPECT_TRUE(referenced.count(id)) << "leftover layer " << de->d_name;
    }
  }
  ::closedir(d);
  for (const char* ext : {"site-a", "site-b"}) {
    KeyInfo info;
    SecretKey key;
    ASSERT_TRUE(store.keyring().Load(ext, &info, &key).ok());
    DeliveryView v;
    Status s = catalog.ReadDeliveries(info, key, &v);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
}

// What the child below did, as it did it: "delivered ID", "dropping ID",
// "evicting" lines, each written and fsynced after (or, for the last two,
// before) the step it names.
void Journal(int fd, const std::string& line) {
  std::string l = line + "\n";
  if (::write(fd, l.data(), l.size()) != static_cast<ssize_t>(l.size())) ::_exit(3);
  ::fdatasync(fd);
}

// Reads the whole LSI through the read path with the keys the store holds
// now (both, while a rotation is unfinished); empty when it does not open.
Bytes ReadAll(const Store& store, Origin& origin, const Catalog& catalog, uint64_t id,
              const std::string& ext) {
  ExtensionKeys keys;
  if (!store.keyring().LoadKeys(ext, &keys).ok()) return {};
  std::unique_ptr<LsiPin> pin;
  Status s = keys.WithEither(
      [&](const KeyInfo& info, const SecretKey& key) { return catalog.Pin(id, info, key, &pin); });
  std::unique_ptr<LsiImage> image;
  if (s.ok()) s = LsiImage::Open(store, pin->manifest(), keys, origin, ImageOptions(), &image);
  Bytes out;
  if (s.ok()) {
    out.resize(image->size());
    size_t done = 0;
    s = image->Read(0, out, &done);
    if (!s.ok() || done != out.size()) out.clear();
  }
  catalog.Unpin(std::move(pin));
  return out;
}

TEST_F(CatalogTest, ARotationRekeysEveryLsiOfTheExtensionAndRetiresTheOldKey) {
  uint64_t a = Assemble("site-a", {1, 2, 3});
  uint64_t b = Assemble("site-a", {4, 5});
  uint64_t other = Assemble("site-b", {6});
  Deliver("site-a", a, /*alias=*/true);
  const Bytes before_a = ReadAll(*store_, *origin_, *catalog_, a, "site-a");
  ASSERT_FALSE(before_a.empty());
  KeyInfo old_info;
  SecretKey old_key;
  Key("site-a", &old_info, &old_key);
  Manifest old_manifest;
  ASSERT_TRUE(PeekManifest(store_->manifest_path(a), &old_manifest).ok());
  const Bytes other_manifest = testing::ReadFileBytes(store_->manifest_path(other));

  KeyRotation r;
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  Status s = catalog_->RotateKey(
      "site-a", [&](uint64_t done, uint64_t total) { progress.emplace_back(done, total); }, &r);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(r.resumed);
  EXPECT_EQ(r.rekeyed, 2u);
  EXPECT_EQ(r.already, 0u);
  EXPECT_TRUE(r.left_out.empty());
  EXPECT_GT(r.layer_bytes, 5u * kBlock);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), std::make_pair(uint64_t{2}, uint64_t{2}));

  KeyInfo new_info;
  SecretKey new_key;
  Key("site-a", &new_info, &new_key);
  EXPECT_NE(new_info.id, old_info.id);
  EXPECT_EQ(new_info.id, r.new_key.id);
  EXPECT_FALSE(PathExists(store_->keyring().NextPathFor("site-a")));
  // Everything of site-a opens with the new key only; the bytes are the same.
  Manifest m;
  EXPECT_TRUE(catalog_->ReadManifest(a, new_info, new_key, &m).ok());
  EXPECT_EQ(m.layers.size(), old_manifest.layers.size());
  EXPECT_EQ(m.layers[0].layer_id, old_manifest.layers[0].layer_id);
  EXPECT_TRUE(catalog_->ReadManifest(a, old_info, old_key, &m).IsPermission());
  std::unique_ptr<LayerReader> layer;
  EXPECT_TRUE(LayerReader::Open(store_->layer_path(m.layers[0].layer_id), old_info, old_key, &layer)
                  .IsPermission());
  EXPECT_EQ(ReadAll(*store_, *origin_, *catalog_, a, "site-a"), before_a);
  EXPECT_FALSE(ReadAll(*store_, *origin_, *catalog_, b, "site-a").empty());
  // The delivery record follows: a mount of site-a still shows its image.
  EXPECT_EQ(Alias("site-a"), a);
  DeliveryView v;
  EXPECT_TRUE(catalog_->ReadDeliveries(old_info, old_key, &v).IsPermission());
  // Another extension's LSI is not touched.
  EXPECT_EQ(testing::ReadFileBytes(store_->manifest_path(other)), other_manifest);
  // Nothing is published or delivered under the retired key any more.
  EXPECT_EQ(catalog_->Deliver(b, old_info, old_key, false, std::time(nullptr)).code(),
            Status::Code::kUnavailable);
  EXPECT_EQ(Entry(a).state, LsiState::kDelivered);
}

TEST_F(CatalogTest, AnInterruptedRotationLeavesEveryLsiReadableAndFinishesWhenRunAgain) {
  uint64_t a = Assemble("site-a", {1, 2, 3});
  Deliver("site-a", a, /*alias=*/true);
  uint64_t b = Assemble("site-a", {7, 8});
  const Bytes want_a = ReadAll(*store_, *origin_, *catalog_, a, "site-a");
  const Bytes want_b = ReadAll(*store_, *origin_, *catalog_, b, "site-a");
  ASSERT_FALSE(want_a.empty());
  // Interrupted after the next key was made and one layer of `a` rewrapped,
  // before its manifest: a layer under the new key, its manifest under the old.
  KeyInfo old_info, next_info;
  SecretKey old_key, next_key;
  Key("site-a", &old_info, &old_key);
  bool resumed = true;
  ASSERT_TRUE(store_->keyring().BeginRotation("site-a", &next_info, &next_key, &resumed).ok());
  EXPECT_FALSE(resumed);
  Manifest m;
  ASSERT_TRUE(PeekManifest(store_->manifest_path(a), &m).ok());
  ASSERT_TRUE(RewrapLayer(store_->tmp_dir(), store_->layer_path(m.layers[0].layer_id), old_info,
                          old_key, next_info, next_key)
                  .ok());
  // Readable with the keys the store holds, and listed as such.
  EXPECT_EQ(ReadAll(*store_, *origin_, *catalog_, a, "site-a"), want_a);
  EXPECT_EQ(ReadAll(*store_, *origin_, *catalog_, b, "site-a"), want_b);
  EXPECT_EQ(Entry(a).state, LsiState::kDelivered);
  // Publishing under the key in force still works meanwhile.
  uint64_t c = Assemble("site-a", {9});
  KeyRotation r;
  Status s = catalog_->RotateKey("site-a", nullptr, &r);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(r.new_key.id, next_info.id);
  EXPECT_EQ(r.rekeyed, 3u);
  KeyInfo now;
  SecretKey now_key;
  Key("site-a", &now, &now_key);
  EXPECT_EQ(now.id, next_info.id);
  EXPECT_EQ(ReadAll(*store_, *origin_, *catalog_, a, "site-a"), want_a);
  EXPECT_EQ(ReadAll(*store_, *origin_, *catalog_, b, "site-a"), want_b);
  EXPECT_FALSE(ReadAll(*store_, *origin_, *catalog_, c, "site-a").empty());
  EXPECT_EQ(Alias("site-a"), a);
  // A second interruption after the manifest and before the record is
  // finished the same way (the record is read with the next key).
  KeyInfo third;
  SecretKey third_key;
  ASSERT_TRUE(store_->keyring().BeginRotation("site-a", &third, &third_key, &resumed).ok());
  ASSERT_TRUE(catalog_->RotateKey("site-a", nullptr, &r).ok());
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(Alias("site-a"), a);
}

TEST_F(CatalogTest, DeletingAKeyNamesTheLsisItWouldStrandAndDropsThemOnlyWithForce) {
  uint64_t a = Assemble("site-b", {1, 2});
  Deliver("site-b", a, true);
  KeyDeletion d;
  ASSERT_TRUE(catalog_->DeleteKey("site-b", /*force=*/false, &d).ok());
  EXPECT_FALSE(d.deleted);
  EXPECT_EQ(d.lsis, std::vector<uint64_t>{a});
  EXPECT_TRUE(PathExists(store_->keyring().PathFor("site-b")));
  EXPECT_TRUE(FilesExist(a));
  ASSERT_TRUE(catalog_->DeleteKey("site-b", /*force=*/true, &d).ok());
  EXPECT_TRUE(d.deleted);
  EXPECT_GT(d.bytes, 2u * kBlock);
  EXPECT_FALSE(PathExists(store_->keyring().PathFor("site-b")));
  EXPECT_FALSE(PathExists(store_->manifest_path(a)));
  EXPECT_FALSE(PathExists(store_->deliveries_path("site-b")));
  EXPECT_TRUE(catalog_->DeleteKey("site-b", true, &d).IsNotFound());
  // A key with nothing made for it goes without --force.
  KeyInfo fresh;
  ASSERT_TRUE(store_->keyring().Create("site-c", &fresh).ok());
  ASSERT_TRUE(catalog_->DeleteKey("site-c", false, &d).ok());
  EXPECT_TRUE(d.deleted);
}

TEST_F(CatalogTest, KillDashNineAtRandomPointsLeavesTheCatalogConsistentAndLosesNothing) {
  std::mt19937_64 rng(7);
  std::string journal = dir_ / "journal";
  uint64_t checked = 0;
  for (int round = 0; round < 12; ++round) {
    pid_t child = ::fork();
    if (child == 0) {
      int fd = ::open(journal.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      // Publish, deliver, drop and evict as fast as possible until killed.
      for (uint64_t i = 0;; ++i) {
        std::string ext = i % 2 ? "site-a" : "site-b";
        uint64_t id = Assemble(ext, {i % kBlocks, (i + 1) % kBlocks}, 3600);
        Deliver(ext, id, i % 3 != 0);
        Journal(fd, "delivered " + FormatId(id));
        if (i % 2 == 0) {
          Journal(fd, "dropping " + FormatId(id));
          DropResult r;
          (void)catalog_->Drop(id, &r);
        }
        if (i % 5 == 4) {
          Journal(fd, "evicting");
          (void)store_->UpdateCaps(20 * kBlock, 0);
          EvictionReport report;
          (void)catalog_->Evict(Context(), &report);
          (void)store_->UpdateCaps(1ull << 40, 0);
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 40000));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    std::unique_ptr<Store> store;
    ASSERT_TRUE(Store::Open(store_->root(), &store).ok());
    std::unique_ptr<Catalog> catalog;
    ASSERT_TRUE(Catalog::Open(*store, &catalog).ok());
    ExpectConsistent(*store, *catalog, Context());
    // Nothing complete is lost: every LSI delivered, and neither dropped nor
    // exposed to an eviction since, is still there and still shown.
    std::set<uint64_t> must;
    std::ifstream in(journal);
    std::string word, id;
    while (in >> word) {
      if (word == "evicting") {
        must.clear();
        continue;
      }
      in >> id;
      if (word == "delivered") must.insert(*ParseId(id));
      if (word == "dropping") must.erase(*ParseId(id));
    }
    for (uint64_t lsi : must) {
      EXPECT_TRUE(FilesExist(lsi)) << FormatId(lsi);
      Manifest m;
      ASSERT_TRUE(PeekManifest(store->manifest_path(lsi), &m).ok());
      EXPECT_TRUE(Shown(m.extension, lsi)) << FormatId(lsi);
    }
    checked += must.size();
    if (HasFailure()) break;
  }
  // The child got far enough for the check to mean something.
  EXPECT_GT(checked, 0u);
}

}  // namespace
}  // namespace lsifs
