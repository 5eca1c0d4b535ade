#include "core/service/report.h"

#include "core/predictor/predictor.h"

#include <algorithm>
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
    *out += "SESSION  LSI               STARTED               BLOCKS     READS  DROPPED  STATE\n";
  }
  for (const auto& s : sessions) {
    std::snprintf(line, sizeof line, "%7u  %-16s  %-20s  %6llu  %8llu  %7llu  %s\n", s.number,
                  FormatId(s.lsi).c_str(), TimeText(s.started_us).c_str(),
                  static_cast<unsigned long long>(s.events),
                  static_cast<unsigned long long>(s.reads),
                  static_cast<unsigned long long>(s.dropped), StateName(s.state));
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
    std::snprintf(line, sizeof line, "  %4zu blocks: ", clusters[i].blocks.size());
    *out += line + members + "\n";
  }
  return Status::Ok();
}

Status RenderHeatmapSvg(AccessDb& db, const std::string& extension, const std::string& volume,
                        uint64_t volume_blocks, uint32_t block_size, std::string* svg) {
  ModelMeta meta;
  std::vector<std::pair<uint64_t, BlockStats>> model;
  LSIFS_RETURN_IF_ERROR(db.LoadModel(extension, volume, &meta, &model));
  if (volume_blocks == 0) return Status::InvalidArgument("volume has no blocks");
  constexpr uint64_t kColumns = 64;
  constexpr uint64_t kMaxCells = 64 * 64;
  const uint64_t per_cell = (volume_blocks + kMaxCells - 1) / kMaxCells;
  const uint64_t cells = (volume_blocks + per_cell - 1) / per_cell;
  const uint64_t rows = (cells + kColumns - 1) / kColumns;
  std::vector<double> heat(cells, 0.0);
  for (const auto& [b, st] : model) {
    if (b >= volume_blocks || meta.total <= 0) continue;
    double p = st.WeightAt(meta.sessions, db.params()) / meta.total;
    heat[b / per_cell] = std::max(heat[b / per_cell], p);
  }
  const int cell = 10, left = 70, top = 60;
  const int width = left + static_cast<int>(kColumns) * cell + 140;
  const int height = top + static_cast<int>(rows) * cell + 50;
  auto color = [](double p) {
    // White (never read) through yellow to dark red (read every session).
    int r = 255, g = static_cast<int>(255 - 200 * std::min(1.0, p * 2)),
        b = static_cast<int>(255 - 255 * std::min(1.0, p * 1.5));
    if (p > 0.5) r = static_cast<int>(255 - 120 * (p - 0.5) * 2);
    char buf[32];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", std::clamp(r, 0, 255), std::clamp(g, 0, 255),
                  std::clamp(b, 0, 255));
    return std::string(buf);
  };
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                "font-family=\"sans-serif\" font-size=\"12\">\n"
                "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                "<text x=\"%d\" y=\"22\" font-size=\"15\">Block-access frequency: %s on %s "
                "(%u sessions)</text>\n"
                "<text x=\"%d\" y=\"42\" fill=\"#555\">each cell: %llu block(s) = %s; rows of %llu "
                "cells; colour: P(read in the next session), max over the cell</text>\n",
                width, height, left, volume.c_str(), extension.c_str(), meta.sessions, left,
                static_cast<unsigned long long>(per_cell),
                FormatBytes(per_cell * block_size).c_str(),
                static_cast<unsigned long long>(kColumns));
  *svg = buf;
  for (uint64_t r = 0; r < rows; r += 8) {
    std::snprintf(buf, sizeof buf,
                  "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#555\">%s</text>\n", left - 6,
                  top + static_cast<int>(r) * cell + 9,
                  FormatBytes(r * kColumns * per_cell * block_size).c_str());
    *svg += buf;
  }
  for (uint64_t i = 0; i < cells; ++i) {
    std::snprintf(buf, sizeof buf,
                  "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" "
                  "stroke=\"#eee\" stroke-width=\"0.5\"/>\n",
                  left + static_cast<int>(i % kColumns) * cell,
                  top + static_cast<int>(i / kColumns) * cell, cell, cell, color(heat[i]).c_str());
    *svg += buf;
  }
  int lx = left + static_cast<int>(kColumns) * cell + 20;
  for (int k = 0; k <= 10; ++k) {
    double p = 1.0 - k / 10.0;
    std::snprintf(buf, sizeof buf,
                  "<rect x=\"%d\" y=\"%d\" width=\"16\" height=\"12\" fill=\"%s\" stroke=\"#999\" "
                  "stroke-width=\"0.5\"/><text x=\"%d\" y=\"%d\">%.1f</text>\n",
                  lx, top + k * 14, color(p).c_str(), lx + 22, top + k * 14 + 10, p);
    *svg += buf;
  }
  *svg += "</svg>\n";
  return Status::Ok();
}

}  // namespace lsifs
