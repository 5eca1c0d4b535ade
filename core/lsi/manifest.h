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
#include "core/util/file.h"
#include "core/util/status.h"

namespace lsifs {

struct ManifestLayer {
  uint64_t layer_id = 0;
  // The layer's blocks, ascending. Kept here (as well as in the layer's own
  // sealed index) so that a missing layer file fails only the reads of its
  // own blocks, and a swapped layer file is caught at open. Empty when only
  // the manifest's head was read (PeekManifest, kHead).
  std::vector<uint64_t> blocks;
  // How many blocks the manifest lists for the layer (as its head says).
  uint64_t listed = 0;
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
  uint8_t priority = 1;               // of the assembly that made it: 0 high, 1 normal, 2 low
  std::vector<ManifestLayer> layers;  // bottom to top

  uint64_t delta_blocks() const;
  bool operator==(const Manifest&) const = default;
};

inline bool operator==(const ManifestLayer& a, const ManifestLayer& b) {
  return a.layer_id == b.layer_id && a.blocks == b.blocks;
}

// Writes `manifest` (its extension and key_id taken from `key_info`) to
// `path` through a temporary in `tmp_dir`; an existing manifest is
// replaced only when `replace` is set (a key rotation rekeys it).
Status WriteManifest(const std::string& tmp_dir, const std::string& path, Manifest manifest,
                     const KeyInfo& key_info, const SecretKey& extension_key, bool replace = false);
// Reads and authenticates a manifest: its head (fields and layer table)
// first, which fixes the file's size, then the block lists. Permission,
// naming both keys, when it was made for another extension or key.
Status ReadManifest(const std::string& path, const KeyInfo& key_info,
                    const SecretKey& extension_key, Manifest* manifest);
// The same through a file already open (`path` names it in errors).
Status ReadManifest(const File& file, const std::string& path, const KeyInfo& key_info,
                    const SecretKey& extension_key, Manifest* manifest);

enum class ManifestPart { kHead, kWhole };
// Reads a manifest's fields without authenticating them (for listings that
// span extensions); never use the result to read data. kHead reads only the
// head: the layers' ids and counts (`listed`), not their block lists.
Status PeekManifest(const std::string& path, Manifest* manifest,
                    ManifestPart part = ManifestPart::kHead);

}  // namespace lsifs
