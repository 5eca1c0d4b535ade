#include "core/predictor/predictor.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

namespace lsifs {
namespace {

// Blocks every session reads among its first accesses: the filesystem's
// metadata (superblock, group descriptors, bitmaps, root inode tables).
constexpr double kMetadataP = 0.99;
constexpr double kMetadataRank = 64;

struct Candidate {
  double p_own = 0, p_all = 0;
  double rank_own = -1, rank_all = -1;
  double p = 0;
  PlanTier tier = PlanTier::kOwn;
};

double Probability(const BlockStats& s, const ModelMeta& meta, const CoAccessParams& params) {
  if (meta.total <= 0) return 0;
  return std::min(1.0, s.WeightAt(meta.sessions, params) / meta.total);
}

}  // namespace

bool ConfidentSuccessor(const Successor& s, double seed_weight, const CoAccessParams& params,
                        const PlanOptions& options) {
  double needed = 0;
  for (int i = 0; i < static_cast<int>(std::ceil(options.min_support)); ++i) {
    needed += params.Decay(static_cast<uint32_t>(i));
  }
  // A hair of slack for rounding in the decayed sums.
  return seed_weight > 0 && s.support >= needed - 1e-9 &&
         s.support >= options.min_share * seed_weight - 1e-9;
}

const char* PlanTierName(PlanTier tier) {
  switch (tier) {
    case PlanTier::kOwn:
      return "own";
    case PlanTier::kVolumeWide:
      return "volume-wide";
    case PlanTier::kSuccessor:
      return "successor";
    case PlanTier::kMetadata:
      return "metadata";
  }
  return "?";
}

Plan PlanBlocks(const ModelView& own, const ModelView& all, const CoAccessParams& params,
                const std::vector<uint64_t>& present, uint32_t block_size,
                const PlanOptions& options) {
  Plan plan;
  auto is_present = [&](uint64_t b) {
    return std::binary_search(present.begin(), present.end(), b);
  };
  const double n = own.meta.total;
  const double a = n > 0 ? n / (n + options.prior) : 0;
  plan.own_weight = a;

  std::unordered_map<uint64_t, Candidate> c;
  for (const auto& [block, stats] : own.blocks) {
    Candidate& x = c[block];
    x.p_own = Probability(stats, own.meta, params);
    x.rank_own = stats.rank;
  }
  for (const auto& [block, stats] : all.blocks) {
    Candidate& x = c[block];
    x.p_all = Probability(stats, all.meta, params);
    x.rank_all = stats.rank;
  }
  const bool have_all = all.meta.total > 0;
  for (auto& [block, x] : c) {
    // Without a volume-wide model (never the case once anything was
    // recorded, as every session folds into both), own history alone.
    x.p = have_all ? a * x.p_own + (1 - a) * x.p_all : x.p_own;
    // Own habits, where the extension's own evidence is at least as strong.
    if (x.p_own > 0 && x.p_own >= x.p_all) {
      x.tier = PlanTier::kOwn;
    } else if (x.p_all >= kMetadataP && x.rank_all >= 0 && x.rank_all < kMetadataRank) {
      x.tier = PlanTier::kMetadata;
    } else {
      x.tier = PlanTier::kVolumeWide;
    }
  }
  for (const auto& [block, x] : c) {
    if (is_present(block)) plan.expected_blocks += x.p;
  }

  // Expansion: a confident seed says its confident successor is read with
  // probability p(seed) x p(successor follows the seed). Where that is more
  // than the model's own estimate of the successor, it replaces it, in that
  // model's share of the smoothed p.
  // Seeds are fixed before any lifting: one level of expansion, whatever
  // the order of the blocks.
  std::unordered_map<uint64_t, Candidate> seeds;
  for (const auto& [block, x] : c) {
    if (x.p >= options.seed_p) seeds.emplace(block, x);
  }
  auto expand = [&](const ModelView& model, bool is_own, double share) {
    for (const auto& [block, stats] : model.blocks) {
      auto found = seeds.find(block);
      if (found == seeds.end()) continue;
      const Candidate& seed = found->second;
      // Weight and supports decayed alike, to the model's latest session.
      const double decay = params.Decay(model.meta.sessions - stats.as_of);
      const double w = stats.weight * decay;
      for (const Successor& raw : stats.successors) {
        const Successor s{raw.block, raw.support * decay};
        if (!ConfidentSuccessor(s, w, params, options)) continue;
        const double said = seed.p * std::min(1.0, s.support / w);
        Candidate& t = c[s.block];
        double& mine = is_own ? t.p_own : t.p_all;
        if (said <= mine) continue;
        t.p += share * (said - mine);
        mine = said;
        t.tier = PlanTier::kSuccessor;
        if (t.rank_own < 0 && t.rank_all < 0) {
          t.rank_own = (seed.rank_own >= 0 ? seed.rank_own : seed.rank_all) + 0.5;
        }
      }
    }
  };
  if (a > 0) expand(own, /*is_own=*/true, have_all ? a : 1.0);
  if (have_all) expand(all, /*is_own=*/false, 1 - a);

  std::vector<PlannedBlock> ranked;
  for (const auto& [block, x] : c) {
    if (!is_present(block) || x.p < options.floor) continue;
    double rank = x.rank_own >= 0 && x.rank_all >= 0 ? a * x.rank_own + (1 - a) * x.rank_all
                  : x.rank_own >= 0                  ? x.rank_own
                                                     : x.rank_all;
    ranked.push_back({block, x.p, rank, x.tier});
  }
  // Greedy by expected stall saved per byte: every block costs one block and
  // saves one round trip times its probability. Ties by block number, so
  // that the plan is deterministic.
  std::sort(ranked.begin(), ranked.end(), [](const PlannedBlock& x, const PlannedBlock& y) {
    return x.p != y.p ? x.p > y.p : x.block < y.block;
  });
  plan.budget_bytes =
      options.budget_bytes != 0
          ? options.budget_bytes
          : static_cast<uint64_t>(std::ceil(options.budget_factor * plan.expected_blocks)) *
                block_size;
  const uint64_t max_blocks = block_size ? plan.budget_bytes / block_size : 0;
  for (const auto& b : ranked) {
    if (plan.blocks.size() < max_blocks) {
      plan.blocks.push_back(b);
      ++plan.tier_blocks[static_cast<int>(b.tier)];
    } else {
      ++plan.cut_by_budget;
    }
  }
  std::sort(plan.blocks.begin(), plan.blocks.end(),
            [](const PlannedBlock& x, const PlannedBlock& y) {
              return x.rank != y.rank ? x.rank < y.rank : x.block < y.block;
            });
  return plan;
}

std::span<const uint64_t> SuccessorTable::Of(uint64_t block) const {
  auto it = std::lower_bound(seeds_.begin(), seeds_.end(), block);
  if (it == seeds_.end() || *it != block) return {};
  return successors(static_cast<size_t>(it - seeds_.begin()));
}

bool SuccessorTable::Append(uint64_t seed, std::span<const uint64_t> successors) {
  if (!seeds_.empty() && seed <= seeds_.back()) return false;
  if (next_.size() + successors.size() > std::numeric_limits<uint32_t>::max()) return false;
  if (offsets_.empty()) offsets_.push_back(0);
  seeds_.push_back(seed);
  next_.insert(next_.end(), successors.begin(), successors.end());
  offsets_.push_back(static_cast<uint32_t>(next_.size()));
  return true;
}

size_t SuccessorTable::bytes() const {
  return seeds_.size() * sizeof(uint64_t) + offsets_.size() * sizeof(uint32_t) +
         next_.size() * sizeof(uint64_t);
}

SuccessorTable BuildSuccessorTable(const ModelView& own, const ModelView& all,
                                   const CoAccessParams& params, const PlanOptions& options,
                                   size_t max_entries, size_t per_seed) {
  double needed = 0;  // the weight of min_support consecutive sessions
  for (int i = 0; i < static_cast<int>(std::ceil(options.min_support)); ++i) {
    needed += params.Decay(static_cast<uint32_t>(i));
  }
  struct Seed {
    double weight = 0;
    std::vector<uint64_t> next;
  };
  std::unordered_map<uint64_t, Seed> seeds;
  auto add = [&](const ModelView& model, bool own_model) {
    for (const auto& [block, stats] : model.blocks) {
      Seed& seed = seeds[block];
      // Where the extension's own model has seen the seed enough, it decides.
      if (!own_model && seed.weight >= needed - 1e-9) continue;
      seed.weight = std::max(seed.weight, stats.weight);
      for (const auto& s : stats.successors) {
        if (seed.next.size() >= per_seed) break;
        if (!ConfidentSuccessor(s, stats.weight, params, options)) continue;
        if (std::find(seed.next.begin(), seed.next.end(), s.block) == seed.next.end()) {
          seed.next.push_back(s.block);
        }
      }
    }
  };
  add(own, true);
  add(all, false);
  std::vector<std::pair<uint64_t, Seed*>> kept;
  for (auto& [block, seed] : seeds) {
    if (!seed.next.empty()) kept.emplace_back(block, &seed);
  }
  // The most read seeds first while the budget lasts; ties by block, so that
  // the table does not depend on hashing.
  std::sort(kept.begin(), kept.end(), [](const auto& x, const auto& y) {
    return x.second->weight != y.second->weight ? x.second->weight > y.second->weight
                                                : x.first < y.first;
  });
  size_t total = 0, n = 0;
  while (n < kept.size() && total + kept[n].second->next.size() <= max_entries) {
    total += kept[n++].second->next.size();
  }
  kept.resize(n);
  std::sort(kept.begin(), kept.end());
  SuccessorTable t;
  for (const auto& [block, seed] : kept) (void)t.Append(block, seed->next);
  return t;
}

}  // namespace lsifs
