// The origin interface: the only way the read path and the assembler reach
// base-snapshot blocks. On one host, LocalOrigin opens them in-process with
// the provider key; in a two-site deployment a region service would
// re-encrypt each block for the requesting extension and this interface would
// be its client. OriginLink (link.h) stacks the WAN model and the
// priority classes on any origin.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/origin/snapshot.h"
#include "core/util/status.h"

namespace lsifs {

// One snapshot as seen through an origin: its facts, which blocks are
// present, and block fetches. Thread-safe.
class OriginSnapshot {
 public:
  virtual ~OriginSnapshot() = default;
  virtual const SnapshotInfo& info() const = 0;
  // The present blocks, ascending: everything else reads as zeros.
  virtual const std::vector<uint64_t>& present() const = 0;
  // Fetches blocks in ONE origin request (one round trip). outs[i] receives
  // block blocks[i] (block_size bytes); every block must be present. A block
  // failing authentication fails the whole request, naming the block.
  virtual Status Fetch(std::span<const uint64_t> blocks, std::span<uint8_t* const> outs) = 0;
};

class Origin {
 public:
  virtual ~Origin() = default;
  virtual Status OpenSnapshot(const std::string& volume, uint64_t id,
                              std::unique_ptr<OriginSnapshot>* out) = 0;
};

// Blocks straight from the store, opened with the provider key.
class LocalOrigin : public Origin {
 public:
  // `store` and `keys` must outlive the origin and its snapshots.
  LocalOrigin(const Store& store, const OriginKeys& keys) : store_(store), keys_(keys) {}
  Status OpenSnapshot(const std::string& volume, uint64_t id,
                      std::unique_ptr<OriginSnapshot>* out) override;

 private:
  const Store& store_;
  const OriginKeys& keys_;
};

}  // namespace lsifs
