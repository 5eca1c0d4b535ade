#include "core/service/report.h"

#include "core/predictor/predictor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <numeric>
#include <unordered_map>

#include "core/util/hex.h"
#include "core/util/json.h"
#include "core/util/progress.h"

namespace lsifs {
namespace {

const char* StateName(SessionState s) {
  switch (s) {
    case SessionState::kOpen:
      return "open";
    case SessionState::kEnded:
      return "ended";
    case SessionState::kRecovered:
      return "ended (recovered after a crash)";
  }
  return "?";
}

// Whether a session taught the model, and why not.
const char* LearningName(const SessionRecord& s) {
  if (s.forgotten) return "no (forgotten)";
  if (s.sequential) return "no (sequential whole-image read)";
  return s.folded ? "yes" : "not yet";
}

std::string TimeText(int64_t us) {
  return us == 0 ? "-" : FormatTime(us / 1000000);
}

struct Hot {
  uint64_t block;
  double probability;
  double rank;
  uint32_t sessions;
};

struct Cluster {
  std::vector<uint64_t> blocks;  // by first-access rank
};

// Connected groups of blocks joined by confident co-access, as the predictor
// judges it.
std::vector<Cluster> FindClusters(const std::vector<std::pair<uint64_t, BlockStats>>& model,
                                  uint32_t now, const CoAccessParams& p) {
  std::unordered_map<uint64_t, uint64_t> parent;
  std::function<uint64_t(uint64_t)> find = [&](uint64_t x) {
    auto it = parent.find(x);
    if (it == parent.end()) {
      parent[x] = x;
      return x;
    }
    if (it->second == x) return x;
    uint64_t r = find(it->second);
    parent[x] = r;
    return r;
  };
  std::unordered_map<uint64_t, double> rank;
  for (const auto& [b, st] : model) rank[b] = st.rank;
  for (const auto& [b, st] : model) {
    double decay = p.Decay(now - st.as_of);
    for (const auto& s : st.successors) {
      if (ConfidentSuccessor({s.block, s.support * decay}, st.weight * decay, p, PlanOptions()) &&
          rank.count(s.block)) {
        parent[find(b)] = find(s.block);
      }
    }
  }
  std::map<uint64_t, Cluster> by_root;
  for (const auto& [b, st] : model) {
    if (parent.count(b)) by_root[find(b)].blocks.push_back(b);
  }
  std::vector<Cluster> out;
  for (auto& [root, c] : by_root) {
    if (c.blocks.size() < 2) continue;
    std::sort(c.blocks.begin(), c.blocks.end(),
              [&](uint64_t a, uint64_t b) { return rank[a] < rank[b]; });
    out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(),
            [](const Cluster& a, const Cluster& b) { return a.blocks.size() > b.blocks.size(); });
  return out;
}

Status RenderSession(AccessDb& db, const ShowRequest& req, std::string* out) {
  std::vector<SessionRecord> sessions;
  LSIFS_RETURN_IF_ERROR(db.ListSessions(req.extension, req.volume, &sessions));
  auto rec = std::find_if(sessions.begin(), sessions.end(),
                          [&](const SessionRecord& s) { return s.number == req.session; });
  if (rec == sessions.end()) {
    return Status::NotFound("no session " + std::to_string(req.session) + " of " + req.extension +
                            "/" + req.volume + " (see: lsictl access show -e " + req.extension +
                            " -v " + req.volume + ")");
  }
  if (!rec->log_kept) {
    return Status::NotFound("session " + std::to_string(req.session) +
                            "'s log is no longer kept (retention keeps the last " +
                            std::to_string(db.params().keep_sessions) + " sessions)");
  }
  std::vector<AccessEvent> log;
  LSIFS_RETURN_IF_ERROR(db.SessionLog(req.extension, req.volume, req.session, &log));
  if (req.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("extension", req.extension)
        .Field("volume", req.volume)
        .Field("session", req.session)
        .Field("state", StateName(rec->state))
        .Field("lsi", FormatId(rec->lsi))
        .Key("blocks")
        .BeginArray();
    for (const auto& e : log) j.Uint(e.block);
    j.EndArray().Key("t_us").BeginArray();
    for (const auto& e : log) j.Uint(e.t_us);
    j.EndArray().EndObject();
    *out = j.str() + "\n";
    return Status::Ok();
  }
  char line[400];
  std::snprintf(line, sizeof line, "session %u of %s on %s: %s, %zu blocks in first-access order\n",
                req.session, req.volume.c_str(), req.extension.c_str(), StateName(rec->state),
                log.size());
  *out = line;
  *out += "  ORDER       BLOCK    T+ms\n";
  for (size_t i = 0; i < log.size(); ++i) {
    std::snprintf(line, sizeof line, "  %5zu  %10llu  %6.1f\n", i,
                  static_cast<unsigned long long>(log[i].block),
                  static_cast<double>(log[i].t_us) / 1000.0);
    *out += line;
  }
  return Status::Ok();
}

}  // namespace

Status RenderAccessShow(AccessDb& db, const ShowRequest& req, std::string* out) {
  if (req.session != 0) return RenderSession(db, req, out);
  std::vector<SessionRecord> sessions;
  LSIFS_RETURN_IF_ERROR(db.ListSessions(req.extension, req.volume, &sessions));
  ModelMeta meta;
  std::vector<std::pair<uint64_t, BlockStats>> model;
  LSIFS_RETURN_IF_ERROR(db.LoadModel(req.extension, req.volume, &meta, &model));
  const CoAccessParams& p = db.params();
  double total = meta.total;
  std::vector<Hot> hot;
  for (const auto& [b, st] : model) {
    hot.push_back({b, total > 0 ? st.WeightAt(meta.sessions, p) / total : 0, st.rank, st.sessions});
  }
  std::sort(hot.begin(), hot.end(), [](const Hot& a, const Hot& b) {
    return a.probability != b.probability ? a.probability > b.probability : a.rank < b.rank;
  });
  std::vector<Cluster> clusters = FindClusters(model, meta.sessions, p);

  if (req.json) {
    JsonWriter j;
    j.BeginObject().Field("extension", req.extension).Field("volume", req.volume);
    j.Key("sessions").BeginArray();
    for (const auto& s : sessions) {
      j.BeginObject()
          .Field("session", s.number)
          .Field("lsi", FormatId(s.lsi))
          .Field("snapshot", FormatId(s.snapshot))
          .Field("state", StateName(s.state))
          .Field("started", TimeText(s.started_us))
          .Field("ended", TimeText(s.ended_us))
          .Field("blocks", s.events)
          .Field("reads", s.reads)
          .Field("dropped", s.dropped)
          .Field("log_kept", s.log_kept)
          .Field("learned", LearningName(s))
          .EndObject();
    }
    j.EndArray();
    j.Key("model")
        .BeginObject()
        .Field("sessions", meta.sessions)
        .Field("blocks", meta.blocks)
        .EndObject();
    j.Key("hot_blocks").BeginArray();
    for (size_t i = 0; i < std::min(req.top, hot.size()); ++i) {
      j.BeginObject()
          .Field("block", hot[i].block)
          .Field("probability", hot[i].probability)
          .Field("rank", hot[i].rank)
          .Field("sessions", hot[i].sessions)
          .EndObject();
    }
    j.EndArray().Key("clusters").BeginArray();
    for (size_t i = 0; i < std::min(req.top, clusters.size()); ++i) {
      j.BeginObject()
          .Field("cluster", static_cast<uint64_t>(i + 1))
          .Field("size", static_cast<uint64_t>(clusters[i].blocks.size()))
          .Key("blocks")
          .BeginArray();
      for (uint64_t b : clusters[i].blocks) j.Uint(b);
      j.EndArray().EndObject();
    }
    j.EndArray().EndObject();
    *out = j.str() + "\n";
    return Status::Ok();
  }

  char line[400];
  std::snprintf(line, sizeof line,
                "%s on %s: %zu sessions; statistics of %llu blocks from %u sessions\n\n",
                req.volume.c_str(), req.extension.c_str(), sessions.size(),
                static_cast<unsigned long long>(meta.blocks), meta.sessions);
  *out = line;
  if (sessions.empty() && meta.sessions == 0) {
    *out += "No sessions yet: mount with lsifs -e " + req.extension + " and read " + req.volume +
            ".img.\n";
    return Status::Ok();
  }
  if (!sessions.empty()) {
    *out +=
        "SESSION  LSI               STARTED               BLOCKS     READS  DROPPED  STATE      "
        "LEARNED\n";
  }
  for (const auto& s : sessions) {
    std::snprintf(line, sizeof line, "%7u  %-16s  %-20s  %6llu  %8llu  %7llu  %-9s  %s\n", s.number,
                  FormatId(s.lsi).c_str(), TimeText(s.started_us).c_str(),
                  static_cast<unsigned long long>(s.events),
                  static_cast<unsigned long long>(s.reads),
                  static_cast<unsigned long long>(s.dropped), StateName(s.state), LearningName(s));
    *out += line;
  }
  *out += "\nHOTTEST BLOCKS   P(next session)  FIRST-ACCESS RANK  SESSIONS\n";
  for (size_t i = 0; i < std::min(req.top, hot.size()); ++i) {
    std::snprintf(line, sizeof line, "  %12llu   %14.2f  %17.1f  %8u\n",
                  static_cast<unsigned long long>(hot[i].block), hot[i].probability, hot[i].rank,
                  hot[i].sessions);
    *out += line;
  }
  const PlanOptions rule;
  std::snprintf(line, sizeof line,
                "\nCO-ACCESS CLUSTERS (successors seen in >= %.0f sessions and >= %.0f%% of "
                "those reading their seed): %zu\n",
                rule.min_support, rule.min_share * 100, clusters.size());
  *out += line;
  for (size_t i = 0; i < std::min(req.top, clusters.size()); ++i) {
    std::string members;
    for (size_t k = 0; k < std::min<size_t>(12, clusters[i].blocks.size()); ++k) {
      members += (k ? " " : "") + std::to_string(clusters[i].blocks[k]);
    }
    if (clusters[i].blocks.size() > 12) members += " ...";
    // Numbered as the heat map outlines them.
    std::snprintf(line, sizeof line, "  #%-3zu %4zu blocks: ", i + 1, clusters[i].blocks.size());
    *out += line + members + "\n";
  }
  return Status::Ok();
}

Status ParseHeatmapFormat(const std::string& name, HeatmapFormat* out) {
  if (name == "svg") {
    *out = HeatmapFormat::kSvg;
  } else if (name == "png") {
    *out = HeatmapFormat::kPng;
  } else {
    return Status::InvalidArgument("heat map format '" + name + "' is not svg or png");
  }
  return Status::Ok();
}

const char* HeatmapFormatName(HeatmapFormat format) {
  return format == HeatmapFormat::kPng ? "png" : "svg";
}

namespace {

// The grid: cells of `per_cell` consecutive blocks, kColumns to a row, at
// most kMaxCells of them, kPitch pixels apart (a cell and a one-pixel gap).
constexpr uint64_t kColumns = 64;
constexpr uint64_t kMaxCells = 64 * 64;
constexpr int kPitch = 10;
constexpr int kLeft = 200, kTop = 86;
constexpr int kBarHeight = 200, kBarStrips = 100;
constexpr Rgb kInk{34, 34, 34}, kGreyInk{85, 85, 85}, kTick{119, 119, 119};

// "1 GiB", "832 KiB": exact when the offset is a whole number of a unit.
std::string AxisBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (u < 5 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++u;
  }
  if (u == 5 || bytes < 1024) return std::to_string(bytes) + " " + kUnits[u];
  return FormatBytes(bytes << (10 * u));
}

// The edges of the cell at (x, y) that are marked: each line lies in the gap
// beside the cell and one pixel beyond, so it hides nothing of the cell.
void AddOutline(Picture& p, int x, int y, bool left, bool right, bool top, bool bottom,
                const std::string& group) {
  const int span = kPitch + 3;  // the corners too
  if (left) p.Add(Rect::Solid(x - 2, y - 2, 2, span, kHeatCluster), group);
  if (right) p.Add(Rect::Solid(x + kPitch - 1, y - 2, 2, span, kHeatCluster), group);
  if (top) p.Add(Rect::Solid(x - 2, y - 2, span, 2, kHeatCluster), group);
  if (bottom) p.Add(Rect::Solid(x - 2, y + kPitch - 1, span, 2, kHeatCluster), group);
}

// Counts to label on the colour bar: 1, the most, and at most five round
// steps (1, 2, 5, 10, 20, 50...) between.
std::vector<uint32_t> CountTicks(uint32_t most) {
  std::vector<uint32_t> ticks{1};
  if (most <= 1) return ticks;
  uint64_t step = 1;
  for (uint64_t base = 1; (most - 1) / step > 5; base *= 10) {
    for (uint64_t mult : {1u, 2u, 5u}) {
      step = base * mult;
      if ((most - 1) / step <= 5) break;
    }
  }
  for (uint64_t v = step; v < most; v += step) {
    // Not so near the top that the labels overlap.
    if (v > 1 && 2 * (most - v) >= step) ticks.push_back(static_cast<uint32_t>(v));
  }
  ticks.push_back(most);
  return ticks;
}

}  // namespace

Status DrawHeatmap(AccessDb& db, const HeatmapRequest& req, Picture* out) {
  if (req.volume_blocks == 0) return Status::InvalidArgument("volume has no blocks");
  ModelMeta meta;
  std::vector<std::pair<uint64_t, BlockStats>> model;
  LSIFS_RETURN_IF_ERROR(db.LoadModel(req.extension, req.volume, &meta, &model));
  const uint64_t per_cell = (req.volume_blocks + kMaxCells - 1) / kMaxCells;
  const uint64_t cells = (req.volume_blocks + per_cell - 1) / per_cell;
  const uint64_t rows = (cells + kColumns - 1) / kColumns;

  // Per cell: the most sessions that read one of its blocks, and whether
  // the snapshot holds any of them.
  std::vector<uint32_t> reads(cells, 0);
  for (const auto& [b, st] : model) {
    if (b < req.volume_blocks) reads[b / per_cell] = std::max(reads[b / per_cell], st.sessions);
  }
  std::vector<bool> present(cells, false);
  if (req.present) {
    LSIFS_RETURN_IF_ERROR(req.present([&](uint64_t b) {
      if (b < req.volume_blocks) present[b / per_cell] = true;
    }));
  }
  const uint32_t most = *std::max_element(reads.begin(), reads.end());
  auto heat = [&](uint32_t n) {
    return Viridis(most <= 1 ? 1.0 : static_cast<double>(n - 1) / (most - 1));
  };

  Picture& p = *out;
  p = Picture();
  const int grid_w = static_cast<int>(kColumns) * kPitch;
  const int legend_x = kLeft + grid_w + 40;
  const int grid_bottom = kTop + static_cast<int>(rows) * kPitch;
  const int legend_bottom = kTop + 30 + kBarHeight + 100;
  p.width = legend_x + 290;
  p.height = std::max(grid_bottom, legend_bottom) + 30;
  const bool everyone = req.extension == kAllExtensions;
  const std::string who = everyone ? "every extension" : req.extension;
  p.title = "Blocks read: " + req.volume + " by " + who;
  char line[400];
  std::snprintf(line, sizeof line, "Blocks read: %s by %s (%u sessions)", req.volume.c_str(),
                who.c_str(), meta.sessions);
  p.Add(Text{kLeft, 24, line, 16, Text::Anchor::kStart, kInk, true});
  std::snprintf(line, sizeof line,
                "latest snapshot %s: %llu blocks of %s; each cell %llu block%s (%s); "
                "a row %llu blocks (%s)",
                FormatId(req.snapshot).c_str(), static_cast<unsigned long long>(req.volume_blocks),
                AxisBytes(req.block_size).c_str(), static_cast<unsigned long long>(per_cell),
                per_cell == 1 ? "" : "s", AxisBytes(per_cell * req.block_size).c_str(),
                static_cast<unsigned long long>(kColumns * per_cell),
                AxisBytes(kColumns * per_cell * req.block_size).c_str());
  p.Add(Text{kLeft, 44, line, 12, Text::Anchor::kStart, kGreyInk, false});
  p.Add(Text{kLeft, 60,
             "a cell shows the most sessions that read one of its blocks; grey: none did; "
             "hatched: the snapshot holds none of them",
             12, Text::Anchor::kStart, kGreyInk, false});

  // The axes: blocks and bytes at the start of every few rows, and block
  // offsets along a row.
  for (uint64_t c = 0; c < kColumns; c += 16) {
    const int x = kLeft + static_cast<int>(c) * kPitch;
    p.Add(Rect::Solid(x, kTop - 6, 1, 4, kTick), "axis");
    if (c == 0) continue;
    p.Add(Text{x, kTop - 10, "+" + std::to_string(c * per_cell) + " blocks", 11,
               Text::Anchor::kStart, kGreyInk, false},
          "axis");
  }
  uint64_t label_every = 2;
  while (rows / label_every > 16) label_every *= 2;
  for (uint64_t r = 0; r < rows; r += label_every) {
    const int y = kTop + static_cast<int>(r) * kPitch;
    const uint64_t block = r * kColumns * per_cell;
    p.Add(Rect::Solid(kLeft - 7, y, 5, 1, kTick), "axis");
    // "\xc2\xb7": a middle dot.
    p.Add(Text{kLeft - 10, y + 8,
               "block " + std::to_string(block) + " \xc2\xb7 " + AxisBytes(block * req.block_size),
               11, Text::Anchor::kEnd, kGreyInk, false},
          "axis");
  }

  auto cell_x = [](uint64_t i) { return kLeft + static_cast<int>(i % kColumns) * kPitch; };
  auto cell_y = [](uint64_t i) { return kTop + static_cast<int>(i / kColumns) * kPitch; };
  for (uint64_t i = 0; i < cells; ++i) {
    const int x = cell_x(i), y = cell_y(i), side = kPitch - 1;
    Rect r = reads[i] > 0 ? Rect::Solid(x, y, side, side, heat(reads[i]))
             : present[i] ? Rect::Solid(x, y, side, side, kHeatNeverRead)
                          : Rect::Hatched(x, y, side, side, kHeatHole, kHeatHoleLine);
    r.id = "cell-" + std::to_string(i);
    p.Add(std::move(r), "cells");
  }

  // The clusters `access show` lists, found by the same code, outlined
  // where a cluster's cells meet cells outside it, and numbered at the cell
  // of the block read first.
  std::vector<Cluster> clusters = FindClusters(model, meta.sessions, db.params());
  const size_t shown = std::min(ShowRequest().top, clusters.size());
  std::vector<bool> member(cells, false);
  for (size_t k = 0; k < shown; ++k) {
    std::vector<uint64_t> in;
    for (uint64_t b : clusters[k].blocks) {
      if (b < req.volume_blocks && !member[b / per_cell]) {
        member[b / per_cell] = true;
        in.push_back(b / per_cell);
      }
    }
    if (in.empty()) continue;
    const std::string group = "cluster-" + std::to_string(k + 1);
    auto inside = [&](uint64_t i, int dcol, int drow) {
      const int64_t col = static_cast<int64_t>(i % kColumns) + dcol;
      const int64_t row = static_cast<int64_t>(i / kColumns) + drow;
      if (col < 0 || col >= static_cast<int64_t>(kColumns) || row < 0) return false;
      const uint64_t j = static_cast<uint64_t>(row) * kColumns + static_cast<uint64_t>(col);
      return j < cells && member[j];
    };
    for (uint64_t i : in) {
      AddOutline(p, cell_x(i), cell_y(i), !inside(i, -1, 0), !inside(i, 1, 0), !inside(i, 0, -1),
                 !inside(i, 0, 1), group);
    }
    const uint64_t first = clusters[k].blocks.front();
    if (first < req.volume_blocks) {
      p.Add(Text{cell_x(first / per_cell) + 4, cell_y(first / per_cell) - 3, std::to_string(k + 1),
                 11, Text::Anchor::kMiddle, kHeatCluster, true},
            group);
    }
    for (uint64_t i : in) member[i] = false;
  }

  // The legend: the colour bar with its counts, then the other colours.
  int y = kTop;
  p.Add(Text{legend_x, y + 4, "sessions that read the block", 12, Text::Anchor::kStart, kInk, true},
        "legend");
  p.Add(Text{legend_x, y + 20, "viridis, linear in the count", 11, Text::Anchor::kStart, kGreyInk,
             false},
        "legend");
  const int bar_top = y + 30;
  for (int s = 0; s < kBarStrips; ++s) {
    const int y0 = bar_top + s * kBarHeight / kBarStrips;
    const int y1 = bar_top + (s + 1) * kBarHeight / kBarStrips;
    p.Add(Rect::Solid(legend_x, y0, 16, y1 - y0, Viridis(1.0 - (s + 0.5) / kBarStrips)), "legend");
  }
  const uint32_t top_count = std::max<uint32_t>(most, 1);
  for (uint32_t v : CountTicks(top_count)) {
    const double t = top_count <= 1 ? 1.0 : static_cast<double>(v - 1) / (top_count - 1);
    const int ty = bar_top + static_cast<int>(std::lround((1.0 - t) * (kBarHeight - 1)));
    p.Add(Rect::Solid(legend_x + 16, ty, 5, 1, kInk), "legend");
    p.Add(Text{legend_x + 25, ty + 4, std::to_string(v), 11, Text::Anchor::kStart, kInk, false},
          "legend");
  }
  if (most == 0) {
    p.Add(Text{legend_x + 25, bar_top + kBarHeight, "(no block read yet)", 11, Text::Anchor::kStart,
               kGreyInk, false},
          "legend");
  }
  y = bar_top + kBarHeight + 24;
  p.Add(Rect::Solid(legend_x, y, kPitch - 1, kPitch - 1, kHeatNeverRead), "legend");
  p.Add(Text{legend_x + 16, y + 9, "never read", 11, Text::Anchor::kStart, kInk, false}, "legend");
  y += 20;
  p.Add(Rect::Hatched(legend_x, y, kPitch - 1, kPitch - 1, kHeatHole, kHeatHoleLine), "legend");
  p.Add(Text{legend_x + 16, y + 9, "not in the snapshot (a hole), never read", 11,
             Text::Anchor::kStart, kInk, false},
        "legend");
  y += 20;
  AddOutline(p, legend_x, y, true, true, true, true, "legend");
  p.Add(Text{legend_x + 16, y + 9, "co-access cluster, numbered", 11, Text::Anchor::kStart, kInk,
             false},
        "legend");
  std::snprintf(line, sizeof line, "as access show lists it (%zu of %zu)", shown, clusters.size());
  p.Add(Text{legend_x + 16, y + 24, line, 11, Text::Anchor::kStart, kGreyInk, false}, "legend");
  return Status::Ok();
}

Status RenderHeatmap(AccessDb& db, const HeatmapRequest& req, HeatmapFormat format,
                     std::string* out) {
  Picture picture;
  LSIFS_RETURN_IF_ERROR(DrawHeatmap(db, req, &picture));
  if (format == HeatmapFormat::kPng) return RenderPng(picture, out);
  *out = RenderSvg(picture);
  return Status::Ok();
}

}  // namespace lsifs
