// A store: the folder that holds one origin (snapshots, provider key), the
// extension keys, the LSIs (manifests and delta layers), the catalog of
// deliveries and the co-access LevelDB. This header is the one place that
// names paths inside a store (as LevelDB's filename.h); no other code builds
// one by hand. Layout (see man/lsi.5):
//
//   STORE/config                    text: format, store id, block size, caps
//   STORE/provider.key              the provider key (0600)
//   STORE/keys/EXT.key              one key per extension (0600)
//   STORE/snapshots/VOLUME/ID.snap  snapshot metadata and block map
//   STORE/snapshots/VOLUME/ID.data  the blocks stored by that snapshot
//   STORE/snapshots/VOLUME/ID.kept  its data file outlives its deleted map
//   STORE/snapshots/VOLUME/ID.site  at a site: the snapshot's facts as the
//                                   region told them (region/client.h)
//   STORE/layers/ID.layer           delta layers
//   STORE/lsi/ID.lsi                LSI manifests (an LSI exists iff this does)
//   STORE/lsi/ID.dropped            a drop in progress (waits for the last user)
//   STORE/catalog/EXT.deliveries    what was delivered to EXT (authenticated)
//   STORE/catalog/EXT.lock          serializes changes to EXT's deliveries
//   STORE/run/ID.EXT.counters.json  read counters saved by a running lsifs
//   STORE/control.sock              the running lsifs's control socket
//   STORE/db/                       LevelDB: access logs and statistics
//   STORE/ca/                       the two-site form's certificates (region/certs.h)
//   STORE/tmp/                      files being written; swept at open
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/crypto/aead.h"
#include "core/crypto/keyfile.h"
#include "core/util/file.h"
#include "core/util/status.h"

namespace lsifs {

inline constexpr uint32_t kMinBlockSize = 4096;
inline constexpr uint32_t kMaxBlockSize = 1u << 20;
inline constexpr uint32_t kDefaultBlockSize = 64 * 1024;

struct StoreConfig {
  uint64_t store_id = 0;
  uint32_t block_size = kDefaultBlockSize;
  int64_t created = 0;  // unix seconds
  // Eviction (see core/catalog): LSIs may take at most `lsi_cap` bytes, and
  // are evicted while the store's filesystem has less than `free_floor`
  // bytes free. 0 in a new store's template: chosen from the disk at init.
  uint64_t lsi_cap = 0;
  uint64_t free_floor = 0;
};

// The kinds of files a store's folders hold, recognised by name.
enum class StoreFile { kManifest, kTombstone, kLayer, kDeliveries, kClaim, kEvicted };

class Store {
 public:
  // Creates a new store at `root` (which must not exist, or be an empty
  // directory) with `config`'s block size and caps (0: chosen from the size
  // of the disk). The store appears whole or not at all; `*config` receives
  // what was written.
  static Status Init(const std::string& root, StoreConfig* config);
  // Creates a site's replica of a region's store (the two-site form,
  // core/site): the region's store id and block size, the same layout, and
  // no provider key: a site never holds one.
  static Status InitSite(const std::string& root, const StoreConfig& region);
  // Opens an existing store and sweeps temporaries left by dead processes.
  static Status Open(const std::string& root, std::unique_ptr<Store>* store);

  const std::string& root() const { return root_; }
  const StoreConfig& config() const { return config_; }
  uint32_t block_size() const { return config_.block_size; }

  // Changes the caps in the config file (atomically); the block size and
  // store id never change.
  Status UpdateCaps(uint64_t lsi_cap, uint64_t free_floor);
  // The caps as the config file says now (another process may have changed
  // them since this store was opened); the ones read at open on error.
  void CurrentCaps(uint64_t* lsi_cap, uint64_t* free_floor) const;

  std::string config_path() const { return root_ + "/config"; }
  std::string tmp_dir() const { return root_ + "/tmp"; }
  std::string db_dir() const { return root_ + "/db"; }
  std::string snapshots_dir() const { return root_ + "/snapshots"; }
  std::string volume_dir(const std::string& volume) const { return snapshots_dir() + "/" + volume; }
  std::string snapshot_map_path(const std::string& volume, uint64_t id) const;
  std::string snapshot_data_path(const std::string& volume, uint64_t id) const;
  // Marks the data file of a deleted snapshot that later snapshots still
  // use: kept on purpose, not left by a crash (see Catalog::Sweep).
  std::string snapshot_kept_path(const std::string& volume, uint64_t id) const;
  // At a site: a snapshot's facts and present blocks as the region told
  // them, so that images open while the region is unreachable.
  std::string site_snapshot_path(const std::string& volume, uint64_t id) const;
  // At a site: an LSI its byte cap evicted, and when it had last been
  // delivered; it is pulled again only once delivered again.
  std::string site_evicted_path(uint64_t lsi_id) const;
  std::string keys_dir() const { return root_ + "/keys"; }
  std::string provider_key_path() const { return root_ + "/provider.key"; }
  std::string layers_dir() const { return root_ + "/layers"; }
  std::string layer_path(uint64_t layer_id) const;
  std::string lsi_dir() const { return root_ + "/lsi"; }
  std::string manifest_path(uint64_t lsi_id) const;
  std::string tombstone_path(uint64_t lsi_id) const;
  std::string catalog_dir() const { return root_ + "/catalog"; }
  std::string deliveries_path(const std::string& extension) const;
  std::string deliveries_lock_path(const std::string& extension) const;
  std::string run_dir() const { return root_ + "/run"; }
  std::string counters_path(uint64_t lsi_id, const std::string& extension) const;
  std::string control_socket_path() const { return root_ + "/control.sock"; }
  // The certificate authority of the two-site form (core/region/certs.h).
  std::string ca_dir() const { return root_ + "/ca"; }
  std::string ca_key_path() const { return ca_dir() + "/ca.key"; }
  std::string ca_cert_path() const { return ca_dir() + "/ca.crt"; }
  std::string server_key_path() const { return ca_dir() + "/server.key"; }
  std::string server_cert_path() const { return ca_dir() + "/server.crt"; }
  std::string crl_path() const { return ca_dir() + "/crl.pem"; }
  // A site's TLS material, in SITE_DIR/tls (where lsictl cert issue EXT
  // --out SITE_DIR/tls puts it); named before the site folder is one.
  struct SiteTls {
    std::string cert, key, ca;
  };
  static SiteTls SiteTlsPaths(const std::string& site_dir, const std::string& extension);
  // The extensions with a certificate in SITE_DIR/tls.
  static std::vector<std::string> SiteTlsExtensions(const std::string& site_dir);
  std::string issued_path() const { return ca_dir() + "/issued"; }
  // Held (flock) by whatever changes the files of ca/.
  std::string ca_lock_path() const { return ca_dir() + "/lock"; }
  // The base blocks mounts of an LSI fetched, sealed under a key derived
  // from its extension's key: they survive a restart, and go with the LSI.
  std::string spill_path(uint64_t lsi_id, const std::string& extension) const;
  // A claim in tmp/ by this process (its pid in the name, so that it is swept
  // with the process's other temporaries), numbered `n`.
  std::string claim_path(uint64_t n) const;

  // Recognises a file name of lsi/, layers/, catalog/ or tmp/: its kind and
  // the id (LSI, layer, claim's pid) or extension name it carries.
  static bool ParseFileName(const std::string& name, StoreFile* kind, uint64_t* id,
                            std::string* extension = nullptr);
  // The ids of the manifests, tombstones or layers there are, sorted.
  std::vector<uint64_t> ListIds(StoreFile kind) const;

  Status LoadProviderKey(SecretKey* key) const;
  const Keyring& keyring() const { return keyring_; }

  // Removes files in tmp/ whose writing process is gone. Returns how many.
  int SweepTemporaries() const;

 private:
  Store(std::string root, StoreConfig config);
  static Status Create(const std::string& root, StoreConfig* config, bool site);

  std::string root_;
  StoreConfig config_;
  Keyring keyring_;
};

// Ids of files this process is writing (layers, snapshot data files), listed
// in a claim file in tmp/ so that a sweep running meanwhile never takes them
// for what a crash left. The claim goes when this is destroyed, or with the
// process.
class Claim {
 public:
  static Status Begin(const Store& store, std::unique_ptr<Claim>* out);
  ~Claim();
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;

  // Claims `id` before its file is created.
  Status Add(uint64_t id);

  // Every id a live process claims. False when some claim could not be
  // read: then no file may be swept as unclaimed.
  static bool LiveIds(const Store& store, std::set<uint64_t>* ids);

 private:
  Claim() = default;
  std::string path_;
  File file_;
};

// Powers of two from 4 KiB to 1 MiB.
inline bool IsValidBlockSize(uint64_t n) {
  return n >= kMinBlockSize && n <= kMaxBlockSize && (n & (n - 1)) == 0;
}

// Accepts "65536", "64K", "64KiB", "1M"...; block sizes must be powers of two
// from 4 KiB to 1 MiB.
Status ParseBlockSize(const std::string& text, uint32_t* block_size);
// Parses "10G", "512MiB", "4096" into bytes.
Status ParseByteSize(const std::string& text, uint64_t* bytes);

}  // namespace lsifs
