// The region's wire protocol (lsid, DESIGN.md "Where each part runs"):
// HTTP/1.1 over mutually authenticated TLS 1.3, one client certificate per
// extension. Every request is served for the extension its certificate
// names, never for one the request names: no route takes an extension.
//
//   GET  /v1/store                                    JSON: the store's id and block size (what a
//                                                     site's replica of it needs)
//   GET  /v1/deliveries                               this extension's delivery record (bytes, as
//   in
//                                                     the store: authenticated with its key)
//   GET  /v1/volumes                                  JSON: volumes and their snapshots
//   GET  /v1/volumes/VOL/snapshots/ID                 JSON: one snapshot's facts (ID or "latest")
//   GET  /v1/volumes/VOL/snapshots/ID/present         octet-stream: present blocks, u64 LE
//   ascending POST /v1/volumes/VOL/snapshots/ID/blocks          body: block numbers, u64 LE (at
//   most
//                                                     kMaxBatchBlocks, kMaxBatchBytes of blocks);
//                                                     reply: one sealed record per block, in
//                                                     order, under RegionTransportKey with
//                                                     RegionBlockAad
//   POST /v1/restore                                  JSON {"volume", "snapshot"?}: the LSI
//   delivered POST /v1/preassemble                              JSON {"volume", "strategy"?,
//   "priority"?,
//                                                     "budget"?, "explain"?}: the LSI assembled
//   GET  /v1/assemblies                               JSON: this extension's queued assemblies
//   POST /v1/assemblies/ID/cancel
//   GET  /v1/lsis                                     JSON: this extension's LSIs
//   GET  /v1/lsis/ID                                  JSON: one of them
//   GET  /v1/lsis/ID/manifest                         the manifest file (bytes, as in the store)
//   GET  /v1/lsis/ID/layers/LAYER                     a layer file; Range: bytes=A-B honoured
//   GET  /v1/successors/VOL                           JSON: the successor table read-time
//                                                     expansion follows
//   POST /v1/sessions                                 JSON {"key", "volume", "lsi", "snapshot",
//                                                     "reads", "dropped", "events": [[block,
//                                                     t_us], ...]}: a session recorded at the
//                                                     site, learned from once per key
//
// A request may say which link class it travels in (header Lsifs-Class:
// demand, expansion, layer-pull, high, normal, low, hydration); the region
// serves waiting requests in that order within an extension's share.
//
// Errors are JSON {"error": CODE, "message": TEXT} with an HTTP status that
// says whether to try again: 400 bad request, 403 refused, 404 not found
// (also for another extension's LSIs: as if they did not exist), 413 too
// large, 429 over the extension's rate (Retry-After), 503 busy or stopping.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/crypto/aead.h"
#include "core/origin/link.h"
#include "core/predictor/predictor.h"
#include "core/util/status.h"

namespace lsifs {

// Limits on what a request may carry.
inline constexpr size_t kMaxRequestHeaderBytes = 8 * 1024;
inline constexpr size_t kMaxRequestBodyBytes = 64 * 1024;
// A session upload's body, and its first accesses, at most.
inline constexpr size_t kMaxUploadBodyBytes = 16ull << 20;
inline constexpr size_t kMaxUploadEvents = 1u << 20;
// Blocks per batch, at most, and bytes of blocks per reply (checked
// against the snapshot's block size).
inline constexpr size_t kMaxBatchBlocks = 1024;
inline constexpr uint64_t kMaxBatchBytes = 16ull << 20;
// A layer range, at most (a whole layer streams without this limit).
inline constexpr uint64_t kMaxRangeBytes = 16ull << 20;

enum class RegionRoute {
  kStore,
  kDeliveries,
  kVolumes,
  kSnapshot,
  kPresent,
  kBlocks,
  kRestore,
  kPreassemble,
  kAssemblies,
  kAssemblyCancel,
  kLsis,
  kLsi,
  kManifest,
  kLayer,
  kSuccessors,
  kUpload,
};
const char* RegionRouteName(RegionRoute route);

// A byte range of a layer, "bytes=FIRST-LAST" (both inclusive) or
// "bytes=FIRST-" (to the end).
struct ByteRange {
  uint64_t first = 0;
  std::optional<uint64_t> last;  // inclusive; none: to the end
};

// One request, validated: names are valid names, ids are ids, numbers in
// range, bodies within their limits.
struct RegionRequest {
  RegionRoute route = RegionRoute::kVolumes;
  std::string volume;
  uint64_t snapshot = 0;  // 0: the latest
  uint64_t lsi = 0;
  uint64_t layer = 0;
  uint64_t assembly = 0;
  std::vector<uint64_t> blocks;  // kBlocks
  LinkClass link_class = LinkClass::kDemand;
  std::optional<ByteRange> range;  // kLayer
  // kPreassemble (and kRestore's snapshot above).
  std::string strategy;
  std::string priority = "normal";
  uint64_t budget = 0;
  bool explain = false;
  // kUpload: the site's key for the session (sent again, it is taken once),
  // its LSI and snapshot (in `snapshot`), and what it read.
  std::string upload_key;
  uint64_t reads = 0;
  uint64_t dropped = 0;
  std::vector<std::pair<uint64_t, uint64_t>> events;  // block, t_us
};

// The body limit of a request to `target`: uploads carry whole sessions.
size_t BodyLimitOf(std::string_view target);

// Parses method, target and body (and the two headers that matter:
// Lsifs-Class and Range, empty when absent) into a request. InvalidArgument
// with a one-line reason for anything malformed; NotFound for a target that
// names no route.
Status ParseRegionRequest(std::string_view method, std::string_view target, std::string_view body,
                          std::string_view link_class, std::string_view range, RegionRequest* out);

// The body of a blocks request, and of a present reply: u64 LE each.
std::string EncodeBlockList(const std::vector<uint64_t>& blocks);
Status DecodeBlockList(std::string_view bytes, std::vector<uint64_t>* out);

// The body of a successors reply: JSON {"volume", "seeds": [[seed,
// [successor, ...]], ...]}, seeds ascending. Decoding checks the volume and
// the order, and takes at most `max_entries` successors.
std::string EncodeSuccessorTable(std::string_view volume, const SuccessorTable& table);
Status DecodeSuccessorTable(std::string_view body, std::string_view volume, size_t max_entries,
                            SuccessorTable* out);

// The key a region seals blocks with for one extension: derived from the
// extension key, so a site opens them with nothing but its own key.
SecretKey RegionTransportKey(const SecretKey& extension_key);
// The associated data that binds a re-encrypted block to the extension it
// was sealed for, and to its volume, snapshot and block number.
std::string RegionBlockAad(std::string_view extension, std::string_view volume, uint64_t snapshot,
                           uint64_t block);

// The HTTP status of an error, and back (what a client reports).
unsigned HttpStatusOf(const Status& status);
Status StatusOfHttp(unsigned http_status, std::string_view body);

}  // namespace lsifs
