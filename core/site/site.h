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
// its blocks are read from the base meanwhile.
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

#include "core/crypto/keyfile.h"
#include "core/region/client.h"
#include "core/store/store.h"
#include "core/util/status.h"

namespace lsifs {

// Makes `site_dir` a replica of the region's store (GET /v1/store), or
// checks that it is one of that store (kExists when it is a replica of
// another store, or a store of its own). `*out` receives it opened.
Status OpenOrInitSite(RegionClient& region, const std::string& site_dir,
                      std::unique_ptr<Store>* out);

struct SiteSyncReport {
  bool delivered = false;    // the region has a deliveries record for the extension
  uint64_t manifests = 0;    // pulled in this pass
  uint64_t layers = 0;       // pulled in this pass
  uint64_t layer_bytes = 0;  // pulled in this pass
};

struct SiteSyncCounters {
  uint64_t passes = 0;
  uint64_t failures = 0;  // passes that failed (the region unreachable, a refused file)
  uint64_t manifests = 0;
  uint64_t layers = 0;
  uint64_t layer_bytes = 0;
};

class SiteSync {
 public:
  // `site`, `region` and `keys` must outlive it.
  SiteSync(const Store& site, RegionClient& region, const ExtensionKeys& keys,
           std::function<void(const std::string&)> log = nullptr);
  ~SiteSync();  // stops the background pulls

  // One pass: the deliveries record, then every manifest it names that is
  // not here, then their layers not here (newest delivery first, each LSI's
  // layers bottom to top: the order of expected first access), in the
  // link's layer-pull class.
  Status Pull(SiteSyncReport* report);
  // Pulls every `interval`, and at once when Wake() is called.
  void Start(std::chrono::milliseconds interval);
  void Wake();

  SiteSyncCounters Counters() const;

 private:
  Status PullLayer(uint64_t lsi, uint64_t layer, uint64_t* bytes);
  void Loop(std::chrono::milliseconds interval);

  const Store& site_;
  RegionClient& region_;
  const ExtensionKeys& keys_;
  std::function<void(const std::string&)> log_;
  std::mutex pull_mu_;  // one pass at a time

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool wake_ = false;
  bool failing_ = false;  // one log line per outage
  SiteSyncCounters counters_;
  std::thread thread_;
};

}  // namespace lsifs
