// The image read path: an LSI seen as a flat, read-only image of its volume.
// Each block comes from the topmost delta layer that holds it (decrypted),
// else it is a zero block, else it is fetched from the base snapshot through
// the origin. Concurrent reads of one missing block fetch it once, and every
// block fetched from the base is kept (sealed under a key that lives only in
// memory) in a local spill file, so that no block crosses the WAN twice.
// Read() allocates nothing and takes no global lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/access/recorder.h"
#include "core/crypto/keyfile.h"
#include "core/image/block_cache.h"
#include "core/image/counters.h"
#include "core/lsi/layer.h"
#include "core/lsi/manifest.h"
#include "core/origin/origin.h"
#include "core/store/store.h"
#include "core/util/file.h"
#include "core/util/status.h"

namespace lsifs {

struct ImageOptions {
  uint64_t cache_bytes = 64ull << 20;  // decrypted-block cache
  // Called with one line for every failure worth an operator's attention
  // (block failing authentication, missing layer...). Must be thread-safe.
  std::function<void(const std::string&)> log;
};

class LsiImage {
 public:
  // Opens the LSI of `manifest` (authenticated with `key`: as a catalog pin
  // reads it) for the extension owning `key`. Layers that cannot be opened
  // are logged and only their blocks fail to read.
  static Status Open(const Store& store, Manifest manifest, const KeyInfo& key_info,
                     const SecretKey& key, Origin& origin, const ImageOptions& options,
                     std::unique_ptr<LsiImage>* out);
  ~LsiImage();

  const Manifest& manifest() const { return manifest_; }
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
  int session_handle() const { return session_handle_.load(std::memory_order_relaxed); }

 private:
  struct DeltaEntry {
    uint64_t block;
    uint32_t layer;  // index into layers_
    uint64_t slot;
  };
  enum BaseState : uint8_t { kAbsent = 0, kFetching = 1, kLocal = 2 };
  struct Scratch;

  LsiImage(const ImageOptions& options, Manifest manifest);
  const DeltaEntry* FindDelta(uint64_t block) const;
  // Index of `block` among the base's present blocks, or -1.
  int64_t PresentIndex(uint64_t block) const;
  Status ReadDelta(const DeltaEntry& e, Scratch& s, uint8_t* block_out);
  Status ReadLocalBase(uint64_t block, uint64_t index, Scratch& s, uint8_t* block_out);
  // Makes every listed base block local (fetching those nobody is fetching,
  // waiting for the others). Sets *stalled when the caller had to wait.
  Status EnsureLocal(const uint64_t* blocks, const uint64_t* indexes, size_t n, Scratch& s,
                     bool* stalled);
  void Log(const std::string& line) const;

  ImageOptions options_;
  Manifest manifest_;
  uint32_t block_size_;
  uint64_t block_count_;

  std::vector<std::unique_ptr<LayerReader>> layers_;  // null: unavailable
  std::vector<DeltaEntry> delta_;                     // sorted by block, topmost layer only

  std::unique_ptr<OriginSnapshot> base_;
  std::unique_ptr<std::atomic<uint8_t>[]> base_state_;  // per present block
  File spill_;
  SecretKey spill_key_;

  BlockCache cache_;
  Counters lsi_counters_;
  Counters session_counters_;
  std::atomic<AccessRecorder*> recorder_{nullptr};
  std::atomic<int> session_handle_{-1};
};

}  // namespace lsifs
