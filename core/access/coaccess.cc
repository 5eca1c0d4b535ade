#include "core/access/coaccess.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/util/numbers.h"

namespace lsifs {
namespace {
constexpr uint8_t kBlockStatsVersion = 1;
constexpr uint8_t kMetaVersion = 1;

void PutDouble(ByteWriter& w, double v) {
  uint64_t bits;
  static_assert(sizeof bits == sizeof v);
  std::memcpy(&bits, &v, sizeof bits);
  w.PutU64(bits);
}
double GetDouble(ByteReader& r) {
  uint64_t bits = r.GetU64();
  double v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}
}  // namespace

double CoAccessParams::Decay(uint32_t sessions) const {
  if (sessions == 0) return 1.0;
  return std::pow(0.5, static_cast<double>(sessions) / half_life);
}

Bytes CoAccessParams::Encode() const {
  ByteWriter w;
  w.PutU8(1);
  PutDouble(w, half_life);
  w.PutU32(window);
  w.PutU32(top_k);
  w.PutU64(max_blocks);
  w.PutU32(keep_sessions);
  return std::move(w.bytes());
}

Status CoAccessParams::Decode(ByteSpan data, CoAccessParams* out) {
  ByteReader r(data);
  if (r.GetU8() != 1) return Status::Corruption("statistics parameters: bad version");
  out->half_life = GetDouble(r);
  out->window = r.GetU32();
  out->top_k = r.GetU32();
  out->max_blocks = r.GetU64();
  out->keep_sessions = r.GetU32();
  if (!r.ok() || r.remaining() != 0 || !(out->half_life > 0) || out->top_k == 0 ||
      out->top_k > 1024 || out->max_blocks == 0 || out->keep_sessions == 0) {
    return Status::Corruption("statistics parameters: bad record");
  }
  return Status::Ok();
}

CoAccessSettings CoAccessSettings::Exactly(const CoAccessParams& p) {
  CoAccessSettings s;
  s.half_life = p.half_life;
  s.window = p.window;
  s.top_k = p.top_k;
  s.keep_sessions = p.keep_sessions;
  s.max_blocks = p.max_blocks;
  return s;
}

void CoAccessSettings::ApplyTo(CoAccessParams* p) const {
  if (half_life) p->half_life = *half_life;
  if (window) p->window = *window;
  if (top_k) p->top_k = *top_k;
  if (keep_sessions) p->keep_sessions = *keep_sessions;
  if (max_blocks) p->max_blocks = *max_blocks;
}

bool CoAccessSettings::Parse(const std::string& key, const std::string& value, Status* status) {
  if (key == "half_life") {
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    // Finite and sane: an infinite half-life would never forget.
    if (value.empty() || *end != '\0' || !(v >= 0.5 && v <= 1000)) {
      *status = Status::InvalidArgument(
          "half_life is a number of sessions from 0.5 to 1000 (default 8), not '" + value + "'");
    } else {
      half_life = v;
    }
    return true;
  }
  std::optional<uint32_t>* field32 = key == "successor_window"  ? &window
                                     : key == "successor_top_k" ? &top_k
                                     : key == "keep_sessions"   ? &keep_sessions
                                                                : nullptr;
  if (field32 == nullptr && key != "max_stat_blocks") return false;
  // Successor lists are stored with a 16-bit count; 1024 is plenty.
  const uint64_t limit = field32 == &top_k ? 1024 : field32 ? UINT32_MAX : uint64_t{1} << 40;
  uint64_t v = 0;
  *status = ParseUnsigned(value, key, 1, limit, &v);
  if (!status->ok()) return true;
  if (field32) {
    *field32 = static_cast<uint32_t>(v);
  } else {
    max_blocks = v;
  }
  return true;
}

Bytes BlockStats::Encode() const {
  ByteWriter w;
  w.PutU8(kBlockStatsVersion);
  PutDouble(w, weight);
  PutDouble(w, rank);
  w.PutU32(as_of);
  w.PutU32(sessions);
  w.PutU16(static_cast<uint16_t>(successors.size()));
  for (const auto& s : successors) {
    w.PutU64(s.block);
    PutDouble(w, s.support);
  }
  return std::move(w.bytes());
}

Status BlockStats::Decode(ByteSpan data, BlockStats* out) {
  ByteReader r(data);
  if (r.GetU8() != kBlockStatsVersion) return Status::Corruption("block statistics: bad version");
  out->weight = GetDouble(r);
  out->rank = GetDouble(r);
  out->as_of = r.GetU32();
  out->sessions = r.GetU32();
  uint16_t n = r.GetU16();
  if (!r.ok() || r.remaining() != n * 16u)
    return Status::Corruption("block statistics: bad length");
  out->successors.resize(n);
  for (auto& s : out->successors) {
    s.block = r.GetU64();
    s.support = GetDouble(r);
  }
  return Status::Ok();
}

Bytes ModelMeta::Encode() const {
  ByteWriter w;
  w.PutU8(kMetaVersion);
  w.PutU32(sessions);
  PutDouble(w, total);
  w.PutU64(blocks);
  return std::move(w.bytes());
}

Status ModelMeta::Decode(ByteSpan data, ModelMeta* out) {
  ByteReader r(data);
  if (r.GetU8() != kMetaVersion) return Status::Corruption("model meta: bad version");
  out->sessions = r.GetU32();
  out->total = GetDouble(r);
  out->blocks = r.GetU64();
  if (!r.ok() || r.remaining() != 0) return Status::Corruption("model meta: bad length");
  return Status::Ok();
}

uint64_t FoldSession(const std::vector<uint64_t>& order, const CoAccessParams& params,
                     ModelMeta* meta, std::unordered_map<uint64_t, BlockStats>* stats) {
  const uint32_t now = meta->sessions + 1;
  meta->total = meta->total * params.Decay(1) + 1.0;
  meta->sessions = now;
  uint64_t added = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    auto [it, inserted] = stats->try_emplace(order[i]);
    BlockStats& st = it->second;
    if (inserted || st.sessions == 0) {
      ++added;
      st.as_of = now;
    }
    const double decay = params.Decay(now - st.as_of);
    const double w = st.weight * decay;
    st.rank = (st.rank * w + static_cast<double>(i)) / (w + 1.0);
    st.weight = w + 1.0;
    st.as_of = now;
    ++st.sessions;

    for (auto& s : st.successors) s.support *= decay;
    const size_t end = std::min(order.size(), i + 1 + params.window);
    for (size_t j = i + 1; j < end; ++j) {
      auto s = std::find_if(st.successors.begin(), st.successors.end(),
                            [&](const Successor& x) { return x.block == order[j]; });
      if (s == st.successors.end()) {
        st.successors.push_back({order[j], 1.0});
      } else {
        s->support += 1.0;
      }
    }
    std::stable_sort(st.successors.begin(), st.successors.end(),
                     [](const Successor& a, const Successor& b) { return a.support > b.support; });
    if (st.successors.size() > params.top_k) st.successors.resize(params.top_k);
  }
  meta->blocks += added;
  return added;
}

bool IsSequentialWholeRead(const std::vector<uint64_t>& order, uint64_t present_blocks) {
  if (present_blocks < 16 || order.size() * 10 < present_blocks * 9) return false;
  uint64_t ascending = 0;
  for (size_t i = 1; i < order.size(); ++i) ascending += order[i] > order[i - 1] ? 1u : 0u;
  return ascending * 100 >= (order.size() - 1) * 80;
}

}  // namespace lsifs
