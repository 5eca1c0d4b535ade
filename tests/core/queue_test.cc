// The assembly queue with work of its own making: what runs first, what
// runs once, what a cancel does, and how a joined request raises priority.
#include "core/assembler/queue.h"

#include <gtest/gtest.h>

#include <thread>

namespace lsifs {
namespace {

using namespace std::chrono_literals;

AssemblyTask Task(const std::string& ext, Priority priority, const std::string& volume = "vol") {
  AssemblyTask t;
  t.extension = ext;
  t.request.volume = volume;
  t.request.priority = priority;
  t.reason = "test";
  return t;
}

// Work that records what ran and, while `hold` is set, waits (until
// cancelled) before it finishes.
class Recorded {
 public:
  AssemblyQueue::Work Work() {
    return [this](const AssemblyTask& task, const std::atomic<LinkClass>* cls,
                  const std::atomic<bool>* cancel,
                  const std::function<void(uint64_t, uint64_t)>& progress,
                  PreassembleResult* out) -> Status {
      {
        std::lock_guard<std::mutex> lock(mu);
        ran.push_back(task.extension);
        classes.push_back(cls);
      }
      ++running;
      progress(1, 10);
      while (hold.load()) {
        if (cancel->load()) {
          --running;
          return Status::Cancelled("stopped");
        }
        std::this_thread::sleep_for(1ms);
      }
      --running;
      out->manifest.lsi_id = ++made;
      return Status::Ok();
    };
  }
  std::vector<std::string> Ran() {
    std::lock_guard<std::mutex> lock(mu);
    return ran;
  }
  // Under the lock: another worker may be appending its own class.
  LinkClass ClassOf(size_t run) {
    std::lock_guard<std::mutex> lock(mu);
    return classes.at(run)->load();
  }
  void WaitRunning(int n) {
    for (int i = 0; i < 5000 && running.load() < n; ++i) std::this_thread::sleep_for(1ms);
    ASSERT_GE(running.load(), n);
  }

  std::mutex mu;
  std::vector<std::string> ran;
  std::vector<const std::atomic<LinkClass>*> classes;
  std::atomic<bool> hold{true};
  std::atomic<int> running{0};
  std::atomic<uint64_t> made{0};
};

AssemblyQueue::Options OneAtATime() {
  AssemblyQueue::Options o;
  o.max_running = 1;
  return o;
}

TEST(AssemblyQueue, HighOvertakesQueuedLow) {
  Recorded work;
  AssemblyQueue q(work.Work(), OneAtATime());
  auto a = q.Submit(Task("a", Priority::kLow));
  work.WaitRunning(1);
  auto b = q.Submit(Task("b", Priority::kLow));
  auto c = q.Submit(Task("c", Priority::kNormal));
  auto d = q.Submit(Task("d", Priority::kHigh));
  work.hold = false;
  for (auto* j : {&a, &b, &c, &d}) EXPECT_TRUE(q.Wait(*j, nullptr, nullptr).ok());
  EXPECT_EQ(work.Ran(), (std::vector<std::string>{"a", "d", "c", "b"}));
}

TEST(AssemblyQueue, TheSameWorkRunsOnceAndAJoinerRaisesItsPriority) {
  Recorded work;
  AssemblyQueue q(work.Work(), AssemblyQueue::Options());
  auto first = q.Submit(Task("site-a", Priority::kLow));
  work.WaitRunning(1);
  auto second = q.Submit(Task("site-a", Priority::kHigh));
  auto other_volume = q.Submit(Task("site-a", Priority::kHigh, "vol2"));
  EXPECT_EQ(AssemblyQueue::IdOf(*first), AssemblyQueue::IdOf(*second));
  EXPECT_NE(AssemblyQueue::IdOf(*first), AssemblyQueue::IdOf(*other_volume));
  auto list = q.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].priority, Priority::kHigh);
  EXPECT_EQ(list[0].waiters, 2u);
  EXPECT_TRUE(list[0].running);
  EXPECT_EQ(list[0].total_bytes, 10u);
  // The running work's fetches moved up on the link with it.
  EXPECT_EQ(work.ClassOf(0), LinkClass::kHigh);
  work.hold = false;
  PreassembleResult r1, r2;
  EXPECT_TRUE(q.Wait(first, nullptr, &r1).ok());
  EXPECT_TRUE(q.Wait(second, nullptr, &r2).ok());
  EXPECT_TRUE(q.Wait(other_volume, nullptr, nullptr).ok());
  EXPECT_EQ(r1.manifest.lsi_id, r2.manifest.lsi_id);
  EXPECT_EQ(work.Ran().size(), 2u);
  EXPECT_TRUE(q.List().empty());
}

TEST(AssemblyQueue, AtMostOneLowRunsAndHighRunsBesideIt) {
  Recorded work;
  AssemblyQueue q(work.Work(), AssemblyQueue::Options());  // two at once, one low
  auto low1 = q.Submit(Task("l1", Priority::kLow));
  auto low2 = q.Submit(Task("l2", Priority::kLow));
  work.WaitRunning(1);
  auto high = q.Submit(Task("h", Priority::kHigh));
  work.WaitRunning(2);
  auto list = q.List();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_TRUE(list[0].running);   // l1
  EXPECT_FALSE(list[1].running);  // l2 waits: one low at a time
  EXPECT_TRUE(list[2].running);   // h runs beside l1
  work.hold = false;
  for (auto* j : {&low1, &low2, &high}) EXPECT_TRUE(q.Wait(*j, nullptr, nullptr).ok());
}

TEST(AssemblyQueue, CancelStopsQueuedAndRunningWork) {
  Recorded work;
  AssemblyQueue q(work.Work(), OneAtATime());
  auto running = q.Submit(Task("a", Priority::kNormal));
  work.WaitRunning(1);
  auto queued = q.Submit(Task("b", Priority::kNormal));
  EXPECT_TRUE(q.Cancel(AssemblyQueue::IdOf(*queued)).ok());
  EXPECT_TRUE(q.Wait(queued, nullptr, nullptr).IsCancelled());
  EXPECT_TRUE(q.Cancel(AssemblyQueue::IdOf(*running)).ok());
  Status s = q.Wait(running, nullptr, nullptr);
  EXPECT_TRUE(s.IsCancelled()) << s.ToString();
  EXPECT_EQ(work.Ran(), std::vector<std::string>{"a"});  // b never ran
  EXPECT_TRUE(q.Cancel(999).IsNotFound());
  EXPECT_TRUE(q.List().empty());
}

TEST(AssemblyQueue, StopCancelsEverythingAndRefusesNewWork) {
  Recorded work;
  AssemblyQueue q(work.Work(), OneAtATime());
  auto running = q.Submit(Task("a", Priority::kNormal));
  work.WaitRunning(1);
  auto queued = q.Submit(Task("b", Priority::kNormal));
  q.Stop();
  EXPECT_TRUE(q.Wait(running, nullptr, nullptr).IsCancelled());
  EXPECT_TRUE(q.Wait(queued, nullptr, nullptr).IsCancelled());
  EXPECT_TRUE(q.Wait(q.Submit(Task("c", Priority::kHigh)), nullptr, nullptr).IsCancelled());
}

TEST(AssemblyQueue, AWaiterSeesProgress) {
  Recorded work;
  AssemblyQueue q(work.Work(), AssemblyQueue::Options());
  auto job = q.Submit(Task("a", Priority::kNormal));
  std::thread release([&] {
    std::this_thread::sleep_for(500ms);
    work.hold = false;
  });
  uint64_t seen_total = 0;
  EXPECT_TRUE(q.Wait(
                   job, [&](uint64_t, uint64_t t) { seen_total = t; }, nullptr)
                  .ok());
  release.join();
  EXPECT_EQ(seen_total, 10u);
}

}  // namespace
}  // namespace lsifs

namespace lsifs {
namespace {

TEST(AssemblyQueue, BackgroundWorkHasNoWaiterAndItsFailureIsLogged) {
  std::mutex mu;
  std::vector<std::string> logged;
  AssemblyQueue::Options o;
  o.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    logged.push_back(line);
  };
  std::atomic<bool> go{false};
  AssemblyQueue q(
      [&](const AssemblyTask&, const std::atomic<LinkClass>*, const std::atomic<bool>*,
          const std::function<void(uint64_t, uint64_t)>&, PreassembleResult*) {
        while (!go) std::this_thread::sleep_for(1ms);
        return Status::IOError("disk full");
      },
      o);
  auto job = q.Submit(Task("site-a", Priority::kLow), /*waited=*/false);
  for (int i = 0; i < 1000 && q.List().empty(); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(q.List().size(), 1u);
  EXPECT_EQ(q.List()[0].waiters, 0u);
  go = true;
  for (int i = 0; i < 5000 && !q.List().empty(); ++i) std::this_thread::sleep_for(1ms);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("disk full"), std::string::npos) << logged[0];
}

}  // namespace
}  // namespace lsifs
