// B4 (BENCHMARKS.md): the learning curve. Replays recorded sessions of one
// extension through the predictor's own code (FoldSession, PlanBlocks) and
// measures how well the plan made from the n sessions before a session
// covers it, for n = 0, 1, 2, 3, 5, 10, sliding over every session that has
// n before it; and a cold start, where the extension has no history but
// another extension (the first half of the sessions) has. Recall and
// precision are in distinct present blocks, as DESIGN.md defines them.
//
//   learning_curve --sessions FILE.json --image IMAGE --block-size N [--json OUT]
//
// FILE.json: [[block, ...], ...], each session's blocks in first-access
// order, oldest first (lsictl access show --session K --json, gathered).
// IMAGE: the volume's raw image; its all-zero blocks are absent, as import
// makes them.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "core/predictor/predictor.h"
#include "core/util/json.h"

using namespace lsifs;

namespace {

struct Point {
  double recall = 0, precision = 0;
  size_t judged = 0;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

ModelView Fold(const std::vector<std::vector<uint64_t>>& sessions, size_t from, size_t to,
               const CoAccessParams& params) {
  ModelView v;
  std::unordered_map<uint64_t, BlockStats> stats;
  for (size_t i = from; i < to; ++i) FoldSession(sessions[i], params, &v.meta, &stats);
  for (auto& [b, s] : stats) v.blocks.emplace_back(b, std::move(s));
  std::sort(v.blocks.begin(), v.blocks.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  return v;
}

// Recall and precision of the plan from (own, all) against `session`.
void Judge(const ModelView& own, const ModelView& all, const std::vector<uint64_t>& session,
           const std::vector<uint64_t>& present, uint32_t block_size, std::vector<double>* recall,
           std::vector<double>* precision) {
  CoAccessParams params;
  Plan plan = PlanBlocks(own, all, params, present, block_size, PlanOptions());
  std::unordered_set<uint64_t> planned;
  for (const auto& b : plan.blocks) planned.insert(b.block);
  size_t read = 0, hit = 0;
  for (uint64_t b : session) {
    if (!std::binary_search(present.begin(), present.end(), b)) continue;
    ++read;
    hit += planned.count(b);
  }
  if (read == 0) return;
  recall->push_back(static_cast<double>(hit) / static_cast<double>(read));
  precision->push_back(
      planned.empty() ? 0.0 : static_cast<double>(hit) / static_cast<double>(planned.size()));
}

}  // namespace

int main(int argc, char** argv) {
  std::string sessions_path, image_path, json_path;
  uint32_t block_size = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--sessions")
      sessions_path = argv[i + 1];
    else if (a == "--image")
      image_path = argv[i + 1];
    else if (a == "--block-size")
      block_size = static_cast<uint32_t>(std::atoi(argv[i + 1]));
    else if (a == "--json")
      json_path = argv[i + 1];
  }
  if (sessions_path.empty() || image_path.empty() || block_size == 0) {
    std::fprintf(stderr,
                 "usage: learning_curve --sessions FILE.json --image IMAGE --block-size N "
                 "[--json OUT]\n");
    return 2;
  }
  std::ifstream in(sessions_path);
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text.str(), ec);
  if (ec || !v.is_array()) {
    std::fprintf(stderr, "learning_curve: %s is not a JSON array of sessions\n",
                 sessions_path.c_str());
    return 1;
  }
  std::vector<std::vector<uint64_t>> sessions;
  for (const auto& s : v.as_array()) {
    std::vector<uint64_t> blocks;
    for (const auto& b : s.as_array()) blocks.push_back(b.to_number<uint64_t>());
    sessions.push_back(std::move(blocks));
  }
  // Present blocks: those with a byte that is not zero.
  std::vector<uint64_t> present;
  int fd = ::open(image_path.c_str(), O_RDONLY);
  if (fd < 0) {
    std::fprintf(stderr, "learning_curve: %s: %s\n", image_path.c_str(), std::strerror(errno));
    return 1;
  }
  std::vector<char> buf(block_size);
  for (uint64_t b = 0;; ++b) {
    ssize_t n = ::pread(fd, buf.data(), block_size, static_cast<off_t>(b * block_size));
    if (n <= 0) break;
    if (std::any_of(buf.begin(), buf.begin() + n, [](char c) { return c != 0; })) {
      present.push_back(b);
    }
  }
  ::close(fd);

  CoAccessParams params;
  JsonWriter j;
  j.BeginObject()
      .Field("sessions", static_cast<uint64_t>(sessions.size()))
      .Key("curve")
      .BeginArray();
  std::printf("B4: the learning curve (%zu recorded sessions replayed through the predictor)\n",
              sessions.size());
  std::printf("%-28s %7s %7s %9s\n", "history", "judged", "recall", "precision");
  for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{10}}) {
    std::vector<double> recall, precision;
    for (size_t k = n; k < sessions.size(); ++k) {
      ModelView own = Fold(sessions, k - n, k, params);
      // Only this extension on the volume: its model is the volume-wide one too.
      Judge(own, own, sessions[k], present, block_size, &recall, &precision);
    }
    if (recall.empty()) continue;
    std::printf("%-28s %7zu %7.3f %9.3f\n", (std::to_string(n) + " prior sessions").c_str(),
                recall.size(), Median(recall), Median(precision));
    j.BeginObject()
        .Field("prior_sessions", static_cast<uint64_t>(n))
        .Field("judged", static_cast<uint64_t>(recall.size()))
        .Field("recall", Median(recall))
        .Field("precision", Median(precision))
        .EndObject();
  }
  j.EndArray();
  // Cold start: no own history, another extension's (the first half) only.
  size_t half = sessions.size() / 2;
  std::vector<double> recall, precision;
  ModelView other = Fold(sessions, 0, half, params);
  for (size_t k = half; k < sessions.size(); ++k) {
    Judge(ModelView(), other, sessions[k], present, block_size, &recall, &precision);
  }
  std::printf("%-28s %7zu %7.3f %9.3f\n",
              ("cold (other ext: " + std::to_string(half) + ")").c_str(), recall.size(),
              Median(recall), Median(precision));
  j.Key("cold_start")
      .BeginObject()
      .Field("other_extension_sessions", static_cast<uint64_t>(half))
      .Field("judged", static_cast<uint64_t>(recall.size()))
      .Field("recall", Median(recall))
      .Field("precision", Median(precision))
      .EndObject()
      .EndObject();
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << j.str() << "\n";
  }
  return 0;
}
