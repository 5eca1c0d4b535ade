// Origin snapshots: immutable point-in-time copies of a volume, held in the
// store, every block sealed with a key derived from the provider key and
// bound to (volume, snapshot that stored it, block number). A snapshot is two
// files (formats in man/lsi.5):
//
//   ID.snap  header, block map (one entry per present block, ascending),
//            trailer with two HMACs: one over the entries, one over the
//            header and the trailer, so the facts can be listed cheaply and
//            the map verified whole before use;
//   ID.data  the blocks this snapshot stored; a block unchanged since the
//            parent snapshot is not stored again, its entry points to the
//            parent's (or an earlier) data file.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/crypto/aead.h"
#include "core/store/store.h"
#include "core/util/encoding.h"
#include "core/util/file.h"
#include "core/util/status.h"

namespace lsifs {

inline constexpr size_t kDigestSize = 16;
using BlockDigest = std::array<uint8_t, kDigestSize>;

struct SnapshotInfo {
  std::string volume;
  uint64_t id = 0;
  uint64_t parent = 0;  // 0: the volume's first snapshot
  uint64_t size = 0;    // volume size in bytes
  uint32_t block_size = 0;
  int64_t created_us = 0;  // creation time, unix microseconds (orders snapshots)
  uint64_t present_blocks = 0;
  uint64_t stored_blocks = 0;  // blocks held in this snapshot's own data file

  uint64_t block_count() const { return (size + block_size - 1) / block_size; }
};

// Where a present block's sealed record lives.
struct BlockLocation {
  uint64_t block = 0;
  uint64_t source = 0;   // the snapshot whose data file holds it
  uint64_t slot = 0;     // record index in that data file
  BlockDigest digest{};  // keyed digest of the plaintext, to find unchanged blocks
};

// Keys derived from the provider key; one object per process is enough.
struct OriginKeys {
  SecretKey block;   // seals blocks
  SecretKey map;     // authenticates snapshot files
  SecretKey digest;  // keys block digests
  static OriginKeys Derive(const SecretKey& provider);
};

// The data file: a fixed header, then sealed records of block_size bytes.
Bytes EncodeDataHeader(uint32_t block_size, uint64_t snapshot);
uint64_t DataRecordOffset(uint32_t block_size, uint64_t slot);

// The associated data that binds an origin block record.
size_t OriginBlockAad(const std::string& volume, uint64_t snapshot, uint64_t block,
                      std::array<uint8_t, 128>* aad);

// Reads a snapshot's facts from its header and trailer (authenticated, but
// without reading the map).
Status ReadSnapshotInfo(const std::string& path, const OriginKeys& keys, SnapshotInfo* info);

// Snapshots of one volume (or of all when `volume` is empty), oldest first.
// A snapshot file that cannot be read fails the listing, unless `damaged`
// is given: then it is left out and described there ("PATH: reason"), so
// that one bad file does not hide every good one.
Status ListSnapshots(const Store& store, const OriginKeys& keys, const std::string& volume,
                     std::vector<SnapshotInfo>* out, std::vector<std::string>* damaged = nullptr);

// Streams a snapshot's map; the entries MAC is checked when the last entry
// has been read (Next returns false then; check status()).
class SnapshotMapReader {
 public:
  Status Open(const std::string& path, const OriginKeys& keys);
  const SnapshotInfo& info() const { return info_; }
  bool Next(BlockLocation* loc);
  const Status& status() const { return status_; }

 private:
  Status Refill();

  File file_;
  SnapshotInfo info_;
  std::unique_ptr<Mac> mac_;
  std::array<uint8_t, kMacSize> expected_mac_{};
  uint64_t next_offset_ = 0;
  uint64_t entries_left_ = 0;
  uint64_t last_block_ = 0;
  Bytes buf_;
  size_t buf_pos_ = 0;
  Status status_;
};

// Writes a snapshot's map, entries in ascending block order.
class SnapshotMapWriter {
 public:
  Status Open(const Store& store, const OriginKeys& keys, const SnapshotInfo& info);
  Status Add(const BlockLocation& loc);
  // `stored_blocks` goes into the trailer; the file is renamed into place.
  Status Commit(uint64_t stored_blocks);

 private:
  Status Flush();

  const OriginKeys* keys_ = nullptr;
  SnapshotInfo info_;
  AtomicFileWriter out_;
  Bytes header_;
  std::unique_ptr<Mac> mac_;
  Bytes buf_;
  uint64_t count_ = 0;
};

// The in-process origin's view of one snapshot: its whole map in memory
// (O(present blocks)) and its data files open. Thread-safe for reads.
class SnapshotBlocks {
 public:
  static Status Open(const Store& store, const OriginKeys& keys, const std::string& volume,
                     uint64_t id, std::unique_ptr<SnapshotBlocks>* out);

  const SnapshotInfo& info() const { return info_; }
  const std::vector<BlockLocation>& map() const { return map_; }
  // Null when the block is absent (reads as zeros).
  const BlockLocation* Find(uint64_t block) const;
  // Reads and opens one present block into `out` (block_size bytes), using
  // `record` (block_size + kSealOverhead bytes) as scratch.
  Status ReadBlock(const BlockLocation& loc, Aead& aead, MutableByteSpan record,
                   MutableByteSpan out) const;

 private:
  const OriginKeys* keys_ = nullptr;
  SnapshotInfo info_;
  std::vector<BlockLocation> map_;
  std::vector<std::pair<uint64_t, File>> data_files_;  // by source snapshot id
};

struct SnapshotDeletion {
  uint64_t freed = 0;        // bytes removed
  bool data_kept = false;    // its data file stays: later snapshots use it
  std::string kept_because;  // why, when kept
};

// Deletes snapshot `id` of `volume`, its map damaged or not: the map goes
// (from then on the snapshot does not exist), then its data file, unless a
// later snapshot of the volume points into it or a map of the volume cannot
// be read (it might): those blocks stay, marked kept (Store::
// snapshot_kept_path). What stands on the snapshot (LSIs) is the caller's
// to check first.
Status DeleteSnapshot(const Store& store, const OriginKeys& keys, const std::string& volume,
                      uint64_t id, SnapshotDeletion* out);

struct VolumeDeletion {
  uint32_t snapshots = 0;  // deleted
  uint64_t freed = 0;      // bytes removed
};

// Deletes every snapshot of `volume`, newest first and each whole (as
// DeleteSnapshot: a crash midway leaves a volume with fewer snapshots), then
// its folder. NotFound when the store has no such volume. What stands on
// its snapshots (LSIs) is the caller's to check first.
Status DeleteVolume(const Store& store, const OriginKeys& keys, const std::string& volume,
                    VolumeDeletion* out);

}  // namespace lsifs
