// LSI manifests: what an extension mounts. A manifest names the extension
// and key it was made for, the base snapshot it stands on, and its delta
// layers bottom to top; it is authenticated with a key derived from the
// extension key (format in man/lsi.5).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/crypto/aead.h"
#include "core/crypto/keyfile.h"
#include "core/store/store.h"
#include "core/util/status.h"

namespace lsifs {

struct ManifestLayer {
  uint64_t layer_id = 0;
  // The layer's blocks, ascending. Kept here (as well as in the layer's own
  // sealed index) so that a missing layer file fails only the reads of its
  // own blocks, and a swapped layer file is caught at open.
  std::vector<uint64_t> blocks;
};

struct Manifest {
  uint64_t lsi_id = 0;
  std::string extension;
  uint64_t key_id = 0;
  std::string volume;
  uint64_t snapshot = 0;
  uint64_t volume_size = 0;
  uint32_t block_size = 0;
  int64_t created = 0;  // unix seconds
  int64_t expires = 0;  // unix seconds; 0: never
  // How its blocks were chosen ("full", "none", "predicted"...), and the
  // number of sessions in the extension's learned model of the volume when
  // they were: a later session makes the LSI stale (see core/catalog).
  std::string strategy;
  uint32_t model_sessions = 0;
  uint8_t priority = 1;  // of the assembly that made it: 0 high, 1 normal, 2 low
  std::vector<ManifestLayer> layers;  // bottom to top

  uint64_t delta_blocks() const;
  bool operator==(const Manifest&) const = default;
};

inline bool operator==(const ManifestLayer& a, const ManifestLayer& b) {
  return a.layer_id == b.layer_id && a.blocks == b.blocks;
}


// Writes `manifest` (its extension and key_id taken from `key_info`) to
// `path` through a temporary in `tmp_dir`.
Status WriteManifest(const std::string& tmp_dir, const std::string& path, Manifest manifest,
                     const KeyInfo& key_info, const SecretKey& extension_key);
// Reads and authenticates a manifest. Permission, naming both keys, when it
// was made for another extension or key.
Status ReadManifest(const std::string& path, const KeyInfo& key_info,
                    const SecretKey& extension_key, Manifest* manifest);
// The same for a manifest's bytes already read (`path` names it in errors).
Status DecodeManifest(const std::string& path, const std::string& data, const KeyInfo& key_info,
                      const SecretKey& extension_key, Manifest* manifest);
// The largest manifest file accepted.
inline constexpr size_t kMaxManifestSize = size_t{1} << 30;
// Reads a manifest's fields without authenticating them (for listings that
// span extensions); never use the result to read data.
Status PeekManifest(const std::string& path, Manifest* manifest);

}  // namespace lsifs
