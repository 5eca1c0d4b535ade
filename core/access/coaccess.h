// Co-access statistics: what the predictor learns from past sessions, per
// (extension, volume) and volume-wide. Pure computation, no storage: the
// access database (access_db.h) loads the entries a session touches, calls
// Update, and writes them back.
//
// For every block the model keeps, with session-count decay (a half-life of
// `half_life` sessions, applied lazily):
//   weight     decayed number of sessions that read the block;
//   rank       decayed mean first-access rank (0 = first block read);
//   successors the top-K blocks first read within `window` first accesses
//              after it, each with its decayed support.
// The probability that the next session reads a block is weight / total,
// where total is the decayed number of sessions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/util/encoding.h"
#include "core/util/status.h"

namespace lsifs {

struct CoAccessParams {
  double half_life = 8;           // sessions
  uint32_t window = 16;           // successors: the next `window` first accesses
  uint32_t top_k = 16;            // successors kept per block
  uint64_t max_blocks = 1 << 20;  // blocks with statistics, per model
  uint32_t keep_sessions = 32;    // raw session logs kept, per (extension, volume)

  double Decay(uint32_t sessions) const;  // factor after `sessions` sessions
  Bytes Encode() const;
  static Status Decode(ByteSpan data, CoAccessParams* out);
};

// Changes to the parameters a database keeps (unset: keep what it has).
struct CoAccessSettings {
  std::optional<double> half_life;
  std::optional<uint32_t> window, top_k, keep_sessions;
  std::optional<uint64_t> max_blocks;

  static CoAccessSettings Exactly(const CoAccessParams& p);
  bool empty() const { return !half_life && !window && !top_k && !keep_sessions && !max_blocks; }
  void ApplyTo(CoAccessParams* p) const;
  // Parses "half_life=8", "successor_window=16", "successor_top_k=16",
  // "max_stat_blocks=1048576", "keep_sessions=32"; false if `key` is none of them.
  bool Parse(const std::string& key, const std::string& value, Status* status);
};

struct Successor {
  uint64_t block = 0;
  double support = 0;
};

struct BlockStats {
  double weight = 0;
  double rank = 0;
  uint32_t as_of = 0;                 // the model session the values are decayed to
  uint32_t sessions = 0;              // sessions that read it, undecayed
  std::vector<Successor> successors;  // by support, descending

  // Values decayed to model session `now`.
  double WeightAt(uint32_t now, const CoAccessParams& p) const {
    return weight * p.Decay(now - as_of);
  }
  Bytes Encode() const;
  static Status Decode(ByteSpan data, BlockStats* out);
};

struct ModelMeta {
  uint32_t sessions = 0;  // sessions folded into the model
  double total = 0;       // decayed number of sessions, as of `sessions`
  uint64_t blocks = 0;    // blocks with statistics
  Bytes Encode() const;
  static Status Decode(ByteSpan data, ModelMeta* out);
};

// Folds one session (its blocks in first-access order, each once) into the
// model. `stats` must hold the current statistics of every block in
// `order` (absent = new); on return it holds their updated values.
// Returns how many blocks were new to the model.
uint64_t FoldSession(const std::vector<uint64_t>& order, const CoAccessParams& params,
                     ModelMeta* meta, std::unordered_map<uint64_t, BlockStats>* stats);

// Whether a session's first accesses (in order) are a whole-image read in
// address order (cat, cmp, dd, a backup copy) rather than a restore: at
// least 90% of the image's `present_blocks` read, 80% of successive first
// accesses going up (cp and dd bs=1M were seen at 92-95%: the kernel's
// readahead finishes out of order). A restore (a boot, a mount and a scan)
// reads a part of the image, in the filesystem's order.
bool IsSequentialWholeRead(const std::vector<uint64_t>& order, uint64_t present_blocks);

}  // namespace lsifs
