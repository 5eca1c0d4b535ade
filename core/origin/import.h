// Snapshot import: streams a raw image (file or block device) into a new
// snapshot of a volume with bounded memory. Zero blocks are not stored;
// blocks unchanged since the volume's latest snapshot are referenced, not
// stored again; every other block is sealed with the origin block key.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "core/origin/snapshot.h"
#include "core/store/store.h"
#include "core/util/status.h"

namespace lsifs {

struct ImportOptions {
  // Called after each batch with bytes scanned so far and the image size.
  std::function<void(uint64_t done, uint64_t total)> progress;
  int threads = 0;  // 0: one per core
  // An image whose size differs from the volume's latest snapshot changes
  // the volume's size: refused unless this is set (lsictl import --resize).
  bool resize = false;
  // Set (by a signal handler) to stop: the import then fails with
  // Cancelled and leaves nothing behind.
  const std::atomic<bool>* cancel = nullptr;
};

struct ImportResult {
  SnapshotInfo snapshot;
  uint64_t new_blocks = 0;     // sealed and stored by this import
  uint64_t reused_blocks = 0;  // unchanged since the parent, referenced
  uint64_t zero_blocks = 0;    // not stored
  uint64_t bytes_stored = 0;   // size of the new data file
  double seconds = 0;
};

Status ImportImage(const Store& store, const OriginKeys& keys, const std::string& volume,
                   const std::string& image_path, const ImportOptions& options,
                   ImportResult* result);

}  // namespace lsifs
