#include "core/util/worker_pool.h"

#include <algorithm>

namespace lsifs {
namespace {

std::pair<size_t, size_t> Share(size_t count, int workers, int worker) {
  size_t w = static_cast<size_t>(workers);
  size_t i = static_cast<size_t>(worker);
  return {count * i / w, count * (i + 1) / w};
}

}  // namespace

WorkerPool::WorkerPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) helpers_.emplace_back([this, i] { HelperLoop(i); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : helpers_) t.join();
}

void WorkerPool::Run(size_t count, const std::function<void(size_t, size_t, int)>& fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    count_ = count;
    pending_ = static_cast<int>(helpers_.size());
    ++generation_;
  }
  start_cv_.notify_all();
  auto [begin, end] = Share(count, size(), 0);
  if (begin < end) fn(begin, end, 0);
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [this] { return pending_ == 0; });
  job_ = nullptr;
}

void WorkerPool::HelperLoop(int worker) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(size_t, size_t, int)>* job;
    size_t count;
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      count = count_;
    }
    auto [begin, end] = Share(count, size(), worker);
    if (begin < end) (*job)(begin, end, worker);
    {
      std::lock_guard<std::mutex> lock(mu_);
      --pending_;
    }
    done_cv_.notify_one();
  }
}

}  // namespace lsifs
