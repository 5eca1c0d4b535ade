#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <chrono>

#include "core/access/recorder.h"
#include "core/control/control.h"
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
  AccessRecorder r(nullptr, RecorderOptions());
  EXPECT_FALSE(r.enabled());
  int h = r.Begin("site-a", "vol", 1, 2);
  r.Record(h, 1);
  r.End(h, 1);
  EXPECT_EQ(r.WithDb([](AccessDb&) { return Status::Ok(); }).code(), Status::Code::kUnavailable);
}

TEST(Control, RequestsReachTheServerAndErrorsKeepTheirCode) {
  testing::TempDir dir;
  std::string path = dir / "control.sock";
  std::string body;
  EXPECT_EQ(ControlCall(path, {"ping"}, &body).code(), Status::Code::kUnavailable);
  std::unique_ptr<ControlServer> server;
  ASSERT_TRUE(ControlServer::Start(
                  path,
                  [](const std::vector<std::string>& req, const ControlServer::Progress& progress,
                     std::string* out) {
                    if (req.size() == 2 && req[0] == "echo") {
                      *out = req[1] + "\nsecond line";
                      return Status::Ok();
                    }
                    if (req.size() == 1 && req[0] == "work") {
                      for (uint64_t i = 1; i <= 3; ++i) {
                        progress(i, 3);
                        std::this_thread::sleep_for(std::chrono::milliseconds(120));
                      }
                      *out = "done";
                      return Status::Ok();
                    }
                    return Status::NotFound("no such thing");
                  },
                  &server)
                  .ok());
  ASSERT_TRUE(ControlCall(path, {"echo", "hello"}, &body).ok());
  EXPECT_EQ(body, "hello\nsecond line");
  // Long work reports progress before its answer; the answer is whole.
  std::vector<uint64_t> seen;
  ASSERT_TRUE(ControlCall(path, {"work"}, &body, std::chrono::seconds(10), nullptr,
                          [&](uint64_t done, uint64_t total) {
                            EXPECT_EQ(total, 3u);
                            seen.push_back(done);
                          })
                  .ok());
  EXPECT_EQ(body, "done");
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2, 3}));
  Status s = ControlCall(path, {"other"}, &body);
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_EQ(s.message(), "no such thing");
  std::unique_ptr<ControlServer> second;
  EXPECT_EQ(ControlServer::Start(path, nullptr, &second).code(), Status::Code::kExists);
  server.reset();
  EXPECT_EQ(ControlCall(path, {"ping"}, &body).code(), Status::Code::kUnavailable);
}

TEST(Control, ASocketLeftByADeadDaemonIsReplaced) {
  testing::TempDir dir;
  std::string path = dir / "control.sock";
  testing::WriteFileBytes(path, AsBytes("stale"));
  std::unique_ptr<ControlServer> server;
  ASSERT_TRUE(
      ControlServer::Start(
          path,
          [](const std::vector<std::string>&, const ControlServer::Progress&, std::string* out) {
            *out = "fresh";
            return Status::Ok();
          },
          &server)
          .ok());
  std::string body;
  ASSERT_TRUE(ControlCall(path, {"x"}, &body).ok());
  EXPECT_EQ(body, "fresh");
}

}  // namespace
}  // namespace lsifs
