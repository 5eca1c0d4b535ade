// A site of the two-site form (DESIGN.md, "Where each part runs"): SITE_DIR
// is a replica of the region's store that holds only what is the site's:
// its extension key (keys/EXT.key, put there by the operator), the
// deliveries record, manifests and layers of its own LSIs pulled from the
// region, the spill of fetched base blocks and its local recording
// database. Never the provider key. With the same layout, the catalog and
// the read path serve a site as they serve one host; base blocks come from
// the region through RemoteOrigin (region/client.h).
//
// SiteSync pulls what the region delivered: the deliveries record, the
// manifests it names, then their layers, each checked with the extension
// key before it takes its place (written to tmp/, renamed when whole). A
// layer not pulled yet is *pending* (ImageOptions::layers_arrive_later):
// its blocks are read from the base meanwhile. What was pulled is a cache
// with a byte cap: while the site's LSIs take more than its lsi_cap (lsictl
// -s SITE_DIR config set lsi_cap SIZE) or its disk has less than
// free_floor free, the least recently used go first (never one a mount has
// open, never the newest delivery of a volume: what its next restore
// opens), and one evicted is pulled again only once delivered again.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/access/access_db.h"
#include "core/catalog/catalog.h"
#include "core/catalog/delivery_record.h"
#include "core/crypto/keyfile.h"
#include "core/predictor/predictor.h"
#include "core/region/client.h"
#include "core/store/store.h"
#include "core/util/status.h"

namespace lsifs {

// A site's client of the region: `options`' certificate, key and CA, or
// where they are empty the site folder's (Store::SiteTlsPaths of
// `extension`, or with none named of the one extension whose certificate
// SITE_DIR/tls holds). Fails when the certificate names another extension
// than `extension` (when given): the region would serve it as that one.
Status OpenSiteClient(RegionClientOptions options, const std::string& site_dir,
                      const std::string& extension, std::unique_ptr<RegionClient>* out);

// Makes `site_dir` a replica of the region's store (GET /v1/store), or
// checks that it is one of that store (kExists when it is a replica of
// another store, or a store of its own). `*out` receives it opened.
Status OpenOrInitSite(RegionClient& region, const std::string& site_dir,
                      std::unique_ptr<Store>* out);

struct SiteSyncReport {
  bool delivered = false;  // the region has a deliveries record for the extension
  // The pass left a layer midway for a newer delivery (Wake during it): the
  // next pass, at once, pulls that first, then goes on where this one was.
  bool preempted = false;
  uint64_t manifests = 0;    // pulled in this pass
  uint64_t layers = 0;       // pulled in this pass
  uint64_t layer_bytes = 0;  // pulled in this pass
  uint64_t evicted = 0;      // LSIs the byte cap evicted after this pass
};

struct SiteSyncCounters {
  uint64_t passes = 0;
  uint64_t failures = 0;  // passes that failed (the region unreachable, a refused file)
  uint64_t manifests = 0;
  uint64_t layers = 0;
  uint64_t layer_bytes = 0;
  uint64_t evicted = 0;
};

// Runs a pass of work every `interval`, and at once when woken, on a
// thread of its own, logging one line when passes start failing and one
// when they work again (one line per outage, not per pass).
class Periodic {
 public:
  // `what` names the work in the log lines ("pulling from the region").
  Periodic(std::string what, std::function<Status()> pass,
           std::function<void(const std::string&)> log);
  ~Periodic();  // stops; returns once the thread is gone
  void Start(std::chrono::milliseconds interval);
  void Wake();
  uint64_t passes() const;
  uint64_t failures() const;

 private:
  const std::string what_;
  const std::function<Status()> pass_;
  const std::function<void(const std::string&)> log_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, wake_ = false, failing_ = false;
  uint64_t passes_ = 0, failures_ = 0;
  std::thread thread_;
};

struct SiteSyncOptions {
  // A layer comes in ranges of this size: a demand read waits behind at
  // most one of them on the site's link, and a newer delivery too.
  uint64_t layer_chunk = 4ull << 20;
  // Told after each range of a layer arrives: `at` of its `size` bytes.
  std::function<void(uint64_t lsi, uint64_t layer, uint64_t at, uint64_t size)> on_chunk;
  std::function<void(const std::string&)> log;
};

class SiteSync {
 public:
  // `site`, `catalog` (the site's), `region` and `keys` must outlive it.
  SiteSync(const Store& site, const Catalog& catalog, RegionClient& region,
           const ExtensionKeys& keys, SiteSyncOptions options = SiteSyncOptions());
  ~SiteSync();

  // One pass: the deliveries record, then every manifest it names that is
  // not here (nor evicted since it was last delivered), then their layers
  // not here (newest delivery first, each LSI's layers bottom to top: the
  // order of expected first access), in the link's layer-pull class; then
  // the byte cap. A layer cut off (a newer delivery, the region gone) is
  // taken up where it was by the pass that next wants it.
  Status Pull(SiteSyncReport* report);
  // Pulls every `interval`, and at once when Wake() is called.
  void Start(std::chrono::milliseconds interval) { periodic_.Start(interval); }
  // A delivery was made (a restore): a pass now, and one under way leaves
  // its layer at the next range to pull the new delivery first.
  void Wake() {
    ++wakes_;
    periodic_.Wake();
  }

  SiteSyncCounters Counters() const;

 private:
  struct PartialLayer;
  // Pulls `layer` whole, or leaves it (`*preempted`) once Wake was called
  // since the pass's `wakes`.
  Status PullLayer(uint64_t lsi, uint64_t layer, uint64_t wakes, uint64_t* bytes, bool* preempted);
  // Holds the cap, keeping `newest`; marks what goes as evicted.
  Status Evict(const std::vector<DeliveryEntry>& entries, uint64_t* evicted);

  const Store& site_;
  const Catalog& catalog_;
  RegionClient& region_;
  const ExtensionKeys& keys_;
  const SiteSyncOptions options_;
  std::mutex pull_mu_;  // one pass at a time
  std::atomic<uint64_t> wakes_{0};
  std::unique_ptr<PartialLayer> partial_;  // under pull_mu_: the layer cut off last
  mutable std::mutex mu_;
  SiteSyncCounters counters_;
  Periodic periodic_;  // last: its thread stops first
};

// Sends the sessions recorded at the site to the region once they have
// ended, from the site's own database, which is the queue: what cannot be
// sent (the region down) waits there, and reads never wait for it. At least
// once: a session whose answer was lost is sent again, and the region takes
// it once, by its key. What was sent is marked in the site's database.
class SessionUploader {
 public:
  // Runs `fn` with the site's database (the recorder's), or fails.
  using WithDb = std::function<Status(const std::function<Status(AccessDb&)>&)>;
  SessionUploader(RegionClient& region, std::string extension, WithDb with_db,
                  std::function<void(const std::string&)> log = nullptr);

  // Sends every ended session not sent yet; `*sent` counts them.
  Status UploadPending(uint32_t* sent);
  void Start(std::chrono::milliseconds interval) { periodic_.Start(interval); }
  void Wake() { periodic_.Wake(); }
  uint64_t sent() const { return sent_.load(); }
  uint64_t failures() const { return periodic_.failures(); }

 private:
  RegionClient& region_;
  const std::string extension_;
  const WithDb with_db_;
  std::mutex upload_mu_;  // one pass at a time
  std::atomic<uint64_t> sent_{0};
  Periodic periodic_;  // last: its thread stops first
};

// The successor table of the site's extension for `volume`, as the region
// builds it from the sessions of every site (where a site's read-time
// expansion takes its tables: the site's own database holds only its own
// sessions). At most `max_entries` successors.
Status FetchSuccessorTable(RegionClient& region, const std::string& volume, size_t max_entries,
                           SuccessorTable* out);

}  // namespace lsifs
