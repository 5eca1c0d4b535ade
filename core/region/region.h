// The region service (lsid, DESIGN.md "Where each part runs"): what a site
// may ask of the region that holds the store, the provider key and the
// co-access database of all sites, each answer limited to the extension the
// request's certificate names:
//
//   - the store's facts, and the extension's delivery record;
//   - volumes, snapshots' facts and present blocks;
//   - base blocks, opened with the provider key and sealed again for the
//     extension (RegionTransportKey, RegionBlockAad): never the store's own
//     ciphertext;
//   - restores, pre-assemblies and the assembly queue (the PSA runs here, on
//     the database of all sites: service.h's requests, for this extension);
//   - its own LSIs' listings, manifests and layers (ranges), and its
//     successor tables. Another extension's LSI answers 404, exactly as one
//     that does not exist;
//   - sessions the site recorded, learned from once per upload key (so a
//     site may send again what it is not sure arrived).
#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "core/origin/origin.h"
#include "core/region/server.h"
#include "core/service/service.h"
#include "core/service/successors.h"

namespace lsifs {

class RegionService : public RegionHandler {
 public:
  // `env` (with its store, keys, catalog, queue and database access) and
  // `successors` must outlive the service.
  RegionService(const ServiceEnv& env, SuccessorCache& successors);
  void Serve(const PeerIdentity& peer, const RegionRequest& request, RegionReply* reply) override;

 private:
  Status Route(const PeerIdentity& peer, const RegionRequest& request, RegionReply* reply);
  Status StoreFacts(RegionReply* reply);
  Status Deliveries(const std::string& extension, RegionReply* reply);
  Status Volumes(RegionReply* reply);
  Status SnapshotFacts(const RegionRequest& request, RegionReply* reply);
  Status Present(const RegionRequest& request, RegionReply* reply);
  Status Blocks(const std::string& extension, const RegionRequest& request, RegionReply* reply);
  Status Lsis(const std::string& extension, RegionReply* reply);
  Status Lsi(const std::string& extension, uint64_t lsi, RegionReply* reply);
  Status Manifest(const std::string& extension, const RegionRequest& request, RegionReply* reply);
  Status Layer(const std::string& extension, const RegionRequest& request, RegionReply* reply);
  Status Assemblies(const std::string& extension, RegionReply* reply);
  Status CancelAssembly(const std::string& extension, uint64_t id, RegionReply* reply);
  Status Successors(const std::string& extension, const std::string& volume, RegionReply* reply);
  Status Upload(const std::string& extension, const RegionRequest& request, RegionReply* reply);

  // The latest snapshot of `volume` when `id` is 0.
  Status ResolveSnapshot(const std::string& volume, uint64_t id, uint64_t* out) const;
  // An opened snapshot (its map in memory), kept for the next requests.
  Status OpenSnapshot(const std::string& volume, uint64_t id, std::shared_ptr<OriginSnapshot>* out);
  // The key the extension's blocks are sealed with (kept a few seconds, so
  // that a rotated or deleted key takes effect soon).
  Status TransportKey(const std::string& extension, std::shared_ptr<const SecretKey>* out);

  const ServiceEnv& env_;
  SuccessorCache& successors_;
  LocalOrigin origin_;

  static constexpr size_t kOpenSnapshots = 16;
  std::mutex snapshots_mu_;
  std::list<std::pair<std::pair<std::string, uint64_t>, std::shared_ptr<OriginSnapshot>>>
      snapshots_;  // most recently used first

  struct CachedKey {
    std::shared_ptr<const SecretKey> key;
    std::chrono::steady_clock::time_point loaded;
  };
  std::mutex keys_mu_;
  std::map<std::string, CachedKey> keys_;
};

}  // namespace lsifs
