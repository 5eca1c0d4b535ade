// The Predictive Snapshot Assembler and the restore workflow.
//
// PreAssembleSnapshot(extension, volume, priority) follows DESIGN.md's
// steps: a fresh assembled LSI in the catalog is returned as is; otherwise
// the base snapshot's map is read, the predictor ranks its blocks from what
// was learned, the planned blocks are gathered (re-sealed from the
// extension's own earlier layers where the origin's keyed digests show them
// unchanged, fetched over the origin link otherwise), sealed into a delta
// layer under a fresh data key wrapped by the extension key, and the LSI is
// published as assembled with the TTL the catalog computes. Restore
// delivers a fresh LSI, assembling one at high priority when there is none.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/catalog/catalog.h"
#include "core/crypto/keyfile.h"
#include "core/lsi/manifest.h"
#include "core/origin/origin.h"
#include "core/predictor/predictor.h"
#include "core/store/store.h"
#include "core/util/status.h"

namespace lsifs {

// Assemblies run by priority (DESIGN.md: demand reads first, then high,
// normal, low); recorded in the manifest.
enum class Priority : uint8_t { kHigh = 0, kNormal = 1, kLow = 2 };
const char* PriorityName(Priority priority);
Status ParsePriority(const std::string& text, Priority* out);

// Reads a block's plaintext without the origin link; false when it cannot.
using LocalSource = std::function<bool(uint64_t block, uint8_t* out)>;

struct AssembleOptions {
  std::string strategy;         // how the blocks were chosen (kept in the manifest)
  uint32_t model_sessions = 0;  // sessions in the model they were chosen from
  Priority priority = Priority::kNormal;
  int64_t ttl = 0;              // seconds until it expires; 0: never
  size_t blocks_per_fetch = 0;  // origin request size; 0: kAssemblyRequestBytes' worth
  size_t fetch_window = 2;      // requests in flight (OriginLink::Window)
  LocalSource local;            // tried first for every block
  // Checked between batches: set, the assembly stops and leaves nothing.
  const std::atomic<bool>* cancel = nullptr;
  // Called after each batch with blocks done and blocks in all.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct AssembleStats {
  uint64_t fetched_blocks = 0;  // over the origin link
  uint64_t local_blocks = 0;    // re-sealed from local copies
  uint64_t origin_requests = 0;
};

// Assembles an LSI of `base` for the extension: one delta layer per entry of
// `layers`, bottom first, each holding those blocks in that order (absent
// blocks are refused: they read as zeros without a layer).
Status AssembleLsi(const Catalog& catalog, OriginSnapshot& base, const KeyInfo& key_info,
                   const SecretKey& key, const std::vector<std::vector<uint64_t>>& layers,
                   const AssembleOptions& options, Manifest* out, AssembleStats* stats = nullptr);

// What was learned of (extension, volume): the predictor's input.
struct LearnedModels {
  ModelView own;  // the extension's
  ModelView all;  // every extension's, volume-wide
  CoAccessParams params;
  // The blocks the extension's last recorded session read, in first-access
  // order (for the "replay" baseline).
  std::vector<uint64_t> last_session;
};

struct PreassembleRequest {
  std::string volume;
  uint64_t snapshot = 0;  // 0: the volume's latest
  // Or the baselines: "full" (every present block), "none" (base-only),
  // "replay" (exactly what the last session read, in its order).
  std::string strategy = kPredictedStrategy;
  Priority priority = Priority::kNormal;
  uint64_t budget_bytes = 0;                  // 0: the predictor's default from history
  const std::atomic<bool>* cancel = nullptr;  // see AssembleOptions
  size_t fetch_window = 2;                    // see AssembleOptions
  uint64_t request_bytes = 0;                 // per origin request; 0: kAssemblyRequestBytes
};

struct PreassembleResult {
  Manifest manifest;
  bool reused = false;  // a fresh LSI from the catalog, returned as is
  Plan plan;            // what the predictor chose (strategy "predicted")
  AssembleStats stats;
};

// `progress` receives bytes sealed so far and in all.
Status PreAssembleSnapshot(const Catalog& catalog, Origin& origin, const OriginKeys& keys,
                           const KeyInfo& key_info, const SecretKey& key,
                           const LearnedModels& models, const CatalogContext& context,
                           const PreassembleRequest& request,
                           const std::function<void(uint64_t, uint64_t)>& progress,
                           PreassembleResult* out);

// Assembles, or finds fresh, what a request asks for: PreAssembleSnapshot
// itself, or the assembly queue in front of it.
using AssembleFn = std::function<Status(const PreassembleRequest&, PreassembleResult*)>;

// The restore workflow: the freshest LSI of (extension, volume, snapshot)
// in the catalog, else one assembled now at high priority (by `assemble`);
// then it is delivered (as <volume>.img when `snapshot` is 0, the volume's
// latest).
Status Restore(const Catalog& catalog, const KeyInfo& key_info, const SecretKey& key,
               const std::string& volume, uint64_t snapshot, const AssembleFn& assemble,
               PreassembleResult* out);

}  // namespace lsifs
