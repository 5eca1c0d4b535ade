// The co-access database: LevelDB in STORE/db holding, per (extension,
// volume), the sessions, their raw first-access logs, and the statistics of
// coaccess.h, also kept volume-wide under the pseudo-extension "*".
//
// Key schema (fixed-width fields, numbers big-endian so that byte order is
// numeric order; names NUL-padded to 64 bytes; documented in man/lsi.5):
//
//   'S' ext[64] vol[64] session:u32            session record
//   'L' ext[64] vol[64] session:u32 seq:u32    one first access: block:u64 t_us:u64 (LE)
//   'F' ext[64] vol[64] block:u64              BlockStats
//   'M' ext[64] vol[64]                        ModelMeta
//   'R' ext[64] vol[64]                        when the model was last learned
//                                              again (forget, reset): unix s, u64 LE
//   'U' ext[64] vol[64] key                    a session upload (two-site form): the
//                                              session number it became, u32 LE
//   "meta/format"                              "1"
//   "meta/params"                              CoAccessParams
//
// Only one process opens the database (LevelDB's lock): the running lsifs,
// or lsictl when no lsifs runs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/access/coaccess.h"
#include "core/util/status.h"

namespace leveldb {
class DB;
class WriteBatch;
}  // namespace leveldb

namespace lsifs {

// The extension name under which volume-wide statistics are kept.
inline constexpr char kAllExtensions[] = "*";

enum class SessionState : uint8_t { kOpen = 0, kEnded = 1, kRecovered = 2 };

struct SessionRecord {
  uint32_t number = 0;
  uint64_t lsi = 0;
  uint64_t snapshot = 0;
  int64_t started_us = 0;  // unix microseconds
  int64_t ended_us = 0;    // 0 while open
  SessionState state = SessionState::kOpen;
  uint64_t events = 0;   // first accesses logged
  uint64_t reads = 0;    // read requests
  uint64_t dropped = 0;  // events dropped under overload
  bool folded = false;   // ended and handled: folded into the statistics, or not to be
  bool log_kept = true;  // raw log still held (retention)
  // Why a handled session taught the model nothing: it read the whole image
  // in order (a copy, a cmp, a backup: not a restore), or it was forgotten
  // (lsictl access forget).
  bool sequential = false;
  bool forgotten = false;

  bool learned() const { return folded && !sequential && !forgotten; }
};

// What the database does with a session that ends.
struct SessionPolicy {
  // The present blocks of a volume's snapshot (0 when unknown): a session
  // that read at least 90% of them, in ascending order, is a sequential
  // whole-image read and is not learned from unless `learn_sequential`.
  std::function<uint64_t(const std::string& volume, uint64_t snapshot)> present_blocks;
  bool learn_sequential = false;
};

// What relearning a model did (AccessDb::Forget, AccessDb::Reset).
struct Relearned {
  uint32_t sessions = 0;     // learned sessions folded again from their logs
  uint32_t without_log = 0;  // learned sessions whose logs retention dropped: their part is lost
};

struct AccessEvent {
  uint64_t block = 0;
  uint64_t t_us = 0;  // since the session started
};

// One logged first access, addressed for a batch write.
struct LoggedEvent {
  std::string extension;
  std::string volume;
  uint32_t session = 0;
  uint32_t seq = 0;
  AccessEvent event;
};

// Where recorded sessions go: the co-access database itself, or the
// daemon that holds it (a second mount of a store forwards its sessions).
class SessionSink {
 public:
  virtual ~SessionSink() = default;
  virtual Status BeginSession(const std::string& ext, const std::string& vol, uint64_t lsi,
                              uint64_t snapshot, uint32_t* number) = 0;
  virtual Status AppendEvents(const std::vector<LoggedEvent>& events) = 0;
  virtual Status EndSession(const std::string& ext, const std::string& vol, uint32_t number,
                            uint64_t reads, uint64_t dropped) = 0;
};

class AccessDb : public SessionSink {
 public:
  // Opens (creating if needed) the database in `dir`. Sessions left open by
  // a process that died are ended and folded into the statistics.
  // The statistics parameters are kept in the database ("meta/params");
  // `settings` change them (and are kept), unset ones stay as they were.
  static Status Open(const std::string& dir, const CoAccessSettings& settings,
                     std::unique_ptr<AccessDb>* out, SessionPolicy policy = SessionPolicy());
  ~AccessDb() override;

  const CoAccessParams& params() const { return params_; }

  Status BeginSession(const std::string& ext, const std::string& vol, uint64_t lsi,
                      uint64_t snapshot, uint32_t* number) override;
  Status AppendEvents(const std::vector<LoggedEvent>& events) override;
  // Ends a session: its record, then its statistics, then log retention.
  Status EndSession(const std::string& ext, const std::string& vol, uint32_t number, uint64_t reads,
                    uint64_t dropped) override {
    return FinishSession(ext, vol, number, reads, dropped, SessionState::kEnded);
  }

  Status ListSessions(const std::string& ext, const std::string& vol,
                      std::vector<SessionRecord>* out);
  Status SessionLog(const std::string& ext, const std::string& vol, uint32_t number,
                    std::vector<AccessEvent>* out);
  // The model's summary only (no blocks); a model never folded is empty.
  Status LoadMeta(const std::string& ext, const std::string& vol, ModelMeta* meta);
  // The whole model of (ext, vol); ext may be kAllExtensions.
  Status LoadModel(const std::string& ext, const std::string& vol, ModelMeta* meta,
                   std::vector<std::pair<uint64_t, BlockStats>>* blocks);
  // Every (extension, volume) with sessions.
  Status ListPairs(std::vector<std::pair<std::string, std::string>>* out);

  // Removes session `number` of (ext, vol) from what was learned: it is
  // marked forgotten, and the models of (ext, vol) and of the volume are
  // learned again from the kept logs of the sessions still learned.
  Status Forget(const std::string& ext, const std::string& vol, uint32_t number, Relearned* out);
  // Forgets everything learned from ext's reads of vol: its sessions, logs
  // and model go; the volume's model is learned again without them.
  // `removed`: how many sessions went.
  Status Reset(const std::string& ext, const std::string& vol, uint32_t* removed,
               Relearned* volume_model);
  // When each (ext, vol) model was last learned again without something
  // (unix seconds): LSIs planned before from it are stale.
  Status RelearnedTimes(std::map<std::pair<std::string, std::string>, int64_t>* out);
  // Session uploads of the two-site form (core/site): an upload's key and
  // the session number it became. The region keeps the key a site sent, so
  // that an upload sent twice is taken once; a site keeps its own session
  // numbers, so that it knows what it has sent. `*number` is 0 when `key`
  // was never recorded. Keys are at most 128 bytes.
  Status FindUpload(const std::string& ext, const std::string& vol, const std::string& key,
                    uint32_t* number);
  Status RecordUpload(const std::string& ext, const std::string& vol, const std::string& key,
                      uint32_t number);
  // Forgets every extension's reads of vol (the volume is deleted).
  Status ForgetVolume(const std::string& vol, uint32_t* removed);

 private:
  AccessDb(leveldb::DB* db, const CoAccessParams& params, SessionPolicy policy)
      : db_(db), params_(params), policy_(std::move(policy)) {}
  // Learns the model of (ext, vol) (ext may be kAllExtensions: every
  // extension's sessions) again from the kept logs of learned sessions,
  // oldest first.
  Status Relearn(const std::string& ext, const std::string& vol, Relearned* out);
  Status MarkRelearned(const std::string& ext, const std::string& vol);
  // Adds the statistics after one session to `batch`; returns the model's
  // block count (for the cap).
  Status Fold(const std::string& ext, const std::string& vol, const std::vector<uint64_t>& order,
              leveldb::WriteBatch* batch, ModelMeta* meta);
  Status EnforceCap(const std::string& ext, const std::string& vol, ModelMeta* meta);
  Status Recover();
  Status FinishSession(const std::string& ext, const std::string& vol, uint32_t number,
                       uint64_t reads, uint64_t dropped, SessionState state);

  leveldb::DB* db_;
  CoAccessParams params_;
  SessionPolicy policy_;
};

}  // namespace lsifs
