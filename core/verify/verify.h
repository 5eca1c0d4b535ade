// Verification of what a store holds, end to end, as qemu-img check does
// for an image: a snapshot's map (both MACs), its data files (exact sizes)
// and every block it lists (opened and authenticated); an LSI's manifest
// (authenticated under its extension's key), its base snapshot, and each
// layer (header, wrapped key, sealed index, the manifest's block list, every
// record opened). Nothing is changed and nothing is learned: verification
// reads the store's files, never a mount.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/origin/snapshot.h"
#include "core/store/store.h"
#include "core/util/status.h"

namespace lsifs {

struct VerifyResult {
  enum class Kind { kSnapshot, kLsi };
  Kind kind = Kind::kSnapshot;
  uint64_t id = 0;
  std::string volume;
  uint64_t blocks_checked = 0;        // records opened and authenticated
  std::vector<std::string> problems;  // empty: intact
  bool ok() const { return problems.empty(); }
};

// Called with blocks checked so far and the total to check.
using VerifyProgress = std::function<void(uint64_t done, uint64_t total)>;

// Verifies what `target` names: "" for everything in the store, else the id
// of a snapshot or of an LSI. NotFound when no snapshot or LSI has that id.
// Damage is reported in the results, not as an error.
Status Verify(const Store& store, const OriginKeys& keys, const std::string& target,
              const VerifyProgress& progress, std::vector<VerifyResult>* out);

}  // namespace lsifs
