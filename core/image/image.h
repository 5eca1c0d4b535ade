// The image read path: an LSI seen as a flat, read-only image of its volume.
// Each block comes from the topmost delta layer that holds it (decrypted),
// else it is a zero block, else it is fetched from the base snapshot through
// the origin. Concurrent reads of one missing block fetch it once, and every
// block fetched from the base is kept in a local spill file of the LSI,
// sealed under a key derived from the extension key, so that no block
// crosses the WAN twice, across restarts too.
// Read() allocates nothing and takes no global lock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/access/recorder.h"
#include "core/crypto/keyfile.h"
#include "core/image/block_cache.h"
#include "core/image/counters.h"
#include "core/lsi/layer.h"
#include "core/lsi/manifest.h"
#include "core/origin/origin.h"
#include "core/predictor/predictor.h"
#include "core/store/store.h"
#include "core/util/file.h"
#include "core/util/log.h"
#include "core/util/status.h"

namespace lsifs {

// Read-time expansion (DESIGN.md, "Sessions vary"): a demand miss of a
// block also fetches, in the same origin request, its confident co-access
// successors; and when the session reads a block that expansion brought,
// the next levels of its cluster are fetched in the background, in the
// link's expansion class. A cluster whose blocks the session does not read
// is not followed further.
struct ExpansionOptions {
  bool enabled = true;
  size_t per_miss = 8;                     // successors in the demand request, at most
  uint64_t session_budget = 128ull << 20;  // bytes expansion may fetch per session
  size_t ahead = 32;                       // blocks fetched ahead per block read
  // Fetches of the background continuation (the link's expansion class);
  // null: the demand snapshot's own.
  Origin* origin = nullptr;
};
constexpr size_t kMaxExpandPerMiss = 64;

struct ImageOptions {
  // The decrypted-block cache every image of the mount shares (not owned;
  // null: none), so that its cap holds however many images are open.
  BlockCache* cache = nullptr;
  // Where the waits of reads on the origin are counted (not owned; null:
  // nowhere), one for the mount.
  WaitHistogram* origin_waits = nullptr;
  ExpansionOptions expansion;
  // Hydration: fetch every present block not yet local in the background
  // (through `hydrate_origin`, the link's hydration class; null: the
  // demand snapshot's), so that the image becomes fully local.
  bool hydrate = false;
  Origin* hydrate_origin = nullptr;
  // Keep fetched base blocks in the store (Store::spill_path) for the next
  // mount; off: in an unnamed file that goes with the image (benchmarks'
  // baselines, which must start cold).
  bool persist_spill = true;
  // The two-site form: layers are pulled from the region after the LSI is
  // delivered. A layer whose file is not there yet is *pending*: its blocks
  // are read from the base (demand reads, correct bytes) until an image
  // opened after it arrived reads them from it. A layer that is there and
  // fails its checks is damaged as ever: its blocks fail with EIO.
  bool layers_arrive_later = false;
  // Called with one line for every failure worth an operator's attention
  // (block failing authentication, missing layer...). Must be thread-safe.
  std::function<void(const std::string&)> log;
};

class LsiImage {
 public:
  // Opens the LSI of `manifest` (authenticated with one of `keys`, as a
  // catalog pin reads it) for the extension owning `keys`. Each layer is
  // opened with the key it names (a rotation may have rewrapped some and
  // not yet the manifest). Layers that cannot be opened are logged and only
  // their blocks fail to read.
  static Status Open(const Store& store, Manifest manifest, const ExtensionKeys& keys,
                     Origin& origin, const ImageOptions& options, std::unique_ptr<LsiImage>* out);
  ~LsiImage();

  const Manifest& manifest() const { return manifest_; }
  // Layers that were pending when the image was opened.
  uint32_t pending_layers() const { return pending_layers_; }
  uint64_t size() const { return manifest_.volume_size; }
  std::string id() const;

  // Reads up to out.size() bytes at `offset` (short at the end of the
  // image); `*done` receives the count. Corruption (EIO for the caller) when
  // any block of the range cannot be read authentically; nothing of such a
  // block is ever copied out.
  Status Read(uint64_t offset, MutableByteSpan out, size_t* done);

  Counters& lsi_counters() { return lsi_counters_; }
  Counters& session_counters() { return session_counters_; }

  // A restore session: its counters start from zero, and every first access
  // of a block in it goes to `recorder` (which may be null) under `handle`.
  // Call only while no read is in flight (no open handle).
  void StartSession(AccessRecorder* recorder, int handle);
  void EndSession() { StartSession(nullptr, -1); }
  // The successor table expansion follows (null: none); may change while
  // reads run (the model was refreshed).
  void SetSuccessors(std::shared_ptr<const SuccessorTable> table);
  std::shared_ptr<const SuccessorTable> successors() const { return successors_.load(); }
  // Present base blocks held locally (in the spill), and present blocks.
  std::pair<uint64_t, uint64_t> LocalBaseBlocks() const;
  int session_handle() const { return session_handle_.load(std::memory_order_relaxed); }

 private:
  struct DeltaEntry {
    uint64_t block;
    uint32_t layer;  // index into layers_
    uint64_t slot;
  };
  // kLocal: in the spill file; kInMemory: in the memory spill, where fetched
  // blocks go once the spill file cannot be written (disk full, I/O error):
  // a local fault must not fail reads of blocks fetched and authenticated.
  enum BaseState : uint8_t { kAbsent = 0, kFetching = 1, kLocal = 2, kInMemory = 3 };
  static bool IsLocal(uint8_t state) { return state == kLocal || state == kInMemory; }
  struct Scratch;

  LsiImage(const ImageOptions& options, Manifest manifest);
  const DeltaEntry* FindDelta(uint64_t block) const;
  // Index of `block` among the base's present blocks, or -1.
  int64_t PresentIndex(uint64_t block) const;
  Status ReadDelta(const DeltaEntry& e, Scratch& s, uint8_t* block_out);
  // Keeps a fetched block's record in memory once the spill file fails.
  void WriteMemorySpill(uint64_t index, ByteSpan record);
  Status ReadLocalBase(uint64_t block, uint64_t index, Scratch& s, uint8_t* block_out);
  // Makes every listed base block local (fetching those nobody is fetching,
  // waiting for the others). Sets *stalled when the caller had to wait.
  // *late: the caller waited for a block someone else was fetching.
  Status EnsureLocal(const uint64_t* blocks, const uint64_t* indexes, size_t n, Scratch& s,
                     bool* stalled, bool* late);
  // Hands a block whose cluster the session reads to the continuation.
  void Follow(uint64_t block);
  // Claims confident successors of the claimed blocks for the same request.
  void ClaimSuccessors(const SuccessorTable& table, Scratch& s);
  // Claims up to `cap` successors of `block` not yet local; true if any.
  bool Claim(uint64_t block, std::vector<uint64_t>* blocks, std::vector<uint64_t>* indexes,
             size_t cap);
  // Takes `bytes` from the session's expansion budget; false when spent.
  bool TakeBudget(uint64_t bytes);
  // Fetches `blocks` (claimed) into the spill; marks them local, or absent
  // on failure. `expanded`: flags from index `first_expanded` on.
  Status FetchClaimed(OriginSnapshot& from, const uint64_t* blocks, const uint64_t* indexes,
                      size_t n, size_t first_expanded, Scratch& s);
  void NoteExpandedRead(uint64_t block, uint64_t index);
  void ContinuationLoop();
  void HydrationLoop();
  // Spill records are this far apart: a whole number of 4 KiB filesystem
  // blocks each, never sharing one (the file is sparse: no space is lost).
  uint64_t SpillStride() const { return (block_size_ + kSealOverhead + 4095) / 4096 * 4096; }
  Status RefetchBase(uint64_t block, uint64_t index, Scratch& s, uint8_t* out);
  void Log(const std::string& line) const;

  ImageOptions options_;
  // Errors of reads are logged a few a minute at most: a damaged block
  // read in a loop must not flood the log.
  mutable LogLimiter log_limit_{10, std::chrono::seconds(60)};
  Manifest manifest_;
  uint32_t block_size_;
  uint64_t block_count_;

  std::vector<std::unique_ptr<LayerReader>> layers_;  // null: unavailable or pending
  uint32_t pending_layers_ = 0;  // not pulled yet when opened (layers_arrive_later)
  static constexpr uint64_t kPendingSlot = UINT64_MAX - 1;
  std::vector<DeltaEntry> delta_;  // sorted by block, topmost layer only

  std::unique_ptr<OriginSnapshot> base_;
  std::unique_ptr<std::atomic<uint8_t>[]> base_state_;  // per present block
  File spill_;
  SecretKey spill_key_;
  std::atomic<bool> spill_failing_{false};
  // Records of kInMemory blocks, by present index. Touched only once the
  // spill file failed, so its lock and allocations stay off the usual path.
  std::mutex memory_spill_mu_;
  std::unordered_map<uint64_t, Bytes> memory_spill_;

  Counters lsi_counters_;
  Counters session_counters_;
  std::atomic<AccessRecorder*> recorder_{nullptr};
  std::atomic<int> session_handle_{-1};

  // Read-time expansion.
  std::atomic<std::shared_ptr<const SuccessorTable>> successors_;
  std::unique_ptr<std::atomic<uint8_t>[]> expanded_;  // per present block: brought, not yet read
  std::atomic<uint64_t> session_expanded_bytes_{0};
  std::unique_ptr<OriginSnapshot> expansion_base_;  // the continuation's fetches
  // Blocks the session read that expansion brought: their clusters are
  // followed by the continuation thread. A fixed ring; full, a block is
  // not followed.
  static constexpr size_t kFollowRing = 256;
  std::mutex follow_mu_;
  std::condition_variable follow_cv_;
  uint64_t follow_ring_[kFollowRing];
  size_t follow_head_ = 0, follow_size_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread continuation_;
  std::unique_ptr<OriginSnapshot> hydrate_base_;
  std::thread hydration_;
};

}  // namespace lsifs
