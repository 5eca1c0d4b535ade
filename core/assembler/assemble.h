// Assembly of LSIs and the catalog of those delivered. An LSI is assembled
// by fetching blocks of its base snapshot through the origin, sealing them
// into delta layers for one extension, and writing the manifest last: the
// manifest in STORE/lsi/ is the catalog entry, so an LSI exists whole or not
// at all. (The predictor that chooses the blocks comes with the PSA.)
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/crypto/keyfile.h"
#include "core/lsi/manifest.h"
#include "core/origin/origin.h"
#include "core/store/store.h"
#include "core/util/status.h"

namespace lsifs {

// Every LSI in the catalog (fields unauthenticated: for listings), oldest
// first. Files that cannot be parsed are reported in `problems`, not fatal.
Status ListLsis(const Store& store, std::vector<Manifest>* out,
                std::vector<std::string>* problems = nullptr);

struct AssembleOptions {
  int64_t expires = 0;           // unix seconds; 0: never
  size_t blocks_per_fetch = 64;  // origin request size
  // Called after each origin request with blocks done and blocks in all.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

// Assembles an LSI of `base` for the extension: one delta layer per entry of
// `layers`, bottom first, each holding those blocks in that order (absent
// blocks are refused: they read as zeros without a layer).
Status AssembleLsi(const Store& store, OriginSnapshot& base, const KeyInfo& key_info,
                   const SecretKey& key, const std::vector<std::vector<uint64_t>>& layers,
                   const AssembleOptions& options, Manifest* out);

// Pre-assembles an LSI of the latest snapshot of `volume` by a fixed
// strategy: "full" puts every present block in one delta layer (the full-copy
// baseline); "none" makes a base-only LSI. (The predictor's strategy comes
// with the PSA.) The LSI is written to the catalog; it is not a restore.
Status PreassembleFixed(const Store& store, Origin& origin, const OriginKeys& keys,
                        const KeyInfo& key_info, const SecretKey& key, const std::string& volume,
                        const std::string& strategy, const AssembleOptions& options, Manifest* out);

// Removes an LSI: the catalog entry first, then its layers.
Status DropLsi(const Store& store, uint64_t lsi_id);

// The restore workflow: a fresh LSI of (extension, volume, snapshot) from the
// catalog if there is one (`*reused` = true), else a new one. `snapshot` 0
// means the volume's latest. Until the PSA lands, new LSIs are base-only.
Status Restore(const Store& store, Origin& origin, const OriginKeys& keys, const KeyInfo& key_info,
               const SecretKey& key, const std::string& volume, uint64_t snapshot, Manifest* out,
               bool* reused);

}  // namespace lsifs
