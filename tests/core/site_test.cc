// A site of the two-site form (core/site): its replica of the region's
// store, what it pulls, what it sends, and the periodic passes that do
// both; against a real region over TLS (tests/core/region_fixture.h).
#include "core/site/site.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <ctime>

#include "core/image/image.h"
#include "core/service/successors.h"
#include "core/util/hex.h"
#include "tests/core/region_fixture.h"

namespace lsifs {
namespace {

class SiteTest : public testing::RegionTls {
 protected:
  struct SiteReplica {
    std::unique_ptr<RegionClient> client;
    std::unique_ptr<Store> site;
    std::unique_ptr<Catalog> catalog;
    ExtensionKeys keys;
  };
  // The server started; site-a's client of it, and its site folder made a
  // replica of the region's store, with its catalog.
  void StartSite() {
    StartServer();
    replica_.client = Client("site-a");
    ASSERT_TRUE(OpenOrInitSite(*replica_.client, dir_ / "site", &replica_.site).ok());
    ASSERT_TRUE(Catalog::Open(*replica_.site, &replica_.catalog).ok());
    replica_.keys = KeysOfExtension("site-a");
  }

  SiteReplica replica_;
};

TEST(Periodic, PassesRunOnTimeAndWhenWokenAndAnOutageIsLoggedOnce) {
  std::mutex mu;
  std::vector<std::string> lines;
  std::atomic<int> passes{0};
  std::atomic<bool> failing{true};
  Periodic p(
      "testing",
      [&] {
        ++passes;
        return failing ? Status::Unavailable("down") : Status::Ok();
      },
      [&](const std::string& line) {
        std::lock_guard<std::mutex> lock(mu);
        lines.push_back(line);
      });
  // The first pass at once; later ones only when woken (the interval is
  // an hour). Each wait is for the pass to be counted, failure and all.
  auto wait_passes = [&](uint64_t n) {
    for (int i = 0; i < 400 && p.passes() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return p.passes();
  };
  p.Start(std::chrono::hours(1));
  EXPECT_EQ(wait_passes(1), 1u);
  p.Wake();
  EXPECT_EQ(wait_passes(2), 2u);
  p.Wake();
  EXPECT_EQ(wait_passes(3), 3u);
  EXPECT_EQ(p.failures(), 3u);
  failing = false;
  p.Wake();
  EXPECT_EQ(wait_passes(4), 4u);
  EXPECT_EQ(p.failures(), 3u);
  EXPECT_EQ(passes.load(), 4);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(lines.size(), 2u);  // three failed passes, one line; then its end
  EXPECT_NE(lines[0].find("testing failed"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("testing works again"), std::string::npos) << lines[1];
}

TEST_F(SiteTest, ASitesClientTakesTheSiteFoldersTlsAndRefusesAnotherExtensionsName) {
  const std::string site = dir_ / "site";
  IssuedCertificate issued;
  ASSERT_TRUE(IssueSiteCertificate(*store_, "site-a", site + "/tls", 30, &issued).ok());
  RegionClientOptions o;
  o.url = std::string("https://") + testing::kAddress + ":8443";
  std::unique_ptr<RegionClient> client;
  Status s = OpenSiteClient(o, site, "site-a", &client);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(client->extension(), "site-a");
  // No extension named: the certificate's.
  s = OpenSiteClient(o, site, "", &client);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(client->extension(), "site-a");
  // site-a's certificate asked to act for site-b: refused, naming both.
  o.cert_path = issued.cert_path;
  o.key_path = issued.key_path;
  s = OpenSiteClient(o, site, "site-b", &client);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("extension 'site-a', not of 'site-b'"), std::string::npos)
      << s.ToString();
  EXPECT_EQ(client, nullptr);
  // No certificate of site-b in the folder: a clear error, no client.
  o = RegionClientOptions();
  o.url = std::string("https://") + testing::kAddress + ":8443";
  s = OpenSiteClient(o, site, "site-b", &client);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no certificate of extension 'site-b'"), std::string::npos)
      << s.ToString();
  EXPECT_EQ(client, nullptr);
  // Two extensions' certificates in the folder: which one must be named.
  ASSERT_TRUE(IssueSiteCertificate(*store_, "site-b", site + "/tls", 30, &issued).ok());
  s = OpenSiteClient(o, site, "", &client);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("certificates of several"), std::string::npos) << s.ToString();
  s = OpenSiteClient(o, site, "site-b", &client);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(client->extension(), "site-b");
}

TEST_F(SiteTest, ASiteReplicaPullsWhatWasDeliveredAndReadsTheSnapshotWithoutTheProviderKey) {
  StartServer();
  auto client = Client("site-a");
  const std::string lsi_text = AssembleFull(*client);
  const uint64_t lsi = *ParseId(lsi_text);
  // Delivered at the region (as `lsictl restore` would deliver a fresh
  // pre-assembled LSI): every block in its layers.
  ASSERT_TRUE(catalog_->Deliver(lsi, info_, key_, true, std::time(nullptr)).ok());
  std::unique_ptr<Store> site;
  Status s = OpenOrInitSite(*client, dir_ / "site", &site);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(PathExists(site->provider_key_path()));
  EXPECT_EQ(site->config().store_id, store_->config().store_id);
  // The region's own store is no site.
  std::unique_ptr<Store> not_a_site;
  EXPECT_EQ(OpenOrInitSite(*client, store_->root(), &not_a_site).code(), Status::Code::kExists);

  ExtensionKeys keys = KeysOfExtension("site-a");
  std::unique_ptr<Catalog> catalog;
  ASSERT_TRUE(Catalog::Open(*site, &catalog).ok());
  SiteSync sync(*site, *catalog, *client, keys);
  SiteSyncReport report;
  s = sync.Pull(&report);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(report.delivered);
  EXPECT_EQ(report.manifests, 1u);
  EXPECT_GE(report.layers, 1u);
  ASSERT_TRUE(PathExists(site->manifest_path(lsi)));
  // A second pass pulls nothing again.
  ASSERT_TRUE(sync.Pull(&report).ok());
  EXPECT_EQ(report.manifests + report.layers, 0u);

  // The site's catalog lists it; its image reads the snapshot, base blocks
  // (none here: every block is in a layer) through the region.
  DeliveryView view;
  ASSERT_TRUE(catalog->ReadDeliveries(keys.info, keys.key, &view).ok());
  Manifest m;
  ASSERT_TRUE(catalog->ReadManifest(lsi, keys.info, keys.key, &m).ok());
  RemoteOrigin remote(*client, keys);
  ImageOptions options;
  options.layers_arrive_later = true;
  auto read_all = [&](uint32_t* pending) {
    std::unique_ptr<LsiImage> img;
    Status opened = LsiImage::Open(*site, m, keys, remote, options, &img);
    EXPECT_TRUE(opened.ok()) << opened.ToString();
    if (!img) return Bytes();
    *pending = img->pending_layers();
    Bytes all(image_.size());
    size_t done = 0;
    EXPECT_TRUE(img->Read(0, all, &done).ok());
    all.resize(done);
    return all;
  };
  uint32_t pending = 9;
  EXPECT_TRUE(read_all(&pending) == image_);
  EXPECT_EQ(pending, 0u);
  // A layer not pulled yet: its blocks come from the region meanwhile.
  const std::string layer = site->layer_path(m.layers[0].layer_id);
  ASSERT_EQ(::unlink(layer.c_str()), 0);
  const uint64_t before = client->Stats().requests;
  EXPECT_TRUE(read_all(&pending) == image_);
  EXPECT_EQ(pending, 1u);
  EXPECT_GT(client->Stats().requests, before);
  // A layer altered at the region is refused and does not take its place.
  const std::string at_region = store_->layer_path(m.layers[0].layer_id);
  Bytes good = testing::ReadFileBytes(at_region);
  Bytes bad = good;
  bad[20] ^= 0x40;  // in the authenticated header
  testing::WriteFileBytes(at_region, bad);
  EXPECT_FALSE(sync.Pull(&report).ok());
  EXPECT_FALSE(PathExists(layer));
  // Mended: it arrives, and the next image reads it.
  testing::WriteFileBytes(at_region, good);
  ASSERT_TRUE(sync.Pull(&report).ok());
  EXPECT_EQ(report.layers, 1u);
  EXPECT_TRUE(read_all(&pending) == image_);
  EXPECT_EQ(pending, 0u);
  // Another extension's site finds nothing delivered to it.
  auto b = Client("site-b");
  ExtensionKeys b_keys = KeysOfExtension("site-b");
  std::unique_ptr<Store> b_site;
  ASSERT_TRUE(OpenOrInitSite(*b, dir_ / "site-b", &b_site).ok());
  std::unique_ptr<Catalog> b_catalog;
  ASSERT_TRUE(Catalog::Open(*b_site, &b_catalog).ok());
  SiteSync b_sync(*b_site, *b_catalog, *b, b_keys);
  ASSERT_TRUE(b_sync.Pull(&report).ok());
  EXPECT_FALSE(report.delivered);
  EXPECT_TRUE(b_site->ListIds(StoreFile::kManifest).empty());
  EXPECT_FALSE(PathExists(b_site->manifest_path(lsi)));
}

TEST_F(SiteTest, ANewerDeliveryIsPulledBeforeTheRestOfALayerUnderWayWhichThenGoesOnWhereItWas) {
  StartSite();
  if (HasFatalFailure()) return;
  auto& [client, site, catalog, keys] = replica_;
  const int64_t now = std::time(nullptr);
  const uint64_t older = *ParseId(AssembleFull(*client));
  ASSERT_TRUE(catalog_->Deliver(older, info_, key_, false, now).ok());
  // The restore that comes while the older LSI's layer is under way.
  const uint64_t newer = *ParseId(AssembleFull(*client));
  ASSERT_NE(newer, older);
  struct Chunk {
    uint64_t lsi, at;
  };
  std::vector<Chunk> chunks;
  SiteSync* running = nullptr;
  SiteSyncOptions options;
  options.layer_chunk = 32 * 1024;
  options.on_chunk = [&](uint64_t lsi, uint64_t, uint64_t at, uint64_t size) {
    chunks.push_back({lsi, at});
    if (chunks.size() == 2) {
      ASSERT_LT(at, size) << "the layer must take more than two ranges";
      ASSERT_TRUE(catalog_->Deliver(newer, info_, key_, false, now + 1).ok());
      running->Wake();
    }
  };
  SiteSync sync(*site, *catalog, *client, keys, options);
  running = &sync;
  SiteSyncReport report;
  ASSERT_TRUE(sync.Pull(&report).ok());
  EXPECT_TRUE(report.preempted);
  EXPECT_EQ(report.layers, 0u);
  ASSERT_EQ(chunks.size(), 2u) << "left at the next range";
  Manifest old_m;
  ASSERT_TRUE(catalog->ReadManifest(older, keys.info, keys.key, &old_m).ok());
  EXPECT_FALSE(PathExists(site->layer_path(old_m.layers.at(0).layer_id)));

  // The next pass: the newer LSI first, whole, then the older layer from
  // where it was left (its third range), not from its start.
  ASSERT_TRUE(sync.Pull(&report).ok());
  EXPECT_FALSE(report.preempted);
  EXPECT_EQ(report.manifests, 1u);
  EXPECT_EQ(report.layers, 2u);
  ASSERT_GT(chunks.size(), 3u);
  EXPECT_EQ(chunks[2].lsi, newer) << "the newer delivery is pulled first";
  size_t resumed = 2;
  while (resumed < chunks.size() && chunks[resumed].lsi == newer) ++resumed;
  ASSERT_LT(resumed, chunks.size());
  EXPECT_EQ(chunks[resumed].lsi, older);
  EXPECT_EQ(chunks[resumed].at, 3 * options.layer_chunk) << "taken up where it was";
  for (size_t i = resumed; i < chunks.size(); ++i) EXPECT_EQ(chunks[i].lsi, older);
  // Both whole and right: their images read the snapshot.
  for (const uint64_t lsi : {older, newer}) {
    Manifest m;
    ASSERT_TRUE(catalog->ReadManifest(lsi, keys.info, keys.key, &m).ok());
    for (const auto& layer : m.layers) {
      EXPECT_TRUE(PathExists(site->layer_path(layer.layer_id)));
    }
    RemoteOrigin remote(*client, keys);
    std::unique_ptr<LsiImage> img;
    Status s = LsiImage::Open(*site, m, keys, remote, ImageOptions(), &img);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(img->pending_layers(), 0u);
    Bytes got(image_.size());
    size_t done = 0;
    ASSERT_TRUE(img->Read(0, got, &done).ok());
    EXPECT_EQ(done, got.size());
    EXPECT_TRUE(got == image_);
  }
}

TEST_F(SiteTest, PulledLsisAreACacheUnderAByteCapAndAnEvictedOneComesBackWhenDeliveredAgain) {
  StartSite();
  if (HasFatalFailure()) return;
  auto& [client, site, catalog, keys] = replica_;
  SiteSync sync(*site, *catalog, *client, keys);
  const int64_t now = std::time(nullptr);
  const uint64_t first = *ParseId(AssembleFull(*client));
  ASSERT_TRUE(catalog_->Deliver(first, info_, key_, false, now).ok());
  SiteSyncReport report;
  ASSERT_TRUE(sync.Pull(&report).ok());
  ASSERT_TRUE(PathExists(site->manifest_path(first)));
  Manifest m;
  ASSERT_TRUE(catalog->ReadManifest(first, keys.info, keys.key, &m).ok());
  const std::string first_layer = site->layer_path(m.layers.at(0).layer_id);
  ASSERT_TRUE(PathExists(first_layer));
  EXPECT_EQ(report.evicted, 0u) << "under the cap";
  // The cap now below one LSI: a newer delivery of the volume comes, and
  // the older one goes (the newest of a volume always stays).
  ASSERT_TRUE(site->UpdateCaps(1, 0).ok());
  const uint64_t second = *ParseId(AssembleFull(*client));
  ASSERT_NE(second, first);
  ASSERT_TRUE(catalog_->Deliver(second, info_, key_, false, now + 1).ok());
  ASSERT_TRUE(sync.Pull(&report).ok());
  EXPECT_EQ(report.manifests, 1u);
  EXPECT_EQ(report.evicted, 1u);
  EXPECT_TRUE(PathExists(site->manifest_path(second)));
  EXPECT_FALSE(PathExists(site->manifest_path(first)));
  EXPECT_FALSE(PathExists(first_layer)) << "its layers go with it";
  EXPECT_TRUE(PathExists(site->site_evicted_path(first)));
  DeliveryView view;
  ASSERT_TRUE(catalog->ReadDeliveries(keys.info, keys.key, &view).ok());
  ASSERT_EQ(view.deliveries.size(), 1u) << "a mount shows what is here";
  EXPECT_EQ(view.deliveries[0].lsi_id, second);
  // Not pulled again while the region's record is as it was...
  ASSERT_TRUE(sync.Pull(&report).ok());
  EXPECT_EQ(report.manifests + report.layers + report.evicted, 0u);
  // ...but once delivered again it is the newest: pulled, and the other goes.
  ASSERT_TRUE(catalog_->Deliver(first, info_, key_, false, now + 2).ok());
  ASSERT_TRUE(sync.Pull(&report).ok());
  EXPECT_EQ(report.manifests, 1u);
  EXPECT_EQ(report.evicted, 1u);
  EXPECT_TRUE(PathExists(first_layer));
  EXPECT_FALSE(PathExists(site->site_evicted_path(first)));
  EXPECT_FALSE(PathExists(site->manifest_path(second)));
  EXPECT_EQ(sync.Counters().evicted, 2u);
}

TEST_F(SiteTest, SessionsRecordedAtASiteReachTheRegionOnceAndAreLearnedFrom) {
  StartServer();
  auto client = Client("site-a");
  testing::TempDir site_dir;
  std::unique_ptr<AccessDb> site_db;
  ASSERT_TRUE(AccessDb::Open(site_dir / "db", CoAccessSettings(), &site_db).ok());
  std::mutex site_mu;
  auto with_site_db = [&](const std::function<Status(AccessDb&)>& fn) {
    std::lock_guard<std::mutex> lock(site_mu);
    return fn(*site_db);
  };
  // Two sessions at the site, one still open.
  const std::vector<uint64_t> read = {7, 3, 40, 41, 42};
  for (int i = 0; i < 2; ++i) {
    uint32_t n = 0;
    ASSERT_TRUE(site_db->BeginSession("site-a", "vol", 0x77, snapshot_, &n).ok());
    std::vector<LoggedEvent> events;
    for (uint32_t k = 0; k < read.size(); ++k) {
      events.push_back({"site-a", "vol", n, k, {read[k], 10 * k}});
    }
    ASSERT_TRUE(site_db->AppendEvents(events).ok());
    if (i == 0) {
      ASSERT_TRUE(site_db->EndSession("site-a", "vol", n, 9, 0).ok());
    }
  }
  SessionUploader uploader(*client, "site-a", with_site_db);
  uint32_t sent = 0;
  Status s = uploader.UploadPending(&sent);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(sent, 1u);  // the open one waits
  std::vector<SessionRecord> at_region;
  ASSERT_TRUE(db_->ListSessions("site-a", "vol", &at_region).ok());
  ASSERT_EQ(at_region.size(), 1u);
  EXPECT_EQ(at_region[0].lsi, 0x77u);
  EXPECT_EQ(at_region[0].reads, 9u);
  EXPECT_TRUE(at_region[0].learned());
  std::vector<AccessEvent> log;
  ASSERT_TRUE(db_->SessionLog("site-a", "vol", at_region[0].number, &log).ok());
  ASSERT_EQ(log.size(), read.size());
  for (size_t k = 0; k < read.size(); ++k) EXPECT_EQ(log[k].block, read[k]);
  // Sent already: not again. The open one goes once it has ended.
  ASSERT_TRUE(uploader.UploadPending(&sent).ok());
  EXPECT_EQ(sent, 0u);
  ASSERT_TRUE(site_db->EndSession("site-a", "vol", 2, 5, 0).ok());
  ASSERT_TRUE(uploader.UploadPending(&sent).ok());
  EXPECT_EQ(sent, 1u);
  ASSERT_TRUE(db_->ListSessions("site-a", "vol", &at_region).ok());
  EXPECT_EQ(at_region.size(), 2u);
  // An upload whose answer was lost, sent again, is taken once.
  std::string body;
  const std::string upload = R"({"key":"k-1","volume":"vol","lsi":")" + FormatId(0x78) +
                             R"(","snapshot":")" + FormatId(snapshot_) +
                             R"(","reads":1,"dropped":0,"events":[[5,0]]})";
  ASSERT_TRUE(Post(*client, "/v1/sessions", upload, &body).ok()) << body;
  const auto first = boost::json::parse(body).as_object();
  ASSERT_TRUE(Post(*client, "/v1/sessions", upload, &body).ok()) << body;
  const auto again = boost::json::parse(body).as_object();
  EXPECT_EQ(first.at("session"), again.at("session"));
  EXPECT_FALSE(first.at("duplicate").as_bool());
  EXPECT_TRUE(again.at("duplicate").as_bool());
  ASSERT_TRUE(db_->ListSessions("site-a", "vol", &at_region).ok());
  EXPECT_EQ(at_region.size(), 3u);
  // What was learned from the site's sessions plans the next assembly here.
  s = Post(*client, "/v1/preassemble", R"({"volume":"vol"})", &body);
  ASSERT_TRUE(s.ok()) << s.ToString() << body;
  EXPECT_GE(boost::json::parse(body).as_object().at("model_sessions").to_number<uint64_t>(), 2u)
      << body;
  // Another extension's certificate cannot send sessions as this one.
  auto b = Client("site-b");
  ASSERT_TRUE(Post(*b, "/v1/sessions", upload, &body).ok());
  std::vector<SessionRecord> b_sessions;
  ASSERT_TRUE(db_->ListSessions("site-b", "vol", &b_sessions).ok());
  EXPECT_EQ(b_sessions.size(), 1u);  // learned as site-b's, never as site-a's
  ASSERT_TRUE(db_->ListSessions("site-a", "vol", &at_region).ok());
  EXPECT_EQ(at_region.size(), 3u);
}

TEST_F(SiteTest, ASiteTakesItsSuccessorTablesFromTheRegionAndKeepsThemThroughAnOutage) {
  // As lsid: a session learned rebuilds the volume's tables.
  env_.on_session_end = [this](AccessDb& db, const std::string& volume) {
    successors_.Build(db, volume);
  };
  StartServer();
  auto client = Client("site-a", /*attempts=*/1);
  SuccessorTable table;
  Status s = FetchSuccessorTable(*client, "vol", 1 << 16, &table);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(table.seeds(), 0u) << "nothing learned yet";
  // The site's cache, fed from the region as lsifs --region feeds it.
  SuccessorCache at_site(PlanOptions(), 1 << 16);
  const SuccessorCache::Source from_region = [&](const std::string&, const std::string& volume,
                                                 SuccessorTable* out) {
    return FetchSuccessorTable(*client, volume, 1 << 16, out);
  };
  EXPECT_EQ(at_site.Get("site-a", "vol"), nullptr);
  ASSERT_TRUE(at_site.Build(from_region).ok());
  ASSERT_NE(at_site.Get("site-a", "vol"), nullptr);
  EXPECT_EQ(at_site.Get("site-a", "vol")->seeds(), 0u);
  // Sessions reach the region (from this site or any other); the site's
  // refreshed table is the region's, which follows what they read.
  std::string body;
  for (int i = 0; i < 4; ++i) {
    const std::string upload = R"({"key":"s-)" + std::to_string(i) + R"(","volume":"vol","lsi":")" +
                               FormatId(0x77) + R"(","snapshot":")" + FormatId(snapshot_) +
                               R"(","reads":3,"dropped":0,"events":[[3,0],[17,10],[29,20]]})";
    ASSERT_TRUE(Post(*client, "/v1/sessions", upload, &body).ok()) << body;
  }
  ASSERT_TRUE(at_site.Refresh(from_region).ok());
  std::shared_ptr<const SuccessorTable> got = at_site.Get("site-a", "vol");
  ASSERT_NE(got, nullptr);
  EXPECT_GT(got->entries(), 0u);
  std::shared_ptr<const SuccessorTable> region_table = successors_.Get("site-a", "vol");
  ASSERT_NE(region_table, nullptr);
  EXPECT_EQ(EncodeSuccessorTable("vol", *got), EncodeSuccessorTable("vol", *region_table));
  bool follows = false;
  const std::vector<uint64_t> read = {3, 17, 29};
  for (uint64_t seed : read) {
    for (uint64_t next : got->Of(seed)) {
      follows |= std::find(read.begin(), read.end(), next) != read.end();
    }
  }
  EXPECT_TRUE(follows) << EncodeSuccessorTable("vol", *got);
  // The region gone: a refresh fails, and the table the site has stays.
  server_.reset();
  EXPECT_FALSE(at_site.Refresh(from_region).ok());
  ASSERT_NE(at_site.Get("site-a", "vol"), nullptr);
  EXPECT_EQ(at_site.Get("site-a", "vol")->entries(), got->entries());
  // A volume first asked for while it is gone stays wanted, for later.
  EXPECT_EQ(at_site.Get("site-a", "other"), nullptr);
  EXPECT_FALSE(at_site.Build(from_region).ok());
  EXPECT_TRUE(at_site.Wanted());
}

}  // namespace
}  // namespace lsifs
