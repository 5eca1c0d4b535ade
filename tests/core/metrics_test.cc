// The metrics a mount exposes, without a mount: the Prometheus text, the
// JSON lsictl status reads back, the text for people, and the HTTP endpoint.
#include "core/metrics/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <atomic>

#include "core/metrics/http_server.h"

namespace lsifs {
namespace {

using namespace std::chrono_literals;

MountMetrics Sample() {
  MountMetrics m;
  m.extension = "site-a";
  m.mountpoint = "/mnt/with \"quote\"";
  m.store = "/srv/lsifs";
  m.mounted_at = 1700000000;
  m.key_id = 0x1111;
  m.origin = "local store";
  LsiMetrics l;
  l.lsi_id = 0xabc;
  l.volume = "vol-db";
  l.open = true;
  l.session = "#3 open, 12 blocks recorded, 0 dropped";
  l.counters.reads = 42;
  l.counters.from_delta = 30;
  l.counters.from_base = 10;
  l.counters.origin_bytes = 3 << 20;
  l.counters.prefetched_blocks = 64;
  m.lsis.push_back(l);
  m.link[static_cast<size_t>(LinkClass::kDemand)].requests = 7;
  m.link[static_cast<size_t>(LinkClass::kDemand)].bytes = 7 << 16;
  WaitHistogram h;
  h.Observe(2ms);
  h.Observe(40ms);
  h.Observe(9s);
  m.origin_waits = h.Read();
  m.recording = true;
  m.recorder.recorded = 5;
  m.cache_capacity_bytes = 64 << 20;
  m.cache_used_bytes = 1 << 20;
  m.assemblies_done = 3;
  m.assemblies_queued = 1;
  return m;
}

TEST(WaitHistogram, CountsEachWaitInItsBucketAndSumsThem) {
  WaitHistogram h;
  h.Observe(500us);  // <= 1 ms
  h.Observe(1ms);    // <= 1 ms (bounds are inclusive)
  h.Observe(30ms);   // <= 50 ms
  h.Observe(60s);    // +Inf
  WaitHistogram::Values v = h.Read();
  EXPECT_EQ(v.count, 4u);
  EXPECT_EQ(v.buckets[0], 2u);
  EXPECT_EQ(v.buckets[5], 1u);
  EXPECT_EQ(v.buckets.back(), 1u);
  EXPECT_NEAR(v.sum_seconds, 60.0315, 1e-6);
}

TEST(Metrics, PrometheusTextHasEveryFamilyWithTypesAndCumulativeBuckets) {
  const std::string text = RenderPrometheus(Sample());
  const std::string mount = "extension=\"site-a\",mountpoint=\"/mnt/with \\\"quote\\\"\"";
  EXPECT_NE(text.find("# TYPE lsifs_lsi_reads_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lsifs_lsi_reads_total{" + mount +
                      ",lsi=\"0000000000000abc\",volume=\"vol-db\"} 42\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE lsifs_lsi_prefetched_blocks gauge\n"), std::string::npos);
  EXPECT_NE(text.find("lsifs_lsi_from_delta_total{" + mount), std::string::npos);
  EXPECT_NE(text.find("lsifs_origin_requests_total{" + mount + ",class=\"demand\"} 7\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE lsifs_origin_wait_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("lsifs_origin_wait_seconds_bucket{" + mount + ",le=\"0.0025\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("lsifs_origin_wait_seconds_bucket{" + mount + ",le=\"0.05\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("lsifs_origin_wait_seconds_bucket{" + mount + ",le=\"5\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("lsifs_origin_wait_seconds_bucket{" + mount + ",le=\"+Inf\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("lsifs_origin_wait_seconds_count{" + mount + "} 3\n"), std::string::npos);
  EXPECT_NE(text.find("lsifs_cache_used_bytes{" + mount + "} 1048576\n"), std::string::npos);
  EXPECT_NE(text.find("lsifs_assemblies_finished_total{" + mount + ",outcome=\"done\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("lsifs_recorder_dropped_total{" + mount + "} 0\n"), std::string::npos);
  // Every sample line belongs to a family declared before it.
  std::string family;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    std::string line = text.substr(at, end - at);
    at = end + 1;
    if (line.rfind("# TYPE ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
    } else if (line[0] != '#') {
      EXPECT_EQ(line.rfind(family, 0), 0u) << line << " outside " << family;
    }
  }
}

TEST(Metrics, TheMountJsonReadsBackAndTheStatusSpeaksHumanUnits) {
  MountMetrics back;
  ASSERT_TRUE(ParseMountJson(RenderMountJson(Sample()), &back).ok());
  EXPECT_EQ(RenderPrometheus(back), RenderPrometheus(Sample()));
  EXPECT_EQ(back.key_id, 0x1111u);
  const std::string status = RenderStatusText(back);
  EXPECT_NE(status.find("3.0 MiB"), std::string::npos) << status;
  EXPECT_NE(status.find("1.0 MiB of 64.0 MiB used"), std::string::npos) << status;
  EXPECT_NE(status.find("75.0%"), std::string::npos) << status;  // recall 30 / (30 + 10)
  EXPECT_NE(status.find("3 reads waited on the origin"), std::string::npos) << status;
  EXPECT_NE(status.find("session #3 open, 12 blocks recorded"), std::string::npos) << status;
  EXPECT_FALSE(ParseMountJson("{\"extension\":\"x\"}", &back).ok());
  EXPECT_FALSE(ParseMountJson("garbage", &back).ok());
}

// One HTTP exchange with the server; the status line and the body.
std::string Http(uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "connect failed";
  }
  (void)!::write(fd, request.data(), request.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

TEST(MetricsServer, AnswersGetMetricsAndNothingElse) {
  std::unique_ptr<MetricsServer> server;
  ASSERT_TRUE(MetricsServer::Listen("127.0.0.1:0", &server).ok());
  const std::string endpoint = server->endpoint();
  const uint16_t port = static_cast<uint16_t>(std::stoul(endpoint.substr(endpoint.rfind(':') + 1)));
  ASSERT_NE(port, 0);
  std::atomic<int> renders{0};
  ASSERT_TRUE(server
                  ->Serve([&] {
                    ++renders;
                    return std::string("lsifs_up 1\n");
                  })
                  .ok());
  std::string r = Http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("text/plain; version=0.0.4"), std::string::npos) << r;
  EXPECT_NE(r.find("\r\n\r\nlsifs_up 1\n"), std::string::npos) << r;
  EXPECT_EQ(Http(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(Http(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                .rfind("HTTP/1.1 405", 0),
            0u);
  EXPECT_EQ(renders.load(), 1);
  // The port is taken now; bad addresses are said to be bad.
  std::unique_ptr<MetricsServer> second;
  EXPECT_EQ(MetricsServer::Listen(endpoint, &second).code(), Status::Code::kUnavailable);
  EXPECT_EQ(MetricsServer::Listen("localhost:9464", &second).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(MetricsServer::Listen("127.0.0.1", &second).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(MetricsServer::Listen("127.0.0.1:70000", &second).code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace lsifs
