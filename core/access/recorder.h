// The access recorder: takes first accesses from the read path and writes
// them to the co-access database in batches, on its own thread. Record()
// never blocks, never allocates and never fails: it puts the event in a
// bounded lock-free queue, and when the queue is full the event is dropped
// and counted. The writer wakes every flush interval (200 ms by default), so
// a killed daemon loses well under a second of events; LevelDB failing
// costs events, never reads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/access/access_db.h"

namespace lsifs {

struct RecorderOptions {
  size_t queue_capacity = 1 << 16;  // events; power of two
  std::chrono::milliseconds flush_interval{200};
  std::function<void(const std::string&)> log;
  // Called on the writer thread, with the database, after a session has
  // ended and been folded into the statistics (only when the database is
  // held here). Must not wait on the recorder.
  std::function<void(AccessDb& db, const std::string& extension, const std::string& volume)>
      on_session_end;
};

struct RecorderStats {
  uint64_t recorded = 0;  // events written to the database
  uint64_t dropped = 0;   // events lost: queue full, or the database failed
  uint64_t batches = 0;
  uint64_t errors = 0;  // failed database writes
};

class AccessRecorder {
 public:
  static constexpr int kMaxSessions = 1024;

  // `db` may be null: sessions are then counted but nothing is stored.
  AccessRecorder(std::unique_ptr<AccessDb> db, RecorderOptions options);
  // Sessions go to `forward` (the daemon holding the database); WithDb is
  // then Unavailable.
  AccessRecorder(std::unique_ptr<SessionSink> forward, RecorderOptions options);
  ~AccessRecorder();  // flushes and ends every open session
  AccessRecorder(const AccessRecorder&) = delete;
  AccessRecorder& operator=(const AccessRecorder&) = delete;

  // Sessions are stored (here or where they are forwarded).
  bool enabled() const { return sink_ != nullptr; }
  bool holds_db() const { return db_ != nullptr; }
  AccessDb* db() { return db_.get(); }

  // Starts a session; returns its handle (or -1 when all slots are busy).
  // The session number is assigned by the writer thread (see Number()).
  int Begin(const std::string& extension, const std::string& volume, uint64_t lsi,
            uint64_t snapshot);
  // The hot path: the session's first access of `block`.
  void Record(int handle, uint64_t block) noexcept;
  // Ends a session once all its reads are done.
  void End(int handle, uint64_t reads);

  // Session number (0 until assigned), events queued and dropped so far.
  uint32_t Number(int handle) const;
  uint64_t Events(int handle) const;
  uint64_t Dropped(int handle) const;
  RecorderStats Stats() const;

  // Runs `fn` with the database on the writer thread, between batches, and
  // returns its status (the control socket's queries go through here).
  Status WithDb(const std::function<Status(AccessDb&)>& fn);
  // Writes everything queued now and waits until it is written.
  void Flush();

 private:
  struct Event {
    std::atomic<uint64_t> seq;
    uint32_t handle;
    uint64_t block;
    uint64_t t_us;
  };
  struct Slot {
    std::atomic<bool> busy{false};
    std::string extension, volume;
    uint64_t lsi = 0, snapshot = 0;
    std::chrono::steady_clock::time_point t0;
    std::atomic<uint32_t> number{0};
    std::atomic<uint64_t> events{0}, dropped{0};
    uint32_t next_seq = 0;  // writer thread only
    bool begun = false;     // writer thread only
    bool failed = false;    // writer thread only: no number could be assigned
  };
  struct Control {
    enum Kind { kBegin, kEnd, kCall } kind;
    int handle;
    uint64_t reads;
    uint64_t queued_before = 0;  // kEnd: events claimed before it, all to be written first
    const std::function<Status(AccessDb&)>* fn;
    Status* result;
    bool* done;
  };

  bool TryPush(uint32_t handle, uint64_t block, uint64_t t_us) noexcept;
  void BeginSlot(Slot& s);  // writer thread
  void WriterLoop();
  void RunCycle();
  void Log(const std::string& line);

  void Start();

  std::unique_ptr<AccessDb> db_;
  std::unique_ptr<SessionSink> forward_;
  SessionSink* sink_ = nullptr;  // db_ or forward_
  RecorderOptions options_;
  std::unique_ptr<Event[]> ring_;
  size_t mask_;
  std::atomic<uint64_t> head_{0};  // next slot to claim (producers)
  uint64_t tail_ = 0;              // next slot to consume (writer)
  Slot slots_[kMaxSessions];

  std::atomic<uint64_t> recorded_{0}, dropped_{0}, batches_{0}, errors_{0};
  uint64_t last_error_logged_ = 0;

  std::mutex mu_;
  std::condition_variable wake_, done_cv_;
  std::deque<Control> controls_;
  bool stop_ = false;
  bool flush_requested_ = false;
  uint64_t cycles_started_ = 0;
  uint64_t cycles_done_ = 0;
  std::thread writer_;
};

}  // namespace lsifs
