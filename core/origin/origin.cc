#include "core/origin/origin.h"

#include "core/crypto/aead.h"

namespace lsifs {
namespace {

class LocalSnapshot : public OriginSnapshot {
 public:
  explicit LocalSnapshot(std::unique_ptr<SnapshotBlocks> blocks) : blocks_(std::move(blocks)) {
    present_.reserve(blocks_->map().size());
    for (const auto& loc : blocks_->map()) present_.push_back(loc.block);
  }

  const SnapshotInfo& info() const override { return blocks_->info(); }
  const std::vector<uint64_t>& present() const override { return present_; }

  Status Fetch(std::span<const uint64_t> blocks, std::span<uint8_t* const> outs) override {
    // Fetches are rare next to reads and cross the origin boundary; the
    // per-thread scratch keeps them allocation-free after the first.
    thread_local Aead aead;
    thread_local Bytes record;
    const uint32_t bs = blocks_->info().block_size;
    record.resize(bs + kSealOverhead);
    for (size_t i = 0; i < blocks.size(); ++i) {
      const BlockLocation* loc = blocks_->Find(blocks[i]);
      if (loc == nullptr) return Status::InvalidArgument("fetch of an absent block");
      LSIFS_RETURN_IF_ERROR(blocks_->ReadBlock(*loc, aead, record, MutableByteSpan(outs[i], bs)));
    }
    return Status::Ok();
  }

 private:
  std::unique_ptr<SnapshotBlocks> blocks_;
  std::vector<uint64_t> present_;
};

}  // namespace

Status LocalOrigin::OpenSnapshot(const std::string& volume, uint64_t id,
                                 std::unique_ptr<OriginSnapshot>* out) {
  std::unique_ptr<SnapshotBlocks> blocks;
  LSIFS_RETURN_IF_ERROR(SnapshotBlocks::Open(store_, keys_, volume, id, &blocks));
  *out = std::make_unique<LocalSnapshot>(std::move(blocks));
  return Status::Ok();
}

}  // namespace lsifs
