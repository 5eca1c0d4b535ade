// The assembly queue: the PSA's scheduler in a daemon. Assemblies run by
// priority (high, then normal, then low; first come first served within
// one), at most two at once and at most one of them `low`, so a restore
// never waits behind a long background assembly. One piece of work (the
// same extension, volume, snapshot, strategy and budget) is assembled once
// however many ask at once: later askers join it and raise its priority to
// theirs, which also moves its fetches up on the origin link. A cancelled
// assembly leaves nothing (AssembleLsi removes what it wrote).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/assembler/assemble.h"
#include "core/origin/link.h"
#include "core/util/status.h"

namespace lsifs {

struct AssemblyTask {
  std::string extension;
  PreassembleRequest request;  // its cancel and fetch_window are the queue's to set
  std::string reason;          // restore, preassemble, session end, new snapshot
};

// One row of the queue, as `lsictl assemblies` shows it.
struct AssemblyInfo {
  uint64_t id = 0;
  std::string extension, volume;
  uint64_t snapshot = 0;  // 0: the volume's latest
  std::string strategy;
  Priority priority = Priority::kNormal;
  std::string reason;
  bool running = false;
  bool cancelling = false;
  uint32_t waiters = 0;
  uint64_t done_bytes = 0, total_bytes = 0;
  int64_t queued_at = 0, started_at = 0;  // Unix seconds
};

LinkClass LinkClassOf(Priority priority);

class AssemblyQueue {
 public:
  // Runs one task: `cls` is the link class its fetches travel in (it
  // follows the task's priority), `cancel` is set to stop it.
  using Work = std::function<Status(
      const AssemblyTask& task, const std::atomic<LinkClass>* cls, const std::atomic<bool>* cancel,
      const std::function<void(uint64_t, uint64_t)>& progress, PreassembleResult* out)>;
  struct Options {
    size_t max_running = 2;
    size_t max_running_low = 1;
    // Told of the failure of an assembly nobody waits for.
    std::function<void(const std::string&)> log;
  };
  class Job;

  AssemblyQueue(Work work, Options options);
  ~AssemblyQueue();  // Stop(), then waits for the running work to give up
  AssemblyQueue(const AssemblyQueue&) = delete;
  AssemblyQueue& operator=(const AssemblyQueue&) = delete;

  // Queues the task or joins the same work queued or running; `waited`:
  // the caller will Wait() for it (background work is nobody's to wait for).
  std::shared_ptr<Job> Submit(AssemblyTask task, bool waited = true);
  static uint64_t IdOf(const Job& job);
  // Waits until the job is done, reporting its progress (bytes) meanwhile.
  Status Wait(const std::shared_ptr<Job>& job,
              const std::function<void(uint64_t, uint64_t)>& progress, PreassembleResult* out);
  // NotFound when no queued or running assembly has this id.
  Status Cancel(uint64_t id);
  std::vector<AssemblyInfo> List() const;
  // Assemblies finished since the queue started, by outcome.
  struct Finished {
    uint64_t done = 0, failed = 0, cancelled = 0;
  };
  Finished Totals() const;
  // Cancels everything and refuses new work (the daemon is stopping).
  void Stop();

 private:
  void WorkerLoop();
  std::shared_ptr<Job> PickLocked();
  void FinishLocked(Job& job, Status status);

  const Work work_;
  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;  // work queued, a worker freed, or stopping
  std::condition_variable done_;  // some job finished
  bool stopped_ = false;
  uint64_t next_id_ = 1;
  std::vector<std::shared_ptr<Job>> jobs_;  // queued and running, by id
  size_t running_ = 0, running_low_ = 0;
  Finished totals_;  // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace lsifs
