#include "core/assembler/queue.h"

#include <algorithm>
#include <chrono>
#include <ctime>

namespace lsifs {

class AssemblyQueue::Job {
 public:
  explicit Job(AssemblyTask t) : task(std::move(t)), cls(LinkClassOf(task.request.priority)) {}

  AssemblyTask task;
  uint64_t id = 0;
  std::atomic<LinkClass> cls;
  std::atomic<bool> cancel{false};
  std::atomic<uint64_t> done_bytes{0}, total_bytes{0};
  // Under the queue's mutex:
  bool running = false;
  bool finished = false;
  uint32_t waiters = 0;
  int64_t queued_at = 0, started_at = 0;
  Status status;
  PreassembleResult result;

  bool SameWork(const AssemblyTask& other) const {
    const PreassembleRequest& a = task.request;
    const PreassembleRequest& b = other.request;
    return task.extension == other.extension && a.volume == b.volume && a.snapshot == b.snapshot &&
           a.strategy == b.strategy && a.budget_bytes == b.budget_bytes;
  }
};

LinkClass LinkClassOf(Priority priority) {
  switch (priority) {
    case Priority::kHigh:
      return LinkClass::kHigh;
    case Priority::kNormal:
      return LinkClass::kNormal;
    case Priority::kLow:
      return LinkClass::kLow;
  }
  return LinkClass::kLow;
}

AssemblyQueue::AssemblyQueue(Work work, Options options)
    : work_(std::move(work)), options_(std::move(options)) {
  for (size_t i = 0; i < std::max<size_t>(1, options_.max_running); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

AssemblyQueue::~AssemblyQueue() {
  Stop();
  for (auto& t : workers_) t.join();
}

uint64_t AssemblyQueue::IdOf(const Job& job) {
  return job.id;
}

std::shared_ptr<AssemblyQueue::Job> AssemblyQueue::Submit(AssemblyTask task, bool waited) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& job : jobs_) {
    if (!job->cancel.load() && job->SameWork(task)) {
      if (task.request.priority < job->task.request.priority) {
        job->task.request.priority = task.request.priority;
        job->cls.store(LinkClassOf(task.request.priority));
      }
      if (waited) ++job->waiters;
      wake_.notify_all();  // a raised priority may change what runs next
      return job;
    }
  }
  auto job = std::make_shared<Job>(std::move(task));
  job->id = next_id_++;
  job->queued_at = static_cast<int64_t>(std::time(nullptr));
  job->waiters = waited ? 1 : 0;
  if (stopped_) {
    FinishLocked(*job, Status::Cancelled("lsifs is stopping; no assembly was started"));
    return job;
  }
  jobs_.push_back(job);
  wake_.notify_all();
  return job;
}

Status AssemblyQueue::Wait(const std::shared_ptr<Job>& job,
                           const std::function<void(uint64_t, uint64_t)>& progress,
                           PreassembleResult* out) {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t reported = ~uint64_t{0};
  auto last = std::chrono::steady_clock::now();
  while (!job->finished) {
    done_.wait_for(lock, std::chrono::milliseconds(200));
    uint64_t d = job->done_bytes.load(), t = job->total_bytes.load();
    auto now = std::chrono::steady_clock::now();
    // Also while it waits for its turn: a caller that times out on silence
    // knows it is still queued.
    if (progress && !job->finished && (d != reported || now - last > std::chrono::seconds(2))) {
      reported = d;
      last = now;
      lock.unlock();
      progress(d, t);
      lock.lock();
    }
  }
  if (job->waiters > 0) --job->waiters;
  if (out != nullptr) *out = job->result;
  return job->status;
}

Status AssemblyQueue::Cancel(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
    Job& job = **it;
    if (job.id != id) continue;
    job.cancel.store(true);
    if (!job.running) {
      FinishLocked(job, Status::Cancelled("assembly " + std::to_string(id) +
                                          " was cancelled before it started"));
      jobs_.erase(it);
    }
    return Status::Ok();
  }
  return Status::NotFound("no queued or running assembly " + std::to_string(id) +
                          " (see: lsictl assemblies)");
}

std::vector<AssemblyInfo> AssemblyQueue::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AssemblyInfo> out;
  for (const auto& job : jobs_) {
    AssemblyInfo i;
    i.id = job->id;
    i.extension = job->task.extension;
    i.volume = job->task.request.volume;
    i.snapshot = job->task.request.snapshot;
    i.strategy = job->task.request.strategy;
    i.priority = job->task.request.priority;
    i.reason = job->task.reason;
    i.running = job->running;
    i.cancelling = job->cancel.load();
    i.waiters = job->waiters;
    i.done_bytes = job->done_bytes.load();
    i.total_bytes = job->total_bytes.load();
    i.queued_at = job->queued_at;
    i.started_at = job->started_at;
    out.push_back(std::move(i));
  }
  return out;
}

void AssemblyQueue::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    (*it)->cancel.store(true);
    if (!(*it)->running) {
      FinishLocked(**it, Status::Cancelled("lsifs is stopping; the assembly was not started"));
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
  wake_.notify_all();
}

std::shared_ptr<AssemblyQueue::Job> AssemblyQueue::PickLocked() {
  if (running_ >= options_.max_running) return nullptr;
  std::shared_ptr<Job> best;
  for (const auto& job : jobs_) {
    if (job->running) continue;
    if (job->task.request.priority == Priority::kLow && running_low_ >= options_.max_running_low) {
      continue;
    }
    // jobs_ is in id order: the first of the best priority is the oldest.
    if (!best || job->task.request.priority < best->task.request.priority) best = job;
  }
  return best;
}

void AssemblyQueue::FinishLocked(Job& job, Status status) {
  job.status = std::move(status);
  job.finished = true;
  job.running = false;
  ++(job.status.ok()            ? totals_.done
     : job.status.IsCancelled() ? totals_.cancelled
                                : totals_.failed);
  if (!job.status.ok() && job.waiters == 0 && !job.status.IsCancelled() && options_.log) {
    options_.log("assembly " + std::to_string(job.id) + " (" + job.task.reason + ", " +
                 job.task.extension + "/" + job.task.request.volume +
                 ") failed: " + job.status.message());
  }
  done_.notify_all();
}

void AssemblyQueue::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    std::shared_ptr<Job> job;
    wake_.wait(lock, [&] { return stopped_ || (job = PickLocked()) != nullptr; });
    if (!job) return;  // stopped, nothing left to run
    job->running = true;
    job->started_at = static_cast<int64_t>(std::time(nullptr));
    const bool low = job->task.request.priority == Priority::kLow;
    ++running_;
    if (low) ++running_low_;
    AssemblyTask task = job->task;
    lock.unlock();
    PreassembleResult result;
    Status s = work_(
        task, &job->cls, &job->cancel,
        [&job](uint64_t d, uint64_t t) {
          job->done_bytes.store(d);
          job->total_bytes.store(t);
        },
        &result);
    if (!s.ok() && job->cancel.load()) {
      s = Status::Cancelled("assembly " + std::to_string(job->id) + " was cancelled; " +
                            "nothing of it was kept");
    }
    lock.lock();
    --running_;
    if (low) --running_low_;
    job->result = std::move(result);
    FinishLocked(*job, std::move(s));
    jobs_.erase(std::find(jobs_.begin(), jobs_.end(), job));
    wake_.notify_all();
  }
}

AssemblyQueue::Finished AssemblyQueue::Totals() const {
  std::lock_guard<std::mutex> lock(mu_);
  return totals_;
}

}  // namespace lsifs
