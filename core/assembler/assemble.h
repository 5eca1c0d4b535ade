// Assembly of LSIs and the restore workflow. An LSI is assembled by
// fetching blocks of its base snapshot through the origin and sealing them
// into delta layers for one extension; the catalog publishes it (manifest
// last) and delivers it. (The predictor that chooses the blocks comes with
// the PSA; until then the strategies are fixed.)
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/catalog/catalog.h"
#include "core/crypto/keyfile.h"
#include "core/lsi/manifest.h"
#include "core/origin/origin.h"
#include "core/store/store.h"
#include "core/util/status.h"

namespace lsifs {

struct AssembleOptions {
  std::string strategy;          // how the blocks were chosen (kept in the manifest)
  uint32_t model_sessions = 0;   // sessions in the model they were chosen from
  int64_t ttl = 0;               // seconds until it expires; 0: never
  size_t blocks_per_fetch = 64;  // origin request size
  // Called after each origin request with blocks done and blocks in all.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

// Assembles an LSI of `base` for the extension: one delta layer per entry of
// `layers`, bottom first, each holding those blocks in that order (absent
// blocks are refused: they read as zeros without a layer).
Status AssembleLsi(const Catalog& catalog, OriginSnapshot& base, const KeyInfo& key_info,
                   const SecretKey& key, const std::vector<std::vector<uint64_t>>& layers,
                   const AssembleOptions& options, Manifest* out);

// Pre-assembles an LSI of the latest snapshot of `volume` by a fixed
// strategy: "full" puts every present block in one delta layer (the full-copy
// baseline); "none" makes a base-only LSI. (The predictor's strategy comes
// with the PSA.) The LSI is published as assembled, with the TTL the
// catalog computes from the extension's restores; then eviction runs.
Status PreassembleFixed(const Catalog& catalog, Origin& origin, const OriginKeys& keys,
                        const KeyInfo& key_info, const SecretKey& key, const std::string& volume,
                        const std::string& strategy, const CatalogContext& context,
                        AssembleOptions options, Manifest* out);

// The restore workflow: the newest fresh LSI of (extension, volume,
// snapshot) in the catalog if there is one (`*reused` = true), else a new
// one; then it is delivered (as <volume>.img when `snapshot` is 0, the
// volume's latest). Until the PSA lands, new LSIs are base-only.
Status Restore(const Catalog& catalog, Origin& origin, const OriginKeys& keys,
               const KeyInfo& key_info, const SecretKey& key, const std::string& volume,
               uint64_t snapshot, const CatalogContext& context, Manifest* out, bool* reused);

}  // namespace lsifs
