#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/access/recorder.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

TEST(Recorder, RecordsFirstAccessesInOrderAndEndsSessions) {
  testing::TempDir dir;
  std::unique_ptr<AccessDb> db;
  ASSERT_TRUE(AccessDb::Open(dir / "db", CoAccessSettings(), &db).ok());
  {
    AccessRecorder r(std::move(db), RecorderOptions());
    int h = r.Begin("site-a", "vol", 1, 2);
    ASSERT_GE(h, 0);
    for (uint64_t b : {5ull, 3ull, 9ull}) r.Record(h, b);
    r.Flush();
    EXPECT_EQ(r.Number(h), 1u);
    EXPECT_EQ(r.Stats().recorded, 3u);
    r.End(h, 7);
    r.Flush();
    std::vector<AccessEvent> log;
    ASSERT_TRUE(
        r.WithDb([&](AccessDb& adb) { return adb.SessionLog("site-a", "vol", 1, &log); }).ok());
    ASSERT_EQ(log.size(), 3u);
    EXPECT_EQ(log[0].block, 5u);
    EXPECT_EQ(log[2].block, 9u);
    std::vector<SessionRecord> s;
    ASSERT_TRUE(
        r.WithDb([&](AccessDb& adb) { return adb.ListSessions("site-a", "vol", &s); }).ok());
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].state, SessionState::kEnded);
    EXPECT_EQ(s[0].reads, 7u);
  }
}

TEST(Recorder, OverloadDropsAndCountsButNeverBlocks) {
  testing::TempDir dir;
  std::unique_ptr<AccessDb> db;
  ASSERT_TRUE(AccessDb::Open(dir / "db", CoAccessSettings(), &db).ok());
  RecorderOptions o;
  o.queue_capacity = 8;
  o.flush_interval = std::chrono::milliseconds(10000);  // the writer stays asleep
  AccessRecorder r(std::move(db), o);
  int h = r.Begin("site-a", "vol", 1, 2);
  r.Flush();  // the session has started; the writer now sleeps
  for (uint64_t b = 0; b < 1000; ++b) r.Record(h, b);
  EXPECT_EQ(r.Events(h), 1000u);
  EXPECT_EQ(r.Dropped(h), 1000u - 8);
  EXPECT_EQ(r.Stats().dropped, 1000u - 8);
  r.Flush();
  EXPECT_EQ(r.Stats().recorded, 8u);
}

TEST(Recorder, WithoutADatabaseSessionsAreCountedAndNothingFails) {
  AccessRecorder r{std::unique_ptr<AccessDb>(), RecorderOptions()};
  EXPECT_FALSE(r.enabled());
  int h = r.Begin("site-a", "vol", 1, 2);
  r.Record(h, 1);
  r.End(h, 1);
  EXPECT_EQ(r.WithDb([](AccessDb&) { return Status::Ok(); }).code(), Status::Code::kUnavailable);
}

}  // namespace
}  // namespace lsifs
