#include "core/access/access_db.h"

#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <unordered_map>

#include "core/util/names.h"
#include "core/util/numbers.h"

namespace lsifs {
namespace {

constexpr size_t kNameField = 64;
constexpr uint8_t kSessionVersion = 1;
// The schema as a whole (keys and their records), in "meta/format".
constexpr char kSchemaVersion[] = "1";

void PutName(std::string* key, const std::string& name) {
  std::string field(kNameField, '\0');
  std::memcpy(field.data(), name.data(), std::min(name.size(), kNameField));
  key->append(field);
}
void PutBe32(std::string* key, uint32_t v) {
  for (int i = 3; i >= 0; --i) key->push_back(static_cast<char>(v >> (8 * i)));
}
void PutBe64(std::string* key, uint64_t v) {
  uint8_t b[8];
  EncodeBigEndian64(b, v);
  key->append(reinterpret_cast<char*>(b), 8);
}
uint32_t GetBe32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
std::string GetName(const char* p) {
  size_t n = 0;
  while (n < kNameField && p[n] != '\0') ++n;
  return std::string(p, n);
}

std::string PairPrefix(char tag, const std::string& ext, const std::string& vol) {
  std::string k(1, tag);
  PutName(&k, ext);
  PutName(&k, vol);
  return k;
}
std::string SessionKey(const std::string& ext, const std::string& vol, uint32_t n) {
  std::string k = PairPrefix('S', ext, vol);
  PutBe32(&k, n);
  return k;
}
std::string LogPrefix(const std::string& ext, const std::string& vol, uint32_t n) {
  std::string k = PairPrefix('L', ext, vol);
  PutBe32(&k, n);
  return k;
}
std::string StatsKey(const std::string& ext, const std::string& vol, uint64_t block) {
  std::string k = PairPrefix('F', ext, vol);
  PutBe64(&k, block);
  return k;
}

std::string EncodeSession(const SessionRecord& s) {
  ByteWriter w;
  w.PutU8(kSessionVersion);
  w.PutU64(s.lsi);
  w.PutU64(s.snapshot);
  w.PutU64(static_cast<uint64_t>(s.started_us));
  w.PutU64(static_cast<uint64_t>(s.ended_us));
  w.PutU8(static_cast<uint8_t>(s.state));
  w.PutU64(s.events);
  w.PutU64(s.reads);
  w.PutU64(s.dropped);
  // Bits a reader does not know are ignored: new ones stay compatible.
  w.PutU8(static_cast<uint8_t>((s.folded ? 1 : 0) | (s.log_kept ? 2 : 0) | (s.sequential ? 4 : 0) |
                               (s.forgotten ? 8 : 0)));
  return std::string(w.bytes().begin(), w.bytes().end());
}

Status DecodeSession(const leveldb::Slice& v, SessionRecord* s) {
  ByteReader r(ByteSpan(reinterpret_cast<const uint8_t*>(v.data()), v.size()));
  if (r.GetU8() != kSessionVersion) return Status::Corruption("session record: bad version");
  s->lsi = r.GetU64();
  s->snapshot = r.GetU64();
  s->started_us = static_cast<int64_t>(r.GetU64());
  s->ended_us = static_cast<int64_t>(r.GetU64());
  uint8_t state = r.GetU8();
  s->events = r.GetU64();
  s->reads = r.GetU64();
  s->dropped = r.GetU64();
  uint8_t flags = r.GetU8();
  if (!r.ok() || r.remaining() != 0 || state > 2)
    return Status::Corruption("session record: bad length");
  s->state = static_cast<SessionState>(state);
  s->folded = flags & 1;
  s->log_kept = flags & 2;
  s->sequential = flags & 4;
  s->forgotten = flags & 8;
  return Status::Ok();
}

Status FromLevelDb(const leveldb::Status& s, const char* what) {
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return Status::NotFound(what);
  if (s.IsCorruption()) return Status::Corruption(std::string(what) + ": " + s.ToString());
  return Status::IOError(std::string(what) + ": " + s.ToString());
}

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

ByteSpan AsSpan(const leveldb::Slice& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

Status AccessDb::Open(const std::string& dir, const CoAccessSettings& settings,
                      std::unique_ptr<AccessDb>* out, SessionPolicy policy) {
  leveldb::Options options;
  options.create_if_missing = true;
  leveldb::DB* db = nullptr;
  leveldb::Status s = leveldb::DB::Open(options, dir, &db);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return Status::Unavailable("the co-access database " + dir +
                                 " is in use by another process (a running lsifs?)");
    }
    return FromLevelDb(s, "opening the co-access database");
  }
  // The schema's version: written when the store was made (a database
  // that lacks it, made before or lost, gets it now).
  std::string format;
  leveldb::Status ls = db->Get(leveldb::ReadOptions(), "meta/format", &format);
  if (ls.IsNotFound()) {
    format = kSchemaVersion;
    ls = db->Put(leveldb::WriteOptions(), "meta/format", format);
  }
  if (!ls.ok() || format != kSchemaVersion) {
    delete db;
    if (!ls.ok()) return FromLevelDb(ls, "reading the co-access database's format");
    uint64_t version = 0;
    (void)ParseUnsigned(format, "version", 0, UINT32_MAX, &version);
    return UnsupportedVersion("the co-access database " + dir, version, 1, 1);
  }
  CoAccessParams params;
  std::string stored;
  ls = db->Get(leveldb::ReadOptions(), "meta/params", &stored);
  if (ls.ok()) {
    Status st = CoAccessParams::Decode(AsSpan(stored), &params);
    if (!st.ok()) {
      delete db;
      return st;
    }
  }
  if (!settings.empty()) {
    settings.ApplyTo(&params);
    Bytes enc = params.Encode();
    ls = db->Put(leveldb::WriteOptions(), "meta/params",
                 leveldb::Slice(reinterpret_cast<const char*>(enc.data()), enc.size()));
    if (!ls.ok()) {
      delete db;
      return FromLevelDb(ls, "writing statistics parameters");
    }
  }
  std::unique_ptr<AccessDb> adb(new AccessDb(db, params, std::move(policy)));
  LSIFS_RETURN_IF_ERROR(adb->Recover());
  *out = std::move(adb);
  return Status::Ok();
}

AccessDb::~AccessDb() {
  delete db_;
}

Status AccessDb::Recover() {
  std::vector<std::pair<std::string, std::string>> pairs;
  LSIFS_RETURN_IF_ERROR(ListPairs(&pairs));
  for (const auto& [ext, vol] : pairs) {
    std::vector<SessionRecord> sessions;
    LSIFS_RETURN_IF_ERROR(ListSessions(ext, vol, &sessions));
    for (const auto& s : sessions) {
      if (s.state == SessionState::kOpen || !s.folded) {
        LSIFS_RETURN_IF_ERROR(
            FinishSession(ext, vol, s.number, s.reads, s.dropped, SessionState::kRecovered));
      }
    }
  }
  return Status::Ok();
}

Status AccessDb::BeginSession(const std::string& ext, const std::string& vol, uint64_t lsi,
                              uint64_t snapshot, uint32_t* number) {
  // Sessions are numbered per (extension, volume): one past the last.
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  std::string prefix = PairPrefix('S', ext, vol);
  std::string upper = prefix;
  PutBe32(&upper, UINT32_MAX);
  it->Seek(upper);
  uint32_t last = 0;
  if (!it->Valid()) {
    it->SeekToLast();
  } else {
    it->Prev();
  }
  if (it->Valid() && it->key().starts_with(prefix) && it->key().size() == prefix.size() + 4) {
    last = GetBe32(it->key().data() + prefix.size());
  }
  SessionRecord rec;
  rec.number = last + 1;
  rec.lsi = lsi;
  rec.snapshot = snapshot;
  rec.started_us = NowUs();
  LSIFS_RETURN_IF_ERROR(FromLevelDb(
      db_->Put(leveldb::WriteOptions(), SessionKey(ext, vol, rec.number), EncodeSession(rec)),
      "recording a session"));
  *number = rec.number;
  return Status::Ok();
}

Status AccessDb::AppendEvents(const std::vector<LoggedEvent>& events) {
  leveldb::WriteBatch batch;
  for (const auto& e : events) {
    std::string k = LogPrefix(e.extension, e.volume, e.session);
    PutBe32(&k, e.seq);
    uint8_t v[16];
    EncodeFixed64(v, e.event.block);
    EncodeFixed64(v + 8, e.event.t_us);
    batch.Put(k, leveldb::Slice(reinterpret_cast<char*>(v), sizeof v));
  }
  return FromLevelDb(db_->Write(leveldb::WriteOptions(), &batch), "recording accesses");
}

Status AccessDb::SessionLog(const std::string& ext, const std::string& vol, uint32_t number,
                            std::vector<AccessEvent>* out) {
  out->clear();
  std::string prefix = LogPrefix(ext, vol, number);
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->value().size() != 16) return Status::Corruption("access log entry of the wrong size");
    const uint8_t* p = reinterpret_cast<const uint8_t*>(it->value().data());
    out->push_back({DecodeFixed64(p), DecodeFixed64(p + 8)});
  }
  return FromLevelDb(it->status(), "reading an access log");
}

Status AccessDb::ListSessions(const std::string& ext, const std::string& vol,
                              std::vector<SessionRecord>* out) {
  out->clear();
  std::string prefix = PairPrefix('S', ext, vol);
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->key().size() != prefix.size() + 4) continue;
    SessionRecord rec;
    LSIFS_RETURN_IF_ERROR(DecodeSession(it->value(), &rec));
    rec.number = GetBe32(it->key().data() + prefix.size());
    out->push_back(rec);
  }
  return FromLevelDb(it->status(), "listing sessions");
}

Status AccessDb::ListPairs(std::vector<std::pair<std::string, std::string>>* out) {
  out->clear();
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  const size_t pair_len = 1 + 2 * kNameField;
  for (it->Seek("S"); it->Valid() && it->key().starts_with("S");) {
    if (it->key().size() < pair_len) {
      it->Next();
      continue;
    }
    std::string ext = GetName(it->key().data() + 1);
    std::string vol = GetName(it->key().data() + 1 + kNameField);
    out->emplace_back(ext, vol);
    std::string next = PairPrefix('S', ext, vol);
    PutBe32(&next, UINT32_MAX);
    next.push_back('\xff');
    it->Seek(next);
  }
  return FromLevelDb(it->status(), "listing sessions");
}

Status AccessDb::FinishSession(const std::string& ext, const std::string& vol, uint32_t number,
                               uint64_t reads, uint64_t dropped, SessionState state) {
  std::string key = SessionKey(ext, vol, number);
  std::string value;
  LSIFS_RETURN_IF_ERROR(FromLevelDb(db_->Get(leveldb::ReadOptions(), key, &value), "session"));
  SessionRecord rec;
  LSIFS_RETURN_IF_ERROR(DecodeSession(value, &rec));
  std::vector<AccessEvent> log;
  LSIFS_RETURN_IF_ERROR(SessionLog(ext, vol, number, &log));
  if (rec.state == SessionState::kOpen) {
    rec.state = state;
    rec.ended_us = NowUs();
    rec.reads = std::max(rec.reads, reads);
    rec.dropped = std::max(rec.dropped, dropped);
  }
  rec.events = log.size();
  // The statistics of both models and the session record change in one
  // atomic batch, so that a crash never folds a session twice.
  leveldb::WriteBatch batch;
  ModelMeta own, all;
  bool folded_now = !rec.folded;
  if (folded_now) {
    std::vector<uint64_t> order;
    order.reserve(log.size());
    for (const auto& e : log) order.push_back(e.block);
    const uint64_t present = policy_.present_blocks ? policy_.present_blocks(vol, rec.snapshot) : 0;
    rec.sequential = IsSequentialWholeRead(order, present);
    if (rec.sequential && !policy_.learn_sequential) {
      folded_now = false;  // handled: nothing to learn from a copy
    } else {
      LSIFS_RETURN_IF_ERROR(Fold(ext, vol, order, &batch, &own));
      LSIFS_RETURN_IF_ERROR(Fold(kAllExtensions, vol, order, &batch, &all));
      rec.sequential = false;  // learned from, as asked
    }
    rec.folded = true;
  }
  batch.Put(key, EncodeSession(rec));
  LSIFS_RETURN_IF_ERROR(
      FromLevelDb(db_->Write(leveldb::WriteOptions(), &batch), "ending a session"));
  if (folded_now && own.blocks > params_.max_blocks)
    LSIFS_RETURN_IF_ERROR(EnforceCap(ext, vol, &own));
  if (folded_now && all.blocks > params_.max_blocks) {
    LSIFS_RETURN_IF_ERROR(EnforceCap(kAllExtensions, vol, &all));
  }

  // Retention: raw logs of the last keep_sessions sessions only.
  if (number > params_.keep_sessions) {
    std::vector<SessionRecord> sessions;
    LSIFS_RETURN_IF_ERROR(ListSessions(ext, vol, &sessions));
    for (auto& s : sessions) {
      if (!s.log_kept || s.state == SessionState::kOpen ||
          s.number + params_.keep_sessions > number) {
        continue;
      }
      leveldb::WriteBatch drop;
      std::string prefix = LogPrefix(ext, vol, s.number);
      std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        drop.Delete(it->key());
      }
      s.log_kept = false;
      drop.Put(SessionKey(ext, vol, s.number), EncodeSession(s));
      LSIFS_RETURN_IF_ERROR(FromLevelDb(db_->Write(leveldb::WriteOptions(), &drop), "retention"));
    }
  }
  return Status::Ok();
}

Status AccessDb::Fold(const std::string& ext, const std::string& vol,
                      const std::vector<uint64_t>& order, leveldb::WriteBatch* batch,
                      ModelMeta* meta) {
  std::string meta_key = PairPrefix('M', ext, vol);
  *meta = ModelMeta();
  std::string value;
  leveldb::Status ls = db_->Get(leveldb::ReadOptions(), meta_key, &value);
  if (ls.ok()) {
    LSIFS_RETURN_IF_ERROR(ModelMeta::Decode(AsSpan(value), meta));
  } else if (!ls.IsNotFound()) {
    return FromLevelDb(ls, "reading statistics");
  }
  std::unordered_map<uint64_t, BlockStats> stats;
  for (uint64_t b : order) {
    ls = db_->Get(leveldb::ReadOptions(), StatsKey(ext, vol, b), &value);
    if (ls.ok()) {
      LSIFS_RETURN_IF_ERROR(BlockStats::Decode(AsSpan(value), &stats[b]));
    } else if (!ls.IsNotFound()) {
      return FromLevelDb(ls, "reading statistics");
    }
  }
  FoldSession(order, params_, meta, &stats);
  for (const auto& [b, st] : stats) {
    Bytes enc = st.Encode();
    batch->Put(StatsKey(ext, vol, b),
               leveldb::Slice(reinterpret_cast<const char*>(enc.data()), enc.size()));
  }
  Bytes enc = meta->Encode();
  batch->Put(meta_key, leveldb::Slice(reinterpret_cast<const char*>(enc.data()), enc.size()));
  return Status::Ok();
}

Status AccessDb::EnforceCap(const std::string& ext, const std::string& vol, ModelMeta* meta) {
  // Keeps the max_blocks blocks most likely to be read: drops the lowest
  // decayed weights.
  ModelMeta stored;
  std::vector<std::pair<uint64_t, BlockStats>> blocks;
  LSIFS_RETURN_IF_ERROR(LoadModel(ext, vol, &stored, &blocks));
  leveldb::WriteBatch batch;
  if (blocks.size() > params_.max_blocks) {
    std::vector<std::pair<double, uint64_t>> by_weight;
    for (const auto& [b, st] : blocks)
      by_weight.emplace_back(st.WeightAt(meta->sessions, params_), b);
    size_t excess = blocks.size() - params_.max_blocks;
    std::nth_element(by_weight.begin(), by_weight.begin() + static_cast<long>(excess),
                     by_weight.end());
    for (size_t i = 0; i < excess; ++i) batch.Delete(StatsKey(ext, vol, by_weight[i].second));
  }
  meta->blocks = std::min<uint64_t>(blocks.size(), params_.max_blocks);
  Bytes enc = meta->Encode();
  batch.Put(PairPrefix('M', ext, vol),
            leveldb::Slice(reinterpret_cast<const char*>(enc.data()), enc.size()));
  return FromLevelDb(db_->Write(leveldb::WriteOptions(), &batch), "capping statistics");
}

Status AccessDb::LoadMeta(const std::string& ext, const std::string& vol, ModelMeta* meta) {
  *meta = ModelMeta();
  std::string value;
  leveldb::Status ls = db_->Get(leveldb::ReadOptions(), PairPrefix('M', ext, vol), &value);
  if (ls.ok()) return ModelMeta::Decode(AsSpan(value), meta);
  return ls.IsNotFound() ? Status::Ok() : FromLevelDb(ls, "reading statistics");
}

Status AccessDb::LoadModel(const std::string& ext, const std::string& vol, ModelMeta* meta,
                           std::vector<std::pair<uint64_t, BlockStats>>* blocks) {
  blocks->clear();
  LSIFS_RETURN_IF_ERROR(LoadMeta(ext, vol, meta));
  std::string prefix = PairPrefix('F', ext, vol);
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->key().size() != prefix.size() + 8) continue;
    BlockStats st;
    LSIFS_RETURN_IF_ERROR(BlockStats::Decode(AsSpan(it->value()), &st));
    blocks->emplace_back(
        DecodeBigEndian64(reinterpret_cast<const uint8_t*>(it->key().data() + prefix.size())),
        std::move(st));
  }
  return FromLevelDb(it->status(), "reading statistics");
}

Status AccessDb::Relearn(const std::string& ext, const std::string& vol, Relearned* out) {
  *out = Relearned();
  // The sessions to learn from, oldest first (the volume's model takes
  // every extension's).
  std::vector<std::pair<int64_t, std::pair<std::string, SessionRecord>>> sessions;
  std::vector<std::pair<std::string, std::string>> pairs;
  if (ext == kAllExtensions) {
    LSIFS_RETURN_IF_ERROR(ListPairs(&pairs));
  } else {
    pairs.emplace_back(ext, vol);
  }
  for (const auto& [e, v] : pairs) {
    if (v != vol || e == kAllExtensions) continue;
    std::vector<SessionRecord> list;
    LSIFS_RETURN_IF_ERROR(ListSessions(e, v, &list));
    for (auto rec : list) {
      if (!rec.learned()) continue;
      if (!rec.log_kept) {
        ++out->without_log;
        // Its part of the extension's model is gone with its log: say so.
        if (ext != kAllExtensions) {
          rec.forgotten = true;
          LSIFS_RETURN_IF_ERROR(FromLevelDb(
              db_->Put(leveldb::WriteOptions(), SessionKey(e, v, rec.number), EncodeSession(rec)),
              "relearning"));
        }
        continue;
      }
      sessions.push_back({rec.started_us, {e, rec}});
    }
  }
  std::sort(sessions.begin(), sessions.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  // The old model goes in one batch, then each session is folded in its own
  // (Fold reads what the previous one wrote).
  leveldb::WriteBatch clear;
  const std::string prefix = PairPrefix('F', ext, vol);
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    clear.Delete(it->key());
  }
  LSIFS_RETURN_IF_ERROR(FromLevelDb(it->status(), "reading statistics"));
  clear.Delete(PairPrefix('M', ext, vol));
  LSIFS_RETURN_IF_ERROR(FromLevelDb(db_->Write(leveldb::WriteOptions(), &clear), "relearning"));
  ModelMeta meta;
  for (const auto& [started, session] : sessions) {
    std::vector<AccessEvent> log;
    LSIFS_RETURN_IF_ERROR(SessionLog(session.first, vol, session.second.number, &log));
    std::vector<uint64_t> order;
    order.reserve(log.size());
    for (const auto& e : log) order.push_back(e.block);
    leveldb::WriteBatch batch;
    LSIFS_RETURN_IF_ERROR(Fold(ext, vol, order, &batch, &meta));
    LSIFS_RETURN_IF_ERROR(FromLevelDb(db_->Write(leveldb::WriteOptions(), &batch), "relearning"));
    ++out->sessions;
  }
  if (meta.blocks > params_.max_blocks) LSIFS_RETURN_IF_ERROR(EnforceCap(ext, vol, &meta));
  return Status::Ok();
}

Status AccessDb::Forget(const std::string& ext, const std::string& vol, uint32_t number,
                        Relearned* out) {
  std::string key = SessionKey(ext, vol, number);
  std::string value;
  Status got = FromLevelDb(db_->Get(leveldb::ReadOptions(), key, &value), "session");
  if (got.IsNotFound()) {
    return Status::NotFound("extension '" + ext + "' has no session " + std::to_string(number) +
                            " of '" + vol + "' (see: lsictl access show -e " + ext + " -v " + vol +
                            ")");
  }
  LSIFS_RETURN_IF_ERROR(got);
  SessionRecord rec;
  LSIFS_RETURN_IF_ERROR(DecodeSession(value, &rec));
  if (rec.state == SessionState::kOpen) {
    return Status::Unavailable("session " + std::to_string(number) +
                               " is still open; forget it once it has ended");
  }
  if (!rec.forgotten) {
    rec.forgotten = true;
    LSIFS_RETURN_IF_ERROR(
        FromLevelDb(db_->Put(leveldb::WriteOptions(), key, EncodeSession(rec)), "forgetting"));
  }
  Relearned volume_wide;
  LSIFS_RETURN_IF_ERROR(Relearn(ext, vol, out));
  LSIFS_RETURN_IF_ERROR(Relearn(kAllExtensions, vol, &volume_wide));
  return MarkRelearned(ext, vol);
}

Status AccessDb::Reset(const std::string& ext, const std::string& vol, uint32_t* removed,
                       Relearned* volume_model) {
  *removed = 0;
  std::vector<SessionRecord> sessions;
  LSIFS_RETURN_IF_ERROR(ListSessions(ext, vol, &sessions));
  for (const auto& rec : sessions) {
    if (rec.state == SessionState::kOpen) {
      return Status::Unavailable("session " + std::to_string(rec.number) + " of '" + ext +
                                 "' on '" + vol + "' is still open; reset once it has ended");
    }
  }
  leveldb::WriteBatch batch;
  for (char kind : {'S', 'L', 'F', 'M'}) {
    const std::string prefix = PairPrefix(kind, ext, vol);
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      batch.Delete(it->key());
    }
    LSIFS_RETURN_IF_ERROR(FromLevelDb(it->status(), "reading the access log"));
  }
  LSIFS_RETURN_IF_ERROR(FromLevelDb(db_->Write(leveldb::WriteOptions(), &batch), "resetting"));
  *removed = static_cast<uint32_t>(sessions.size());
  LSIFS_RETURN_IF_ERROR(Relearn(kAllExtensions, vol, volume_model));
  return MarkRelearned(ext, vol);
}

Status AccessDb::FindUpload(const std::string& ext, const std::string& vol, const std::string& key,
                            uint32_t* number) {
  *number = 0;
  if (key.empty() || key.size() > 128)
    return Status::InvalidArgument("an upload key is 1 to 128 bytes");
  std::string value;
  leveldb::Status ls = db_->Get(leveldb::ReadOptions(), PairPrefix('U', ext, vol) + key, &value);
  if (ls.IsNotFound()) return Status::Ok();
  LSIFS_RETURN_IF_ERROR(FromLevelDb(ls, "reading an upload record"));
  if (value.size() != 4) return Status::Corruption("an upload record is not 4 bytes");
  *number = DecodeFixed32(reinterpret_cast<const uint8_t*>(value.data()));
  return Status::Ok();
}

Status AccessDb::RecordUpload(const std::string& ext, const std::string& vol,
                              const std::string& key, uint32_t number) {
  if (key.empty() || key.size() > 128)
    return Status::InvalidArgument("an upload key is 1 to 128 bytes");
  uint8_t v[4];
  EncodeFixed32(v, number);
  return FromLevelDb(db_->Put(leveldb::WriteOptions(), PairPrefix('U', ext, vol) + key,
                              leveldb::Slice(reinterpret_cast<char*>(v), sizeof v)),
                     "recording an upload");
}

Status AccessDb::MarkRelearned(const std::string& ext, const std::string& vol) {
  uint8_t v[8];
  EncodeFixed64(v, static_cast<uint64_t>(NowUs() / 1000000));
  return FromLevelDb(db_->Put(leveldb::WriteOptions(), PairPrefix('R', ext, vol),
                              leveldb::Slice(reinterpret_cast<char*>(v), sizeof v)),
                     "relearning");
}

Status AccessDb::RelearnedTimes(std::map<std::pair<std::string, std::string>, int64_t>* out) {
  out->clear();
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  const size_t key_len = 1 + 2 * kNameField;
  for (it->Seek("R"); it->Valid() && it->key().starts_with("R"); it->Next()) {
    if (it->key().size() != key_len || it->value().size() != 8) continue;
    (*out)[{GetName(it->key().data() + 1), GetName(it->key().data() + 1 + kNameField)}] =
        static_cast<int64_t>(DecodeFixed64(reinterpret_cast<const uint8_t*>(it->value().data())));
  }
  return FromLevelDb(it->status(), "reading when models were learned again");
}

Status AccessDb::ForgetVolume(const std::string& vol, uint32_t* removed) {
  *removed = 0;
  std::vector<std::pair<std::string, std::string>> pairs;
  LSIFS_RETURN_IF_ERROR(ListPairs(&pairs));
  for (const auto& [ext, v] : pairs) {
    if (v != vol) continue;
    uint32_t n = 0;
    Relearned ignored;
    LSIFS_RETURN_IF_ERROR(Reset(ext, vol, &n, &ignored));
    *removed += n;
  }
  Relearned none;
  return Relearn(kAllExtensions, vol, &none);  // no session left: the model goes
}

}  // namespace lsifs
