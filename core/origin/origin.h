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

// The classes of the origin link (link.h), first to last; an origin across
// a network is told each request's class, so that the far side can order
// its work the same way.
enum class LinkClass : uint8_t {
  kDemand = 0,
  kExpansion,
  kLayerPull,
  kHigh,
  kNormal,
  kLow,
  kHydration,
};
constexpr size_t kLinkClasses = 7;
const char* LinkClassName(LinkClass c);

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
  // The same, telling the origin the request's link class. In-process
  // origins have nothing to order and ignore it.
  virtual Status FetchIn(LinkClass cls, std::span<const uint64_t> blocks,
                         std::span<uint8_t* const> outs) {
    (void)cls;
    return Fetch(blocks, outs);
  }
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
