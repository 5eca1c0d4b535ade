// The control socket: requests and replies, error codes, progress, many
// requests at once, a daemon's own Unavailable told from no daemon at all.
#include "core/control/control.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/core/test_util.h"

namespace lsifs {
namespace {

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

TEST(Control, ALongRequestDoesNotHoldUpAShortOne) {
  testing::TempDir dir;
  std::string path = dir / "control.sock";
  std::atomic<bool> release{false};
  std::unique_ptr<ControlServer> server;
  ASSERT_TRUE(ControlServer::Start(
                  path,
                  [&](const std::vector<std::string>& req, const ControlServer::Progress&,
                      std::string* out) {
                    if (req[0] == "slow") {
                      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
                    }
                    *out = req[0];
                    return Status::Ok();
                  },
                  &server)
                  .ok());
  std::string slow_body;
  std::thread slow([&] { EXPECT_TRUE(ControlCall(path, {"slow"}, &slow_body).ok()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::string body;
  ASSERT_TRUE(ControlCall(path, {"fast"}, &body, std::chrono::seconds(5)).ok());
  EXPECT_EQ(body, "fast");
  EXPECT_FALSE(release.load());  // answered while the slow one still ran
  release = true;
  slow.join();
  EXPECT_EQ(slow_body, "slow");
}

TEST(Control, TheDaemonsOwnUnavailableIsToldFromNoDaemon) {
  testing::TempDir dir;
  std::string path = dir / "control.sock";
  std::string body;
  bool reached = true;
  EXPECT_EQ(ControlCall(path, {"x"}, &body, std::chrono::seconds(5), &reached).code(),
            Status::Code::kUnavailable);
  EXPECT_FALSE(reached);
  std::unique_ptr<ControlServer> server;
  ASSERT_TRUE(ControlServer::Start(
                  path,
                  [](const std::vector<std::string>&, const ControlServer::Progress&,
                     std::string*) { return Status::Unavailable("database busy"); },
                  &server)
                  .ok());
  Status s = ControlCall(path, {"x"}, &body, std::chrono::seconds(5), &reached);
  EXPECT_EQ(s.code(), Status::Code::kUnavailable);
  EXPECT_EQ(s.message(), "database busy");
  EXPECT_TRUE(reached);
}

}  // namespace
}  // namespace lsifs
