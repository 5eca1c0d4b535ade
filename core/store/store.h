// A store: the folder that holds one origin (snapshots, provider key), the
// extension keys, the LSIs (manifests and delta layers) and the co-access
// LevelDB. Layout (see man/lsi.5):
//
//   STORE/config                  text: format, store id, block size, creation time
//   STORE/provider.key            the provider key (0600)
//   STORE/keys/EXT.key            one key per extension (0600)
//   STORE/snapshots/VOLUME/ID.snap  snapshot metadata and block map
//   STORE/snapshots/VOLUME/ID.data  the blocks stored by that snapshot
//   STORE/layers/ID.layer         delta layers
//   STORE/lsi/ID.lsi              LSI manifests
//   STORE/db/                     LevelDB: access logs and statistics
//   STORE/tmp/                    files being written; swept at open
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/crypto/aead.h"
#include "core/crypto/keyfile.h"
#include "core/util/status.h"

namespace lsifs {

inline constexpr uint32_t kMinBlockSize = 4096;
inline constexpr uint32_t kMaxBlockSize = 1u << 20;
inline constexpr uint32_t kDefaultBlockSize = 64 * 1024;

struct StoreConfig {
  uint64_t store_id = 0;
  uint32_t block_size = kDefaultBlockSize;
  int64_t created = 0;  // unix seconds
};

class Store {
 public:
  // Creates a new store at `root` (which must not exist, or be an empty
  // directory). The store appears whole or not at all.
  static Status Init(const std::string& root, uint32_t block_size, StoreConfig* config);
  // Opens an existing store and sweeps temporaries left by dead processes.
  static Status Open(const std::string& root, std::unique_ptr<Store>* store);

  const std::string& root() const { return root_; }
  const StoreConfig& config() const { return config_; }
  uint32_t block_size() const { return config_.block_size; }

  std::string tmp_dir() const { return root_ + "/tmp"; }
  std::string db_dir() const { return root_ + "/db"; }
  std::string snapshots_dir() const { return root_ + "/snapshots"; }
  std::string volume_dir(const std::string& volume) const { return snapshots_dir() + "/" + volume; }
  std::string layers_dir() const { return root_ + "/layers"; }
  std::string lsi_dir() const { return root_ + "/lsi"; }
  std::string provider_key_path() const { return root_ + "/provider.key"; }

  Status LoadProviderKey(SecretKey* key) const;
  const Keyring& keyring() const { return keyring_; }

  // Removes files in tmp/ whose writing process is gone. Returns how many.
  int SweepTemporaries() const;

 private:
  Store(std::string root, StoreConfig config);

  std::string root_;
  StoreConfig config_;
  Keyring keyring_;
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
