// The predictor: from the co-access statistics of past sessions to a ranked
// plan of the blocks the next session of one extension will read. Pure
// computation: no I/O, no clock, no randomness; the same input gives the
// same plan (known-answer tests in tests/core/predictor_test.cc).
//
// Per block, the probability that the next session reads it is the
// extension's own decayed frequency smoothed toward the volume-wide one:
//   p = a * p_own + (1 - a) * p_all,   a = n / (n + prior)
// where n is the extension's decayed number of sessions (so with no own
// history the volume-wide model decides alone: a cold start from other
// extensions). Confident seeds (p >= seed_p before any lifting, so that the
// plan does not depend on how blocks are numbered) then lift their
// confident successors (ConfidentSuccessor) to p_seed * support / weight_seed. Blocks
// are taken by expected stall saved per byte (all blocks cost the same, so by
// p) until the byte budget or the probability floor; the layer is ordered by
// expected first access. With no history at all there is nothing to plan.
#pragma once

#include <span>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/access/coaccess.h"

namespace lsifs {

// A model as the access database holds it: its summary and its blocks.
struct ModelView {
  ModelMeta meta;
  std::vector<std::pair<uint64_t, BlockStats>> blocks;
};

struct PlanOptions {
  uint64_t budget_bytes = 0;  // 0: budget_factor x the expected bytes a session reads
  double budget_factor = 1.5;
  double floor = 0.05;       // blocks less likely than this are never taken
  double prior = 2.0;        // sessions of own history worth as much as the volume-wide model
  double seed_p = 0.5;       // blocks this likely expand to their successors
  double min_support = 2.0;  // a successor seen in fewer (decayed) sessions is noise
  double min_share = 0.5;    // ... or following its seed in less than this share of them
};

// The one rule for "confident co-access", used by the predictor, read-time
// expansion and the reports alike: a successor seen after its seed in at
// least min_support sessions (its decayed support at least what that many
// consecutive latest sessions would give), and in at least min_share of the
// (decayed) sessions that read the seed. Support and weight are decayed to
// the same session.
bool ConfidentSuccessor(const Successor& s, double seed_weight, const CoAccessParams& params,
                        const PlanOptions& options);

// Why a block is in the plan.
enum class PlanTier { kOwn, kVolumeWide, kSuccessor, kMetadata };
const char* PlanTierName(PlanTier tier);

struct PlannedBlock {
  uint64_t block = 0;
  double p = 0;     // estimated probability that the next session reads it
  double rank = 0;  // expected first-access rank
  PlanTier tier = PlanTier::kOwn;
};

struct Plan {
  std::vector<PlannedBlock> blocks;  // in expected first-access order
  uint64_t budget_bytes = 0;
  double expected_blocks = 0;  // sum of p over every candidate: blocks a session reads
  double own_weight = 0;       // a, the share of the extension's own model
  uint64_t tier_blocks[4] = {0, 0, 0, 0};
  uint64_t cut_by_budget = 0;  // candidates above the floor left out for lack of budget
};

// Plans the blocks of a snapshot whose present blocks are `present`
// (sorted): absent blocks read as zeros and are never planned.
Plan PlanBlocks(const ModelView& own, const ModelView& all, const CoAccessParams& params,
                const std::vector<uint64_t>& present, uint32_t block_size,
                const PlanOptions& options);

// The successor table read-time expansion follows: for each seed block, its
// confident successors (ConfidentSuccessor), most supported first; the
// extension's own, then, where its own model has not seen the seed often
// enough to judge, the volume-wide ones (a cold start from other
// extensions). Flat and sorted: a lookup allocates nothing.
class SuccessorTable {
 public:
  // Confident successors of `block` (empty when it is no seed).
  std::span<const uint64_t> Of(uint64_t block) const;
  size_t seeds() const { return seeds_.size(); }
  // The i-th seed (ascending) and its successors: to send a table whole.
  uint64_t seed(size_t i) const { return seeds_[i]; }
  std::span<const uint64_t> successors(size_t i) const {
    return std::span<const uint64_t>(next_.data() + offsets_[i], offsets_[i + 1] - offsets_[i]);
  }
  size_t entries() const { return next_.size(); }
  size_t bytes() const;

  // Adds `seed` with its successors; seeds go in ascending order. False
  // (and nothing added) when `seed` is not above the last one.
  bool Append(uint64_t seed, std::span<const uint64_t> successors);

 private:
  std::vector<uint64_t> seeds_;    // sorted
  std::vector<uint32_t> offsets_;  // seeds_.size() + 1 bounds into next_
  std::vector<uint64_t> next_;
};

// At most `max_entries` successors in all (the most read seeds kept first)
// and `per_seed` per seed.
SuccessorTable BuildSuccessorTable(const ModelView& own, const ModelView& all,
                                   const CoAccessParams& params, const PlanOptions& options,
                                   size_t max_entries = 1 << 20, size_t per_seed = 16);

}  // namespace lsifs
