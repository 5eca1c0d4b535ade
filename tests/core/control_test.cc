// The control socket: requests and replies, error codes, progress, many
// requests at once, a daemon's own Unavailable told from no daemon at all.
#include "core/control/control.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
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

namespace lsifs {
namespace {

ControlServer::Handler Echo() {
  return [](const std::vector<std::string>& req, const ControlServer::Progress&, std::string* out) {
    *out = req.empty() ? "" : req[0];
    return Status::Ok();
  };
}

TEST(Control, AStorePathLongerThanASocketAddressStillWorks) {
  testing::TempDir dir;
  std::string deep = dir.path();
  while (deep.size() < 200) {
    deep += "/a-rather-long-folder-name";
    ASSERT_EQ(::mkdir(deep.c_str(), 0700), 0);
  }
  std::string path = deep + "/control.sock";
  std::unique_ptr<ControlServer> server;
  ASSERT_TRUE(ControlServer::Start(path, Echo(), &server).ok());
  std::string body;
  ASSERT_TRUE(ControlCall(path, {"hello"}, &body).ok());
  EXPECT_EQ(body, "hello");
  server.reset();
  EXPECT_EQ(ControlCall(path, {"ping"}, &body).code(), Status::Code::kUnavailable);
}

// A raw client: sends `data` (in pieces, `pause` apart) and returns what
// the server answered before closing, or "RESET" if the connection broke.
std::string RawExchange(const std::string& path, const std::string& data, size_t piece,
                        std::chrono::milliseconds pause) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return "CONNECT";
  for (size_t at = 0; at < data.size(); at += piece) {
    if (::send(fd, data.data() + at, std::min(piece, data.size() - at), MSG_NOSIGNAL) < 0) break;
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
  }
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) reply.append(buf, static_cast<size_t>(n));
  if (n < 0) reply = "RESET";
  ::close(fd);
  return reply;
}

TEST(Control, AnOversizedRequestIsAnsweredNotReset) {
  testing::TempDir dir;
  std::string path = dir / "c.sock";
  std::unique_ptr<ControlServer> server;
  ASSERT_TRUE(ControlServer::Start(path, Echo(), &server).ok());
  std::string reply =
      RawExchange(path, std::string(1 << 20, 'x') + "\n", 1 << 16, std::chrono::milliseconds(0));
  EXPECT_EQ(reply.rfind("error\t", 0), 0u) << reply.substr(0, 80);
  EXPECT_NE(reply.find("larger than 64 KiB"), std::string::npos) << reply.substr(0, 80);
}

TEST(Control, SlowClientsDoNotHoldTheServer) {
  testing::TempDir dir;
  std::string path = dir / "c.sock";
  std::unique_ptr<ControlServer> server;
  ASSERT_TRUE(ControlServer::Start(path, Echo(), &server).ok());
  // More clients than handlers, each sending one byte a second: each is
  // cut off at the request deadline, and a normal request gets through.
  std::vector<std::thread> slow;
  std::vector<std::string> replies(20);
  auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < replies.size(); ++i) {
    slow.emplace_back([&, i] {
      replies[i] = RawExchange(path, std::string(30, 'y'), 1, std::chrono::milliseconds(1000));
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // While every handler is taken, a whole request is answered (busy), not
  // reset.
  std::string busy = RawExchange(path, "fast\n", 64, std::chrono::milliseconds(0));
  EXPECT_TRUE(busy.rfind("error\t", 0) == 0 || busy == "ok\nfast") << busy;
  std::string body;
  Status s;
  for (int i = 0; i < 40; ++i) {
    s = ControlCall(path, {"fast"}, &body);
    if (s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 8.0);
  for (auto& t : slow) t.join();
  // Each slow client still connected when a handler was free was cut off at
  // the deadline with an answer.
  size_t cut_off = 0;
  for (const auto& r : replies) cut_off += r.find("within 5 s") != std::string::npos;
  EXPECT_GE(cut_off, 10u);
}

}  // namespace
}  // namespace lsifs
