#include "core/origin/import.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>

#include "core/util/hex.h"
#include "core/util/names.h"
#include "core/util/progress.h"
#include "core/util/worker_pool.h"

namespace lsifs {
namespace {

constexpr size_t kBatchBytes = 8u << 20;

bool IsZero(const uint8_t* p, size_t n) {
  // Compare the block with itself shifted by one: zero iff first byte is zero
  // and every byte equals the next; memcmp runs at memory speed.
  return p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0;
}

// Per-worker crypto state, made once per import.
struct WorkerCrypto {
  explicit WorkerCrypto(const SecretKey& digest_key) : digest(digest_key) {}
  Aead aead;
  Mac digest;
};

// Where the next non-hole data starts at or after `offset`; `size` when the
// rest of the file is a hole. Files without SEEK_DATA support read as data.
uint64_t NextData(int fd, uint64_t offset, uint64_t size) {
  off_t r = ::lseek(fd, static_cast<off_t>(offset), SEEK_DATA);
  if (r < 0) return errno == ENXIO ? size : offset;
  return static_cast<uint64_t>(r);
}

class Importer {
 public:
  Importer(const Store& store, const OriginKeys& keys, const ImportOptions& options)
      : store_(store), keys_(keys), options_(options), pool_(options.threads) {
    for (int i = 0; i < pool_.size(); ++i)
      crypto_.push_back(std::make_unique<WorkerCrypto>(keys.digest));
  }

  Status Run(const std::string& volume, const std::string& image_path, ImportResult* result);

 private:
  Status ProcessBatch(uint64_t first_block, size_t count);
  Status NextParentEntryAtLeast(uint64_t block, const BlockLocation** entry);

  const Store& store_;
  const OriginKeys& keys_;
  const ImportOptions& options_;
  WorkerPool pool_;
  std::vector<std::unique_ptr<WorkerCrypto>> crypto_;

  SnapshotInfo info_;
  File image_;
  uint32_t block_size_ = 0;
  size_t record_size_ = 0;

  bool has_parent_ = false;
  SnapshotMapReader parent_;
  BlockLocation parent_entry_;
  bool parent_entry_valid_ = false;
  bool parent_done_ = false;

  AtomicFileWriter data_out_;
  SnapshotMapWriter map_out_;
  uint64_t stored_ = 0;

  // Batch buffers, reused.
  Bytes in_;
  Bytes out_;
  std::vector<uint8_t> zero_;
  std::vector<BlockDigest> digests_;
  std::vector<int64_t> out_slot_;  // -1: no record to write for this block
  ImportResult* result_ = nullptr;
};

Status Importer::NextParentEntryAtLeast(uint64_t block, const BlockLocation** entry) {
  *entry = nullptr;
  if (!has_parent_) return Status::Ok();
  while (!parent_done_ && (!parent_entry_valid_ || parent_entry_.block < block)) {
    parent_entry_valid_ = parent_.Next(&parent_entry_);
    if (!parent_entry_valid_) {
      parent_done_ = true;
      LSIFS_RETURN_IF_ERROR(parent_.status().WithContext("parent snapshot"));
    }
  }
  if (parent_entry_valid_ && parent_entry_.block == block) *entry = &parent_entry_;
  return Status::Ok();
}

Status Importer::ProcessBatch(uint64_t first_block, size_t count) {
  const size_t bs = block_size_;
  uint64_t offset = first_block * bs;
  size_t bytes = static_cast<size_t>(std::min<uint64_t>(count * bs, info_.size - offset));
  LSIFS_RETURN_IF_ERROR(image_.PreadExact(offset, MutableByteSpan(in_.data(), bytes))
                            .WithContext("reading the image"));
  // The last block of an image whose size is not a block multiple is padded.
  std::memset(in_.data() + bytes, 0, count * bs - bytes);

  pool_.Run(count, [&](size_t begin, size_t end, int worker) {
    Mac& mac = crypto_[static_cast<size_t>(worker)]->digest;
    for (size_t i = begin; i < end; ++i) {
      const uint8_t* blk = in_.data() + i * bs;
      zero_[i] = IsZero(blk, bs);
      if (zero_[i]) continue;
      mac.Reset();
      mac.Update(ByteSpan(blk, bs));
      auto full = mac.Final();
      std::memcpy(digests_[i].data(), full.data(), kDigestSize);
    }
  });

  // Decide, in block order, which blocks are new and where their records go.
  size_t new_records = 0;
  for (size_t i = 0; i < count; ++i) {
    out_slot_[i] = -1;
    if (zero_[i]) {
      ++result_->zero_blocks;
      continue;
    }
    uint64_t block = first_block + i;
    const BlockLocation* parent = nullptr;
    LSIFS_RETURN_IF_ERROR(NextParentEntryAtLeast(block, &parent));
    BlockLocation loc;
    loc.block = block;
    loc.digest = digests_[i];
    if (parent != nullptr && EqualConstantTime(parent->digest, digests_[i])) {
      loc.source = parent->source;
      loc.slot = parent->slot;
      ++result_->reused_blocks;
    } else {
      loc.source = info_.id;
      loc.slot = stored_++;
      out_slot_[i] = static_cast<int64_t>(new_records++);
      ++result_->new_blocks;
    }
    LSIFS_RETURN_IF_ERROR(map_out_.Add(loc));
  }

  pool_.Run(count, [&](size_t begin, size_t end, int worker) {
    Aead& aead = crypto_[static_cast<size_t>(worker)]->aead;
    std::array<uint8_t, 128> aad;
    for (size_t i = begin; i < end; ++i) {
      if (out_slot_[i] < 0) continue;
      size_t aad_len = OriginBlockAad(info_.volume, info_.id, first_block + i, &aad);
      MutableByteSpan record(out_.data() + static_cast<size_t>(out_slot_[i]) * record_size_,
                             record_size_);
      // Seal cannot fail on buffers sized here.
      (void)aead.Seal(keys_.block, ByteSpan(aad.data(), aad_len), ByteSpan(in_.data() + i * bs, bs),
                      record);
    }
  });
  return data_out_.Write(ByteSpan(out_.data(), new_records * record_size_));
}

Status Importer::Run(const std::string& volume, const std::string& image_path,
                     ImportResult* result) {
  auto started = std::chrono::steady_clock::now();
  result_ = result;
  *result = ImportResult();
  LSIFS_RETURN_IF_ERROR(ValidateName("volume", volume));

  struct stat st;
  if (::stat(image_path.c_str(), &st) != 0) {
    return Status::FromErrno("cannot read image " + image_path, errno);
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return Status::InvalidArgument("image " + image_path +
                                   " is not a regular file or block device");
  }
  Status s = File::OpenRead(image_path, &image_);
  if (!s.ok()) return s.WithContext("cannot read image");
  uint64_t size = 0;
  LSIFS_RETURN_IF_ERROR(image_.Size(&size));
  if (size == 0) return Status::InvalidArgument("image " + image_path + " is empty");
  ::posix_fadvise(image_.fd(), 0, 0, POSIX_FADV_SEQUENTIAL);

  // A damaged snapshot file of the volume is no parent: its blocks are
  // stored again.
  std::vector<SnapshotInfo> existing;
  std::vector<std::string> damaged;
  LSIFS_RETURN_IF_ERROR(ListSnapshots(store_, keys_, volume, &existing, &damaged));
  block_size_ = store_.block_size();
  record_size_ = block_size_ + kSealOverhead;

  info_.volume = volume;
  do {
    info_.id = RandomU64NonZero();
  } while (std::any_of(existing.begin(), existing.end(),
                       [&](const SnapshotInfo& e) { return e.id == info_.id; }));
  info_.size = size;
  info_.block_size = block_size_;
  info_.created_us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  if (!existing.empty()) {
    const SnapshotInfo& parent = existing.back();
    if (parent.size != size && !options_.resize) {
      return Status::InvalidArgument(
          "the image is " + FormatBytes(size) + " (" + std::to_string(size) + " bytes) but " +
          volume + "'s latest snapshot is " + FormatBytes(parent.size) + " (" +
          std::to_string(parent.size) +
          " bytes): importing it changes the volume's size; pass --resize if that is meant");
    }
    info_.parent = parent.id;
    if (parent.block_size == block_size_) {
      LSIFS_RETURN_IF_ERROR(parent_.Open(store_.snapshot_map_path(volume, parent.id), keys_));
      has_parent_ = true;
    }
  }

  LSIFS_RETURN_IF_ERROR(
      data_out_.Open(store_.tmp_dir(), store_.snapshot_data_path(volume, info_.id), 0644));
  LSIFS_RETURN_IF_ERROR(data_out_.Write(EncodeDataHeader(block_size_, info_.id)));
  LSIFS_RETURN_IF_ERROR(map_out_.Open(store_, keys_, info_));

  size_t batch_blocks = std::max<size_t>(1, kBatchBytes / block_size_);
  in_.resize(batch_blocks * block_size_);
  out_.resize(batch_blocks * record_size_);
  zero_.resize(batch_blocks);
  digests_.resize(batch_blocks);
  out_slot_.resize(batch_blocks);

  const uint64_t total_blocks = info_.block_count();
  uint64_t block = 0;
  while (block < total_blocks) {
    uint64_t data = NextData(image_.fd(), block * block_size_, size);
    uint64_t data_block = data / block_size_;
    if (data_block > block) {
      result->zero_blocks += std::min(data_block, total_blocks) - block;
      block = std::min(data_block, total_blocks);
      continue;
    }
    if (options_.cancel != nullptr && options_.cancel->load()) {
      return Status::Cancelled("interrupted; nothing was imported");
    }
    size_t count = static_cast<size_t>(std::min<uint64_t>(batch_blocks, total_blocks - block));
    LSIFS_RETURN_IF_ERROR(ProcessBatch(block, count));
    block += count;
    if (options_.progress) options_.progress(std::min(block * block_size_, size), size);
  }
  if (options_.progress) options_.progress(size, size);

  // Read the parent's map to its end so that its MAC is checked before
  // anything of it is relied upon.
  if (has_parent_) {
    const BlockLocation* ignored;
    LSIFS_RETURN_IF_ERROR(NextParentEntryAtLeast(UINT64_MAX, &ignored));
  }

  // Commit order: the data file, then the map. The map is the snapshot's
  // catalog entry; until it exists the snapshot does not. Between the two,
  // a claim in tmp/ (gone with this process) keeps a sweep from taking the
  // data file for what a crash left (Catalog::Sweep).
  std::unique_ptr<Claim> claim;
  LSIFS_RETURN_IF_ERROR(Claim::Begin(store_, &claim));
  LSIFS_RETURN_IF_ERROR(claim->Add(info_.id));
  if (::mkdir(store_.volume_dir(volume).c_str(), 0755) == 0) {
    LSIFS_RETURN_IF_ERROR(SyncDirectory(store_.snapshots_dir()));
  } else if (errno != EEXIST) {
    return Status::FromErrno("mkdir " + store_.volume_dir(volume), errno);
  }
  LSIFS_RETURN_IF_ERROR(data_out_.Commit());
  Status committed = map_out_.Commit(stored_);
  if (!committed.ok()) {
    ::unlink(store_.snapshot_data_path(volume, info_.id).c_str());
    return committed;
  }
  info_.present_blocks = result->new_blocks + result->reused_blocks;
  info_.stored_blocks = stored_;
  result->snapshot = info_;
  result->bytes_stored = DataRecordOffset(block_size_, stored_);
  result->seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return Status::Ok();
}

}  // namespace

Status ImportImage(const Store& store, const OriginKeys& keys, const std::string& volume,
                   const std::string& image_path, const ImportOptions& options,
                   ImportResult* result) {
  Importer importer(store, keys, options);
  return importer.Run(volume, image_path, result);
}

}  // namespace lsifs
