#include "core/service/service.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdlib>
#include <ctime>
#include <map>
#include <set>

#include "core/assembler/assemble.h"
#include "core/service/report.h"
#include "core/util/file.h"
#include "core/util/hex.h"
#include "core/util/json.h"
#include "core/util/names.h"
#include "core/util/numbers.h"
#include "core/util/progress.h"

namespace lsifs {
namespace {

// Sessions whose recall and precision `stats` reports, per (extension, volume).
constexpr size_t kRecentSessions = 5;

void TimeOrNull(JsonWriter& j, std::string_view key, int64_t unix_seconds) {
  j.Key(key);
  if (unix_seconds != 0) {
    j.String(FormatTime(unix_seconds));
  } else {
    j.Null();
  }
}

void EntryFields(JsonWriter& j, const CatalogEntry& e) {
  const Manifest& m = e.manifest;
  j.Field("lsi", FormatId(e.lsi_id))
      .Field("extension", m.extension)
      .Field("volume", m.volume)
      .Field("snapshot", FormatId(m.snapshot))
      .Field("state", LsiStateName(e.state))
      .Field("in_use", e.in_use)
      .Field("alias", e.alias)
      .Field("superseded", e.superseded)
      .Field("reason", e.reason)
      .Field("size", m.volume_size)
      .Field("block_size", m.block_size)
      .Field("layers", static_cast<uint64_t>(m.layers.size()))
      .Field("prefetched_blocks", m.delta_blocks())
      .Field("bytes", e.bytes)
      .Field("strategy", m.strategy)
      .Field("model_sessions", m.model_sessions);
  TimeOrNull(j, "created", m.created);
  TimeOrNull(j, "expires", m.expires);
  j.Key("ttl_seconds");
  if (m.expires != 0) {
    j.Int(m.expires - m.created);
  } else {
    j.Null();
  }
  TimeOrNull(j, "delivered", e.delivered);
  TimeOrNull(j, "last_used", e.last_used);
}

Status WithContext(const ServiceEnv& env, CatalogContext* context) {
  return env.with_db(
      [&](AccessDb* db) { return MakeCatalogContext(*env.store, *env.keys, db, context); });
}

Status LoadExtensionKey(const ServiceEnv& env, const std::string& extension, KeyInfo* info,
                        SecretKey* key) {
  LSIFS_RETURN_IF_ERROR(ValidateName("extension", extension));
  return env.store->keyring().Load(extension, info, key);
}

Status ServeLsiList(const ServiceEnv& env, std::string* body) {
  CatalogContext context;
  LSIFS_RETURN_IF_ERROR(WithContext(env, &context));
  std::vector<CatalogEntry> all;
  LSIFS_RETURN_IF_ERROR(env.catalog->List(context, &all));
  JsonWriter j;
  j.BeginArray();
  for (const auto& e : all) {
    j.BeginObject();
    EntryFields(j, e);
    j.EndObject();
  }
  j.EndArray();
  *body = j.str();
  return Status::Ok();
}

Status ServeLsiShow(const ServiceEnv& env, const std::string& id_text, std::string* body) {
  auto id = ParseId(id_text);
  if (!id)
    return Status::InvalidArgument("LSI id '" + id_text +
                                   "' is not a valid id (16 hex digits, not all zeros)");
  CatalogContext context;
  LSIFS_RETURN_IF_ERROR(WithContext(env, &context));
  CatalogEntry e;
  LSIFS_RETURN_IF_ERROR(env.catalog->Find(*id, context, &e));
  JsonWriter j;
  j.BeginObject();
  EntryFields(j, e);
  j.Key("layer_list").BeginArray();
  for (const auto& l : e.manifest.layers) {
    j.BeginObject().Field("layer", FormatId(l.layer_id)).Field("blocks", l.listed).EndObject();
  }
  j.EndArray().Key("counters");
  // Counters as last saved by a daemon serving this LSI (once a second).
  std::string counters;
  boost::system::error_code ec;
  bool have =
      ReadWholeFile(env.store->counters_path(*id, e.manifest.extension), 1 << 20, &counters).ok() &&
      boost::json::parse(counters, ec).is_object() && !ec;
  std::string out = j.str();
  while (!counters.empty() && counters.back() == '\n') counters.pop_back();
  out += have ? counters : std::string("null");
  *body = out + "}";
  return Status::Ok();
}

// The context and, for (extension, volume), what was learned: read in one
// visit to the database.
Status Gather(const ServiceEnv& env, const std::string& extension, const std::string& volume,
              CatalogContext* context, LearnedModels* models) {
  return env.with_db([&](AccessDb* db) -> Status {
    if (db == nullptr) {
      return Status::Unavailable(
          "the co-access database is held by another process (another lsictl, or an lsifs "
          "whose control socket does not answer); what was learned is needed here: try again");
    }
    LSIFS_RETURN_IF_ERROR(MakeCatalogContext(*env.store, *env.keys, db, context));
    models->params = db->params();
    LSIFS_RETURN_IF_ERROR(db->LoadModel(extension, volume, &models->own.meta, &models->own.blocks));
    LSIFS_RETURN_IF_ERROR(
        db->LoadModel(kAllExtensions, volume, &models->all.meta, &models->all.blocks));
    std::vector<SessionRecord> sessions;
    LSIFS_RETURN_IF_ERROR(db->ListSessions(extension, volume, &sessions));
    for (auto it = sessions.rbegin(); it != sessions.rend(); ++it) {
      if (it->state == SessionState::kOpen || !it->log_kept) continue;
      std::vector<AccessEvent> log;
      LSIFS_RETURN_IF_ERROR(db->SessionLog(extension, volume, it->number, &log));
      for (const auto& e : log) models->last_session.push_back(e.block);
      break;
    }
    return Status::Ok();
  });
}

// The LSI an assembly or restore gave, with how it was made.
Status AssemblyReply(const ServiceEnv& env, const CatalogContext& context,
                     const PreassembleResult& r, bool explain, std::string* body) {
  CatalogEntry e;
  Status found = env.catalog->Find(r.manifest.lsi_id, context, &e);
  if (found.IsNotFound()) {
    return Status::NotFound("LSI " + FormatId(r.manifest.lsi_id) +
                            " was dropped as soon as it was made (by lsictl lsi drop or gc); "
                            "run the command again");
  }
  LSIFS_RETURN_IF_ERROR(found);
  JsonWriter j;
  j.BeginObject();
  EntryFields(j, e);
  j.Field("reused", r.reused)
      .Field("priority", PriorityName(static_cast<Priority>(r.manifest.priority)))
      .Field("fetched_blocks", r.stats.fetched_blocks)
      .Field("local_blocks", r.stats.local_blocks)
      .Field("origin_requests", r.stats.origin_requests);
  if (e.manifest.strategy == kPredictedStrategy && !r.reused) {
    const Plan& p = r.plan;
    j.Key("plan")
        .BeginObject()
        .Field("budget_bytes", p.budget_bytes)
        .Field("expected_blocks", p.expected_blocks)
        .Field("own_weight", p.own_weight)
        .Field("cut_by_budget", p.cut_by_budget)
        .Key("tiers")
        .BeginObject();
    for (PlanTier t :
         {PlanTier::kOwn, PlanTier::kVolumeWide, PlanTier::kSuccessor, PlanTier::kMetadata}) {
      j.Field(PlanTierName(t), p.tier_blocks[static_cast<int>(t)]);
    }
    j.EndObject();
    if (explain) {
      j.Key("blocks").BeginArray();
      for (const auto& b : p.blocks) {
        j.BeginObject()
            .Field("block", b.block)
            .Field("p", b.p)
            .Field("rank", b.rank)
            .Field("tier", PlanTierName(b.tier))
            .EndObject();
      }
      j.EndArray();
    }
    j.EndObject();
  }
  j.EndObject();
  *body = j.str();
  return Status::Ok();
}

Status ParseSnapshotArg(const std::string& text, uint64_t* snapshot) {
  *snapshot = 0;
  if (text == "-") return Status::Ok();
  auto id = ParseId(text);  // never 0: that would mean "latest"
  if (!id) {
    return Status::InvalidArgument("snapshot id '" + text +
                                   "' is not a valid id (16 hex digits, not all zeros)");
  }
  *snapshot = *id;
  return Status::Ok();
}

// Through the queue: joins the same work if it is already queued or running.
Status QueueAndWait(const ServiceEnv& env, const std::string& extension,
                    const PreassembleRequest& request, const std::string& reason,
                    PreassembleResult* out) {
  AssemblyTask task;
  task.extension = extension;
  task.request = request;
  task.reason = reason;
  return env.queue->Wait(env.queue->Submit(std::move(task)), env.progress, out);
}

Status ServeRestore(const ServiceEnv& env, const std::vector<std::string>& req, std::string* body) {
  KeyInfo info;
  SecretKey key;
  LSIFS_RETURN_IF_ERROR(LoadExtensionKey(env, req[1], &info, &key));
  LSIFS_RETURN_IF_ERROR(ValidateName("volume", req[2]));
  uint64_t snapshot = 0;
  LSIFS_RETURN_IF_ERROR(ParseSnapshotArg(req[3], &snapshot));
  PreassembleResult r;
  LSIFS_RETURN_IF_ERROR(Restore(
      *env.catalog, info, key, req[2], snapshot,
      [&](const PreassembleRequest& request, PreassembleResult* out) {
        return QueueAndWait(env, req[1], request, "restore", out);
      },
      &r));
  CatalogContext context;
  LSIFS_RETURN_IF_ERROR(WithContext(env, &context));
  return AssemblyReply(env, context, r, false, body);
}

//   preassemble EXT VOLUME STRATEGY PRIORITY BUDGET(bytes, 0 = default) EXPLAIN(0|1)
Status ServePreassemble(const ServiceEnv& env, const std::vector<std::string>& req,
                        std::string* body) {
  KeyInfo info;
  SecretKey key;
  LSIFS_RETURN_IF_ERROR(LoadExtensionKey(env, req[1], &info, &key));
  LSIFS_RETURN_IF_ERROR(ValidateName("volume", req[2]));
  PreassembleRequest request;
  request.volume = req[2];
  request.strategy = req[3];
  LSIFS_RETURN_IF_ERROR(ParsePriority(req[4], &request.priority));
  LSIFS_RETURN_IF_ERROR(ParseByteSize(req[5], &request.budget_bytes));
  PreassembleResult r;
  LSIFS_RETURN_IF_ERROR(QueueAndWait(env, req[1], request, "preassemble", &r));
  CatalogContext context;
  LSIFS_RETURN_IF_ERROR(WithContext(env, &context));
  return AssemblyReply(env, context, r, req[6] == "1", body);
}

Status ServeAssemblies(const ServiceEnv& env, std::string* body) {
  JsonWriter j;
  j.BeginArray();
  for (const auto& a : env.queue->List()) {
    j.BeginObject()
        .Field("id", a.id)
        .Field("extension", a.extension)
        .Field("volume", a.volume)
        .Field("snapshot", a.snapshot == 0 ? std::string("latest") : FormatId(a.snapshot))
        .Field("strategy", a.strategy)
        .Field("priority", PriorityName(a.priority))
        .Field("reason", a.reason)
        .Field("state", a.cancelling ? "cancelling"
                        : a.running  ? "running"
                                     : "queued")
        .Field("waiters", a.waiters)
        .Field("done_bytes", a.done_bytes)
        .Field("total_bytes", a.total_bytes);
    TimeOrNull(j, "queued", a.queued_at);
    TimeOrNull(j, "started", a.started_at);
    j.EndObject();
  }
  j.EndArray();
  *body = j.str();
  return Status::Ok();
}

Status ServeAssemblyCancel(const ServiceEnv& env, const std::string& id_text, std::string* body) {
  uint64_t id = 0;
  LSIFS_RETURN_IF_ERROR(ParseUnsigned(id_text, "assembly id", 0, UINT64_MAX, &id));
  LSIFS_RETURN_IF_ERROR(env.queue->Cancel(id));
  JsonWriter j;
  j.BeginObject().Field("cancelled", id).EndObject();
  *body = j.str();
  return Status::Ok();
}

// Sessions forwarded by a second mount of the store, written as its own
// recorder would have written them.
Status ServeSession(const ServiceEnv& env, const std::vector<std::string>& req, std::string* body) {
  LSIFS_RETURN_IF_ERROR(ValidateName("extension", req[1]));
  LSIFS_RETURN_IF_ERROR(ValidateName("volume", req[2]));
  return env.with_db([&](AccessDb* db) -> Status {
    if (db == nullptr) return Status::Unavailable("this lsifs does not hold the database");
    if (req[0] == "session-begin") {
      auto lsi = ParseId(req[3]);
      auto snapshot = ParseId(req[4]);
      if (!lsi || !snapshot) return Status::InvalidArgument("bad LSI or snapshot id");
      uint32_t number = 0;
      LSIFS_RETURN_IF_ERROR(db->BeginSession(req[1], req[2], *lsi, *snapshot, &number));
      *body = std::to_string(number);
      return Status::Ok();
    }
    uint64_t number = 0;
    LSIFS_RETURN_IF_ERROR(ParseUnsigned(req[3], "session number", 1, UINT32_MAX, &number));
    if (req[0] == "session-end") {
      uint64_t reads = 0, dropped = 0;
      LSIFS_RETURN_IF_ERROR(ParseUnsigned(req[4], "reads", 0, UINT64_MAX, &reads));
      LSIFS_RETURN_IF_ERROR(ParseUnsigned(req[5], "dropped", 0, UINT64_MAX, &dropped));
      LSIFS_RETURN_IF_ERROR(
          db->EndSession(req[1], req[2], static_cast<uint32_t>(number), reads, dropped));
      if (env.on_session_end) env.on_session_end(*db, req[2]);
      return Status::Ok();
    }
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(req[4], ec);
    if (ec || !v.is_array()) return Status::InvalidArgument("session events are not a JSON array");
    std::vector<LoggedEvent> events;
    for (const auto& item : v.as_array()) {
      const boost::json::array* e = item.if_array();
      if (e == nullptr || e->size() != 3) return Status::InvalidArgument("bad session event");
      uint64_t f[3];
      for (size_t i = 0; i < 3; ++i) {
        auto n = (*e)[i].to_number<uint64_t>(ec);
        if (ec) return Status::InvalidArgument("bad session event");
        f[i] = n;
      }
      if (f[0] > UINT32_MAX) return Status::InvalidArgument("bad session event");
      events.push_back({req[1],
                        req[2],
                        static_cast<uint32_t>(number),
                        static_cast<uint32_t>(f[0]),
                        {f[1], f[2]}});
    }
    return db->AppendEvents(events);
  });
}

Status ServeSnapshotAdded(const ServiceEnv& env, const std::string& volume) {
  LSIFS_RETURN_IF_ERROR(ValidateName("volume", volume));
  if (!env.preassemble) return Status::Ok();
  return env.with_db([&](AccessDb* db) -> Status {
    if (db != nullptr) QueuePreassemblies(env, *db, volume, "new snapshot");
    return Status::Ok();
  });
}

Status ServeGc(const ServiceEnv& env, std::string* body) {
  env.catalog->Sweep();
  CatalogContext context;
  LSIFS_RETURN_IF_ERROR(WithContext(env, &context));
  EvictionReport r;
  LSIFS_RETURN_IF_ERROR(env.catalog->Evict(context, &r));
  JsonWriter j;
  j.BeginObject().Key("dropped").BeginArray();
  for (const auto& v : r.dropped) {
    j.BeginObject()
        .Field("lsi", FormatId(v.lsi_id))
        .Field("bytes", v.bytes)
        .Field("why", v.why)
        .Field("deferred", v.deferred)
        .EndObject();
  }
  j.EndArray()
      .Field("freed", r.bytes_before - r.bytes_after)
      .Field("lsi_bytes_before", r.bytes_before)
      .Field("lsi_bytes_after", r.bytes_after)
      .Field("free_before", r.free_before)
      .Field("free_after", r.free_after)
      .Field("lsi_cap", r.cap)
      .Field("free_floor", r.floor)
      .Field("satisfied", r.satisfied)
      .EndObject();
  *body = j.str();
  return Status::Ok();
}

// Recall and precision of one past session, from its log, the delta blocks
// of the LSI it read and the base's present blocks. False when it cannot be
// judged (no log kept, LSI gone, nothing read from the volume's data).
bool JudgeSession(const ServiceEnv& env, AccessDb& db, const std::string& ext,
                  const std::string& vol, const SessionRecord& rec,
                  std::map<uint64_t, std::vector<uint64_t>>* present_cache, double* recall,
                  double* precision) {
  if (!rec.log_kept || rec.state == SessionState::kOpen) return false;
  Manifest m;
  if (!PeekManifest(env.store->manifest_path(rec.lsi), &m, ManifestPart::kWhole).ok()) return false;
  auto present = present_cache->find(rec.snapshot);
  if (present == present_cache->end()) {
    std::unique_ptr<SnapshotBlocks> sb;
    std::vector<uint64_t> blocks;
    if (SnapshotBlocks::Open(*env.store, *env.keys, vol, rec.snapshot, &sb).ok()) {
      for (const auto& loc : sb->map()) blocks.push_back(loc.block);
    }
    std::sort(blocks.begin(), blocks.end());
    present = present_cache->emplace(rec.snapshot, std::move(blocks)).first;
  }
  std::vector<AccessEvent> log;
  if (!db.SessionLog(ext, vol, rec.number, &log).ok()) return false;
  std::set<uint64_t> delta;
  for (const auto& l : m.layers) delta.insert(l.blocks.begin(), l.blocks.end());
  uint64_t from_delta = 0, from_base = 0;
  for (const auto& e : log) {
    if (delta.count(e.block)) {
      ++from_delta;
    } else if (std::binary_search(present->second.begin(), present->second.end(), e.block)) {
      ++from_base;
    }
  }
  if (from_delta + from_base == 0) return false;
  *recall = static_cast<double>(from_delta) / static_cast<double>(from_delta + from_base);
  // A base-only LSI prefetched nothing: its precision is undefined.
  *precision =
      delta.empty() ? -1 : static_cast<double>(from_delta) / static_cast<double>(delta.size());
  return true;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Status ServeStats(const ServiceEnv& env, std::string* body) {
  CatalogContext context;
  std::vector<SnapshotInfo> snaps;
  std::vector<std::string> damaged;  // counted by what can be read; lsictl verify names them
  LSIFS_RETURN_IF_ERROR(ListSnapshots(*env.store, *env.keys, "", &snaps, &damaged));
  // Per (volume, extension): sessions, and recall and precision of the
  // recent ones.
  struct Learned {
    uint32_t sessions = 0;
    std::vector<double> recall, precision;
  };
  std::map<std::pair<std::string, std::string>, Learned> learned;
  bool have_db = false;
  Status gathered = env.with_db([&](AccessDb* db) -> Status {
    LSIFS_RETURN_IF_ERROR(MakeCatalogContext(*env.store, *env.keys, db, &context));
    if (db == nullptr) return Status::Ok();
    have_db = true;
    std::vector<std::pair<std::string, std::string>> pairs;
    LSIFS_RETURN_IF_ERROR(db->ListPairs(&pairs));
    for (const auto& [ext, vol] : pairs) {
      if (ext == kAllExtensions) continue;
      std::vector<SessionRecord> sessions;
      LSIFS_RETURN_IF_ERROR(db->ListSessions(ext, vol, &sessions));
      Learned& l = learned[{vol, ext}];
      l.sessions = static_cast<uint32_t>(sessions.size());
      std::map<uint64_t, std::vector<uint64_t>> present;
      for (auto it = sessions.rbegin(); it != sessions.rend() && l.recall.size() < kRecentSessions;
           ++it) {
        double r = 0, p = 0;
        if (JudgeSession(env, *db, ext, vol, *it, &present, &r, &p)) {
          l.recall.push_back(r);
          if (p >= 0) l.precision.push_back(p);
        }
      }
    }
    return Status::Ok();
  });
  LSIFS_RETURN_IF_ERROR(gathered);
  std::vector<CatalogEntry> lsis;
  LSIFS_RETURN_IF_ERROR(env.catalog->List(context, &lsis));
  std::map<std::string, std::vector<const SnapshotInfo*>> by_volume;
  for (const auto& s : snaps) by_volume[s.volume].push_back(&s);
  for (const auto& e : lsis) by_volume[e.manifest.volume];
  for (const auto& [key, l] : learned) by_volume[key.first];

  struct PerExtension {
    std::map<std::string, std::pair<uint64_t, uint64_t>> states;  // state -> (count, bytes)
  };
  // Store-wide: every LSI, those unreadable (no volume known) too.
  std::map<std::string, std::pair<uint64_t, uint64_t>> all_states;
  uint64_t lsi_bytes = 0;
  for (const auto& e : lsis) {
    auto& all = all_states[LsiStateName(e.state)];
    ++all.first;
    all.second += e.bytes;
    lsi_bytes += e.bytes;
  }
  JsonWriter j;
  j.BeginObject().Key("volumes").BeginArray();
  for (const auto& [volume, list] : by_volume) {
    if (volume.empty()) continue;
    j.BeginObject().Field("volume", volume).Field("snapshots", static_cast<uint64_t>(list.size()));
    j.Key("latest_snapshot");
    if (!list.empty()) {
      j.String(FormatId(list.back()->id));
    } else {
      j.Null();
    }
    j.Field("size", list.empty() ? uint64_t{0} : list.back()->size)
        .Field("present_blocks", list.empty() ? uint64_t{0} : list.back()->present_blocks)
        .Field("stored_bytes", DirBytes(env.store->volume_dir(volume)));
    std::map<std::string, PerExtension> exts;
    for (const auto& e : lsis) {
      if (e.manifest.volume != volume) continue;
      auto& st = exts[e.manifest.extension].states[LsiStateName(e.state)];
      ++st.first;
      st.second += e.bytes;
    }
    for (const auto& [key, l] : learned) {
      if (key.first == volume) exts[key.second];
    }
    j.Key("extensions").BeginArray();
    for (const auto& [ext, pe] : exts) {
      j.BeginObject().Field("extension", ext).Key("lsis").BeginObject();
      uint64_t count = 0, bytes = 0;
      for (const auto& [state, cb] : pe.states) {
        j.Key(state).BeginObject().Field("count", cb.first).Field("bytes", cb.second).EndObject();
        count += cb.first;
        bytes += cb.second;
      }
      j.EndObject().Field("lsi_count", count).Field("lsi_bytes", bytes);
      // Restores as the extension's delivery record counts them.
      uint32_t restores = 0;
      KeyInfo info;
      SecretKey key;
      if (env.store->keyring().Load(ext, &info, &key).ok()) {
        restores = env.catalog->Restores(info, key, volume);
      }
      auto l = learned.find({volume, ext});
      j.Field("restores", restores).Field("sessions", l == learned.end() ? 0u : l->second.sessions);
      j.Field("judged_sessions",
              static_cast<uint64_t>(l == learned.end() ? 0 : l->second.recall.size()));
      j.Key("recall");
      if (l != learned.end() && !l->second.recall.empty()) {
        j.Double(Median(l->second.recall));
      } else {
        j.Null();
      }
      j.Key("precision");
      if (l != learned.end() && !l->second.precision.empty()) {
        j.Double(Median(l->second.precision));
      } else {
        j.Null();
      }
      j.EndObject();
    }
    j.EndArray().EndObject();
  }
  j.EndArray().Key("lsis").BeginObject();
  for (const auto& [state, cb] : all_states) {
    j.Key(state).BeginObject().Field("count", cb.first).Field("bytes", cb.second).EndObject();
  }
  struct statvfs fs;
  uint64_t free = ::statvfs(env.store->root().c_str(), &fs) == 0
                      ? static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize
                      : 0;
  uint64_t cap = 0, floor = 0;
  env.store->CurrentCaps(&cap, &floor);
  j.EndObject()
      .Field("lsi_bytes", lsi_bytes)
      .Field("lsi_cap", cap)
      .Field("free", free)
      .Field("free_floor", floor)
      .Field("learning_database", have_db)
      .EndObject();
  *body = j.str();
  return Status::Ok();
}

Status ServeAccess(const ServiceEnv& env, const std::vector<std::string>& request,
                   std::string* body) {
  if (request[1] != kAllExtensions) LSIFS_RETURN_IF_ERROR(ValidateName("extension", request[1]));
  LSIFS_RETURN_IF_ERROR(ValidateName("volume", request[2]));
  return env.with_db([&](AccessDb* db) -> Status {
    if (db == nullptr) return Status::Unavailable("the co-access database cannot be opened");
    if (request[0] == "access-show") {
      ShowRequest req;
      req.extension = request[1];
      req.volume = request[2];
      uint64_t session = 0;
      LSIFS_RETURN_IF_ERROR(ParseUnsigned(request[3], "session", 0, UINT32_MAX, &session));
      req.session = static_cast<uint32_t>(session);
      req.json = request[4] == "1";
      return RenderAccessShow(*db, req, body);
    }
    // Without a format, SVG: what lsictl asked before PNG existed.
    HeatmapFormat format = HeatmapFormat::kSvg;
    if (request.size() > 3) LSIFS_RETURN_IF_ERROR(ParseHeatmapFormat(request[3], &format));
    std::vector<SnapshotInfo> snaps;
    LSIFS_RETURN_IF_ERROR(ListSnapshots(*env.store, *env.keys, request[2], &snaps));
    if (snaps.empty()) return Status::NotFound("volume '" + request[2] + "' has no snapshots");
    const SnapshotInfo& latest = snaps.back();
    HeatmapRequest req;
    req.extension = request[1];
    req.volume = request[2];
    req.snapshot = latest.id;
    req.volume_blocks = latest.block_count();
    req.block_size = latest.block_size;
    // The map is streamed: memory stays bounded by the grid, whatever the
    // volume's size.
    req.present = [&](const std::function<void(uint64_t)>& visit) -> Status {
      SnapshotMapReader map;
      LSIFS_RETURN_IF_ERROR(
          map.Open(env.store->snapshot_map_path(latest.volume, latest.id), *env.keys));
      BlockLocation loc;
      while (map.Next(&loc)) visit(loc.block);
      return map.status();
    };
    return RenderHeatmap(*db, req, format, body);
  });
}

}  // namespace

SessionPolicy MakeSessionPolicy(const Store& store, const OriginKeys& keys, bool learn_sequential) {
  SessionPolicy policy;
  policy.learn_sequential = learn_sequential;
  policy.present_blocks = [&store, &keys](const std::string& volume, uint64_t snapshot) {
    SnapshotInfo info;
    return ReadSnapshotInfo(store.snapshot_map_path(volume, snapshot), keys, &info).ok()
               ? info.present_blocks
               : uint64_t{0};
  };
  return policy;
}

Status MakeCatalogContext(const Store& store, const OriginKeys& keys, AccessDb* db,
                          CatalogContext* out) {
  *out = CatalogContext();
  out->now = static_cast<int64_t>(std::time(nullptr));
  // A damaged snapshot file does not stop the listing: its volume's latest
  // readable snapshot stands for its latest here (a restore of "latest"
  // refuses while the file is damaged, see the assembler).
  std::vector<SnapshotInfo> snaps;
  std::vector<std::string> damaged;
  LSIFS_RETURN_IF_ERROR(ListSnapshots(store, keys, "", &snaps, &damaged));
  for (const auto& s : snaps) out->latest_snapshot[s.volume] = s.id;  // oldest first
  if (db == nullptr) return Status::Ok();
  std::vector<std::pair<std::string, std::string>> pairs;
  LSIFS_RETURN_IF_ERROR(db->ListPairs(&pairs));
  for (const auto& pair : pairs) {
    ModelMeta meta;
    LSIFS_RETURN_IF_ERROR(db->LoadMeta(pair.first, pair.second, &meta));
    out->model_sessions[pair] = meta.sessions;
  }
  LSIFS_RETURN_IF_ERROR(db->RelearnedTimes(&out->relearned_at));
  out->models_known = true;
  return Status::Ok();
}

AssemblyQueue::Work MakeAssemblyWork(const ServiceEnv& env) {
  return [&env](const AssemblyTask& task, const std::atomic<LinkClass>* cls,
                const std::atomic<bool>* cancel,
                const std::function<void(uint64_t, uint64_t)>& progress,
                PreassembleResult* out) -> Status {
    KeyInfo info;
    SecretKey key;
    LSIFS_RETURN_IF_ERROR(LoadExtensionKey(env, task.extension, &info, &key));
    // What was learned is read when the assembly starts: the freshest.
    CatalogContext context;
    LearnedModels models;
    LSIFS_RETURN_IF_ERROR(Gather(env, task.extension, task.request.volume, &context, &models));
    PreassembleRequest request = task.request;
    request.cancel = cancel;
    request.request_bytes = env.link->AssemblyRequestBytes();
    request.fetch_window = env.link->Window(request.request_bytes);
    std::unique_ptr<Origin> origin = env.link->As(cls);
    return PreAssembleSnapshot(*env.catalog, *origin, *env.keys, info, key, models, context,
                               request, progress, out);
  };
}

void QueuePreassemblies(const ServiceEnv& env, AccessDb& db, const std::string& volume,
                        const std::string& reason) {
  std::vector<std::pair<std::string, std::string>> pairs;
  if (!db.ListPairs(&pairs).ok()) return;
  for (const auto& [ext, vol] : pairs) {
    KeyInfo info;
    SecretKey key;
    if (vol != volume || ext == kAllExtensions ||
        !env.store->keyring().Load(ext, &info, &key).ok()) {
      continue;
    }
    AssemblyTask task;
    task.extension = ext;
    task.request.volume = volume;
    task.request.priority = Priority::kLow;
    task.reason = reason;
    (void)env.queue->Submit(std::move(task), /*waited=*/false);
  }
}

// access-forget EXT VOLUME N | access-reset EXT VOLUME: the models are
// learned again without what is forgotten, and what depends on them (the
// successor tables, pre-assembly) follows as after a session's end.
// access-forget-volume VOLUME: everything learned of a deleted volume goes.
Status ServeForget(const ServiceEnv& env, const std::vector<std::string>& request,
                   std::string* body) {
  if (request[0] == "access-forget-volume") {
    const std::string& volume = request[1];
    LSIFS_RETURN_IF_ERROR(ValidateName("volume", volume));
    return env.with_db([&](AccessDb* db) -> Status {
      if (db == nullptr) return Status::Unavailable("the co-access database cannot be opened");
      uint32_t removed = 0;
      LSIFS_RETURN_IF_ERROR(db->ForgetVolume(volume, &removed));
      if (env.on_session_end) env.on_session_end(*db, volume);
      JsonWriter j;
      j.BeginObject().Field("volume", volume).Field("removed_sessions", removed).EndObject();
      *body = j.str() + "\n";
      return Status::Ok();
    });
  }
  const std::string& ext = request[1];
  const std::string& volume = request[2];
  LSIFS_RETURN_IF_ERROR(ValidateName("extension", ext));
  LSIFS_RETURN_IF_ERROR(ValidateName("volume", volume));
  uint64_t session = 0;
  if (request[0] == "access-forget") {
    LSIFS_RETURN_IF_ERROR(ParseUnsigned(request[3], "session", 1, UINT32_MAX, &session));
  }
  return env.with_db([&](AccessDb* db) -> Status {
    if (db == nullptr) return Status::Unavailable("the co-access database cannot be opened");
    Relearned own, volume_wide;
    uint32_t removed = 0;
    if (session != 0) {
      LSIFS_RETURN_IF_ERROR(db->Forget(ext, volume, static_cast<uint32_t>(session), &own));
    } else {
      LSIFS_RETURN_IF_ERROR(db->Reset(ext, volume, &removed, &volume_wide));
    }
    if (env.on_session_end) env.on_session_end(*db, volume);
    JsonWriter j;
    j.BeginObject().Field("extension", ext).Field("volume", volume);
    if (session != 0) {
      j.Field("forgotten", session)
          .Field("relearned_sessions", own.sessions)
          .Field("lost_without_log", own.without_log);
    } else {
      j.Field("removed_sessions", removed);
    }
    j.EndObject();
    *body = j.str() + "\n";
    return Status::Ok();
  });
}

Status ServeRequest(const ServiceEnv& env, const std::vector<std::string>& request,
                    std::string* body) {
  const std::string verb = request.empty() ? "" : request[0];
  const size_t n = request.size();
  if ((verb == "access-show" && n == 5) || (verb == "access-heatmap" && (n == 3 || n == 4))) {
    return ServeAccess(env, request, body);
  }
  if ((verb == "access-forget" && n == 4) || (verb == "access-reset" && n == 3) ||
      (verb == "access-forget-volume" && n == 2)) {
    return ServeForget(env, request, body);
  }
  if (verb == "restore" && n == 4) return ServeRestore(env, request, body);
  if (verb == "preassemble" && n == 7) return ServePreassemble(env, request, body);
  if (verb == "lsi-list" && n == 1) return ServeLsiList(env, body);
  if (verb == "lsi-show" && n == 2) return ServeLsiShow(env, request[1], body);
  if (verb == "gc" && n == 1) return ServeGc(env, body);
  if (verb == "stats" && n == 1) return ServeStats(env, body);
  if (verb == "assemblies" && n == 1) return ServeAssemblies(env, body);
  if (verb == "assembly-cancel" && n == 2) return ServeAssemblyCancel(env, request[1], body);
  if (verb == "snapshot-added" && n == 2) return ServeSnapshotAdded(env, request[1]);
  if ((verb == "session-begin" && n == 5) || (verb == "session-events" && n == 5) ||
      (verb == "session-end" && n == 6)) {
    return ServeSession(env, request, body);
  }
  return Status::InvalidArgument("unknown request '" + verb + "'");
}

}  // namespace lsifs
