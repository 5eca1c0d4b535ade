// A fixed set of threads that split a range of work items between them; the
// calling thread takes a share too. For batch work (import, assembly), not
// for the read path.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lsifs {

class WorkerPool {
 public:
  // `threads` workers in all, counting the caller; 0 means one per core.
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int size() const { return static_cast<int>(helpers_.size()) + 1; }

  // Calls fn(begin, end, worker) on disjoint ranges covering [0, count), one
  // range per worker, and returns when all are done.
  void Run(size_t count, const std::function<void(size_t, size_t, int)>& fn);

 private:
  void HelperLoop(int worker);

  std::mutex mu_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  const std::function<void(size_t, size_t, int)>* job_ = nullptr;
  size_t count_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::vector<std::thread> helpers_;
};

}  // namespace lsifs
