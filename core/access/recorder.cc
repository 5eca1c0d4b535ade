#include "core/access/recorder.h"

namespace lsifs {

AccessRecorder::AccessRecorder(std::unique_ptr<AccessDb> db, RecorderOptions options)
    : db_(std::move(db)), sink_(db_.get()), options_(std::move(options)) {
  Start();
}

AccessRecorder::AccessRecorder(std::unique_ptr<SessionSink> forward, RecorderOptions options)
    : forward_(std::move(forward)), sink_(forward_.get()), options_(std::move(options)) {
  Start();
}

void AccessRecorder::Start() {
  size_t cap = 1;
  while (cap < options_.queue_capacity) cap <<= 1;
  ring_.reset(new Event[cap]);
  mask_ = cap - 1;
  for (size_t i = 0; i < cap; ++i) ring_[i].seq.store(i, std::memory_order_relaxed);
  writer_ = std::thread([this] { WriterLoop(); });
}

AccessRecorder::~AccessRecorder() {
  for (int h = 0; h < kMaxSessions; ++h) {
    if (slots_[h].busy.load()) End(h, 0);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  writer_.join();
}

void AccessRecorder::Log(const std::string& line) {
  if (options_.log) options_.log(line);
}

int AccessRecorder::Begin(const std::string& extension, const std::string& volume, uint64_t lsi,
                          uint64_t snapshot) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int h = 0; h < kMaxSessions; ++h) {
    Slot& s = slots_[h];
    if (s.busy.load()) continue;
    s.extension = extension;
    s.volume = volume;
    s.lsi = lsi;
    s.snapshot = snapshot;
    s.t0 = std::chrono::steady_clock::now();
    s.number.store(0);
    s.events.store(0);
    s.dropped.store(0);
    s.busy.store(true);
    controls_.push_back({Control::kBegin, h, 0, 0, nullptr, nullptr, nullptr});
    wake_.notify_one();
    return h;
  }
  return -1;
}

bool AccessRecorder::TryPush(uint32_t handle, uint64_t block, uint64_t t_us) noexcept {
  // Vyukov's bounded queue: each cell's sequence says whose turn it is.
  uint64_t pos = head_.load(std::memory_order_relaxed);
  for (;;) {
    Event& cell = ring_[pos & mask_];
    uint64_t seq = cell.seq.load(std::memory_order_acquire);
    int64_t diff = static_cast<int64_t>(seq) - static_cast<int64_t>(pos);
    if (diff == 0) {
      if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        cell.handle = handle;
        cell.block = block;
        cell.t_us = t_us;
        cell.seq.store(pos + 1, std::memory_order_release);
        return true;
      }
    } else if (diff < 0) {
      return false;  // full
    } else {
      pos = head_.load(std::memory_order_relaxed);
    }
  }
}

void AccessRecorder::Record(int handle, uint64_t block) noexcept {
  if (handle < 0 || handle >= kMaxSessions) return;
  Slot& s = slots_[handle];
  s.events.fetch_add(1, std::memory_order_relaxed);
  if (sink_ == nullptr) return;
  auto t = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                 s.t0);
  if (!TryPush(static_cast<uint32_t>(handle), block, static_cast<uint64_t>(t.count()))) {
    s.dropped.fetch_add(1, std::memory_order_relaxed);
    dropped_.fetch_add(1, std::memory_order_relaxed);
  }
}

void AccessRecorder::End(int handle, uint64_t reads) {
  if (handle < 0 || handle >= kMaxSessions) return;
  std::lock_guard<std::mutex> lock(mu_);
  // Every event of the session was claimed before now: the end waits until
  // the writer has consumed up to here.
  controls_.push_back({Control::kEnd, handle, reads, head_.load(std::memory_order_acquire), nullptr,
                       nullptr, nullptr});
  wake_.notify_one();
}

uint32_t AccessRecorder::Number(int handle) const {
  return handle < 0 ? 0 : slots_[handle].number.load();
}
uint64_t AccessRecorder::Events(int handle) const {
  return handle < 0 ? 0 : slots_[handle].events.load();
}
uint64_t AccessRecorder::Dropped(int handle) const {
  return handle < 0 ? 0 : slots_[handle].dropped.load();
}

RecorderStats AccessRecorder::Stats() const {
  return {recorded_.load(), dropped_.load(), batches_.load(), errors_.load()};
}

Status AccessRecorder::WithDb(const std::function<Status(AccessDb&)>& fn) {
  if (db_ == nullptr) return Status::Unavailable("access recording is off in this daemon");
  Status result;
  bool done = false;
  std::unique_lock<std::mutex> lock(mu_);
  controls_.push_back({Control::kCall, -1, 0, 0, &fn, &result, &done});
  wake_.notify_one();
  done_cv_.wait(lock, [&] { return done; });
  return result;
}

void AccessRecorder::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t target = cycles_started_ + 1;  // a whole cycle that starts after now
  flush_requested_ = true;
  wake_.notify_one();
  done_cv_.wait(lock, [&] { return cycles_done_ >= target || stop_; });
}

void AccessRecorder::WriterLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait_for(lock, options_.flush_interval,
                   [&] { return stop_ || flush_requested_ || !controls_.empty(); });
    flush_requested_ = false;
    bool stopping = stop_;
    ++cycles_started_;
    lock.unlock();
    RunCycle();
    lock.lock();
    ++cycles_done_;
    done_cv_.notify_all();
    if (stopping && controls_.empty()) return;
  }
}

void AccessRecorder::BeginSlot(Slot& s) {
  if (s.begun) return;
  s.next_seq = 0;
  s.begun = true;
  s.failed = false;
  uint32_t number = 0;
  Status st = sink_ ? sink_->BeginSession(s.extension, s.volume, s.lsi, s.snapshot, &number)
                    : Status::Unavailable("recording off");
  if (st.ok()) {
    s.number.store(number);
  } else {
    s.failed = true;
    if (sink_) {
      errors_.fetch_add(1);
      Log("access recording: cannot start a session of " + s.volume + ": " + st.message());
    }
  }
}

void AccessRecorder::RunCycle() {
  std::deque<Control> controls;
  {
    std::lock_guard<std::mutex> lock(mu_);
    controls.swap(controls_);
  }
  // Begins first (their events may already be queued), then the events,
  // then ends and calls: every event queued before an End is written first.
  for (const Control& c : controls) {
    if (c.kind == Control::kBegin) BeginSlot(slots_[c.handle]);
  }

  std::vector<LoggedEvent> batch;
  uint64_t in_batch_dropped = 0;
  for (;;) {
    Event& cell = ring_[tail_ & mask_];
    if (cell.seq.load(std::memory_order_acquire) != tail_ + 1) break;
    Slot& s = slots_[cell.handle];
    // A session begun after this cycle took its controls: begin it now.
    if (!s.begun) BeginSlot(s);
    if (s.failed) {
      ++in_batch_dropped;
      s.dropped.fetch_add(1, std::memory_order_relaxed);
    } else {
      batch.push_back(
          {s.extension, s.volume, s.number.load(), s.next_seq++, {cell.block, cell.t_us}});
    }
    cell.seq.store(tail_ + mask_ + 1, std::memory_order_release);
    ++tail_;
  }
  dropped_.fetch_add(in_batch_dropped);
  if (!batch.empty()) {
    Status st = sink_->AppendEvents(batch);
    batches_.fetch_add(1);
    if (st.ok()) {
      recorded_.fetch_add(batch.size());
    } else {
      dropped_.fetch_add(batch.size());
      uint64_t errors = errors_.fetch_add(1) + 1;
      if (errors == 1 || errors >= last_error_logged_ * 2) {
        last_error_logged_ = errors;
        Log("access recording: " + std::to_string(batch.size()) +
            " events lost, the database failed: " + st.message());
      }
    }
  }

  std::deque<Control> later;
  for (const Control& c : controls) {
    if (c.kind == Control::kEnd && tail_ < c.queued_before) {
      // A reader claimed a cell before the end and has not published it yet.
      later.push_back(c);
      continue;
    }
    if (c.kind == Control::kEnd) {
      Slot& s = slots_[c.handle];
      BeginSlot(s);  // a session with no events at all is still a session
      if (sink_ && s.begun && !s.failed) {
        Status st =
            sink_->EndSession(s.extension, s.volume, s.number.load(), c.reads, s.dropped.load());
        if (!st.ok()) Log("access recording: ending session of " + s.volume + ": " + st.message());
        if (st.ok() && db_ && options_.on_session_end) {
          options_.on_session_end(*db_, s.extension, s.volume);
        }
      }
      s.begun = false;
      s.busy.store(false);
    } else if (c.kind == Control::kCall) {
      Status st = c.fn ? (*c.fn)(*db_) : Status::Ok();
      std::lock_guard<std::mutex> lock(mu_);
      *c.result = st;
      *c.done = true;
      done_cv_.notify_all();
    }
  }
  if (!later.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    controls_.insert(controls_.begin(), later.begin(), later.end());
  }
}

}  // namespace lsifs
