// lsid's service and its client over real TLS 1.3 on an address inside a
// network namespace this test makes (tests/core/region_fixture.h).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <thread>

#include "core/access/access_db.h"
#include "core/assembler/queue.h"
#include "core/region/certs.h"
#include "core/region/client.h"
#include "core/region/region.h"
#include "core/region/server.h"
#include "core/region/tls.h"
#include "core/util/hex.h"
#include "tests/core/region_fixture.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

using testing::kAddress;
using testing::kBlocks;
using testing::RegionTls;

TEST_F(RegionTls, ASiteFetchesBlocksSealedForItThatOpenToTheSnapshotsBytes) {
  StartServer();
  auto client = Client("site-a");
  ExtensionKeys keys = KeysOfExtension("site-a");
  RemoteOrigin remote(*client, keys);
  std::unique_ptr<OriginSnapshot> snap;
  Status s = remote.OpenSnapshot("vol", snapshot_, &snap);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(snap->info().id, snapshot_);
  EXPECT_EQ(snap->info().block_size, kBlock);
  EXPECT_EQ(snap->present().size(), kBlocks - kBlocks / 3);
  // Every present block, in uneven batches, is the image's bytes.
  const std::vector<uint64_t>& present = snap->present();
  Bytes got(present.size() * kBlock);
  for (size_t at = 0; at < present.size(); at += 7) {
    const size_t n = std::min<size_t>(7, present.size() - at);
    std::vector<uint8_t*> outs;
    for (size_t i = 0; i < n; ++i) outs.push_back(got.data() + (at + i) * kBlock);
    s = snap->FetchIn(LinkClass::kExpansion, std::span(present).subspan(at, n), outs);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  for (size_t i = 0; i < present.size(); ++i) {
    ASSERT_TRUE(std::equal(got.begin() + static_cast<ptrdiff_t>(i * kBlock),
                           got.begin() + static_cast<ptrdiff_t>((i + 1) * kBlock),
                           image_.begin() + static_cast<ptrdiff_t>(present[i] * kBlock)))
        << "block " << present[i];
  }
  // The wire carries ciphertext sealed for site-a, not the plaintext and
  // not the store's records.
  RegionCall call;
  call.method = "POST";
  call.target = "/v1/volumes/vol/snapshots/" + FormatId(snapshot_) + "/blocks";
  call.body = EncodeBlockList({present[0]});
  RegionAnswer answer;
  ASSERT_TRUE(client->Call(call, &answer).ok());
  ASSERT_EQ(answer.body.size(), kBlock + kSealOverhead);
  const ByteSpan plain(image_.data() + present[0] * kBlock, kBlock);
  EXPECT_EQ(std::search(answer.body.begin(), answer.body.end(), plain.begin(), plain.begin() + 64),
            answer.body.end());
  // An absent block is refused with a reason; the latest snapshot resolves.
  call.body = EncodeBlockList({0});
  s = client->Call(call, &answer);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("not present"), std::string::npos) << s.message();
  std::unique_ptr<OriginSnapshot> latest;
  ASSERT_TRUE(remote.OpenSnapshot("vol", 0, &latest).ok());
  EXPECT_EQ(latest->info().id, snapshot_);
  EXPECT_TRUE(remote.OpenSnapshot("nope", 0, &latest).IsNotFound());
  EXPECT_GE(client->Stats().requests, 5u);
  EXPECT_LE(client->Stats().connections, 2u);  // reused
}

TEST_F(RegionTls, ASiteGetsItsOwnManifestsAndLayersWholeAndInRanges) {
  StartServer();
  auto client = Client("site-a");
  const std::string lsi = AssembleFull(*client);
  std::string body;
  ASSERT_TRUE(Get(*client, "/v1/lsis", &body).ok());
  EXPECT_NE(body.find(lsi), std::string::npos);
  ASSERT_TRUE(Get(*client, "/v1/lsis/" + lsi, &body).ok());
  boost::json::value shown = boost::json::parse(body);
  const auto& layers = shown.as_object().at("layer_list").as_array();
  ASSERT_FALSE(layers.empty());
  ASSERT_TRUE(Get(*client, "/v1/lsis/" + lsi + "/manifest", &body).ok());
  const Bytes manifest = testing::ReadFileBytes(store_->manifest_path(*ParseId(lsi)));
  EXPECT_EQ(body, std::string(manifest.begin(), manifest.end()));
  const std::string layer(layers[0].as_object().at("layer").as_string());
  const Bytes file = testing::ReadFileBytes(store_->layer_path(*ParseId(layer)));
  const std::string target = "/v1/lsis/" + lsi + "/layers/" + layer;
  ASSERT_TRUE(Get(*client, target, &body).ok());
  EXPECT_EQ(body, std::string(file.begin(), file.end()));
  ASSERT_TRUE(Get(*client, target, &body, "bytes=100-4195").ok());
  EXPECT_EQ(body, std::string(file.begin() + 100, file.begin() + 4196));
  ASSERT_TRUE(Get(*client, target, &body, "bytes=" + std::to_string(file.size() - 10) + "-").ok());
  EXPECT_EQ(body, std::string(file.end() - 10, file.end()));
  EXPECT_EQ(Get(*client, target, &body, "bytes=" + std::to_string(file.size()) + "-").code(),
            Status::Code::kInvalidArgument);
  // A layer id the LSI does not list is not served, even one that exists.
  EXPECT_TRUE(Get(*client, "/v1/lsis/" + lsi + "/layers/" + FormatId(12345), &body).IsNotFound());
  // Restore delivers it; the successor table answers (empty: no sessions yet).
  ASSERT_TRUE(Post(*client, "/v1/restore", R"({"volume":"vol"})", &body).ok()) << body;
  ASSERT_TRUE(Get(*client, "/v1/successors/vol", &body).ok());
  EXPECT_EQ(boost::json::parse(body).as_object().at("volume").as_string(), "vol");
}

TEST_F(RegionTls, AnotherExtensionIsRefusedTheLsisLayersAndBlocksOfThisOne) {
  StartServer();
  auto a = Client("site-a");
  auto b = Client("site-b");
  const std::string lsi = AssembleFull(*a);
  std::string body, a_body;
  ASSERT_TRUE(Get(*a, "/v1/lsis/" + lsi, &a_body).ok());
  const std::string layer(boost::json::parse(a_body)
                              .as_object()
                              .at("layer_list")
                              .as_array()[0]
                              .as_object()
                              .at("layer")
                              .as_string());
  // To B, A's LSI does not exist: the same answer as for an id never made.
  Status foreign = Get(*b, "/v1/lsis/" + lsi, &body);
  Status missing = Get(*b, "/v1/lsis/" + FormatId(777), &body);
  EXPECT_TRUE(foreign.IsNotFound());
  EXPECT_TRUE(missing.IsNotFound());
  EXPECT_EQ(foreign.message().substr(0, 7), missing.message().substr(0, 7));
  EXPECT_TRUE(Get(*b, "/v1/lsis/" + lsi + "/manifest", &body).IsNotFound());
  EXPECT_TRUE(Get(*b, "/v1/lsis/" + lsi + "/layers/" + layer, &body).IsNotFound());
  ASSERT_TRUE(Get(*b, "/v1/lsis", &body).ok());
  EXPECT_EQ(body.find(lsi), std::string::npos);
  ASSERT_TRUE(Get(*b, "/v1/assemblies", &body).ok());
  EXPECT_EQ(body.find("site-a"), std::string::npos);
  // Blocks B fetches are sealed for B: A's key does not open them, so a
  // site holding A's key and B's certificate gets no plaintext.
  ExtensionKeys a_keys = KeysOfExtension("site-a");
  RemoteOrigin wrong(*b, a_keys);
  std::unique_ptr<OriginSnapshot> snap;
  ASSERT_TRUE(wrong.OpenSnapshot("vol", snapshot_, &snap).ok());
  std::vector<uint8_t> out(kBlock);
  uint8_t* outs[] = {out.data()};
  const uint64_t block[] = {snap->present()[0]};
  Status s = snap->Fetch(block, outs);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("failed authentication"), std::string::npos);
  // A site without a certificate of this CA gets no TLS session at all.
  testing::TempDir other_dir;
  auto other = testing::MakeStore(other_dir);
  KeyInfo other_key;
  ASSERT_TRUE(other->keyring().Create("site-a", &other_key).ok());
  ASSERT_TRUE(InitCa(*other, CaOptions()).ok());
  IssuedCertificate stranger;
  ASSERT_TRUE(IssueSiteCertificate(*other, "site-a", other_dir / "tls", 30, &stranger).ok());
  RegionClientOptions o;
  o.url = "https://" + server_->endpoint();
  o.ca_path = certs_["site-a"].ca_path;  // trusts the region...
  o.cert_path = stranger.cert_path;      // ...but its certificate is another CA's
  o.key_path = stranger.key_path;
  o.attempts = 1;
  std::unique_ptr<RegionClient> c;
  ASSERT_TRUE(RegionClient::Open(o, &c).ok());
  EXPECT_FALSE(Get(*c, "/v1/volumes", &body).ok());
  // (TLS 1.3: the client may finish before the region has judged it.)
  for (int i = 0; i < 100 && server_->Stats().handshake_failures == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(server_->Stats().handshake_failures, 1u);
}

TEST_F(RegionTls, ARevokedCertificateIsRefusedWithoutARestart) {
  StartServer();
  auto a = Client("site-a");
  auto b = Client("site-b", 1);
  std::string body;
  ASSERT_TRUE(Get(*b, "/v1/volumes", &body).ok());  // and keeps the connection
  std::vector<std::string> revoked;
  ASSERT_TRUE(RevokeSite(*store_, "site-b", &revoked).ok());
  ASSERT_EQ(revoked.size(), 1u);
  EXPECT_EQ(revoked[0], certs_["site-b"].serial);
  // The list is reread within a second of its change.
  Status s;
  for (int i = 0; i < 40; ++i) {
    s = Get(*b, "/v1/volumes", &body);
    if (!s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(s.IsPermission()) << s.ToString();
  EXPECT_NE(s.message().find("revoked"), std::string::npos) << s.message();
  // On a new connection too; A is served as before.
  auto b_again = Client("site-b", 1);
  EXPECT_TRUE(Get(*b_again, "/v1/volumes", &body).IsPermission());
  EXPECT_TRUE(Get(*a, "/v1/volumes", &body).ok());
  EXPECT_GE(server_->Stats().refused_revoked, 2u);
}

// Raw requests over a TLS connection made with site-a's certificate.
class RawSite {
 public:
  RawSite(const IssuedCertificate& cert, const std::string& endpoint) {
    EXPECT_TRUE(
        region_internal::MakeTlsContext(false, cert.ca_path, cert.cert_path, cert.key_path, &ctx_)
            .ok());
    conn_ = std::make_unique<region_internal::TlsConnection>(*ctx_);
    const size_t colon = endpoint.rfind(':');
    auto ec = conn_->Connect(endpoint.substr(0, colon), endpoint.substr(colon + 1),
                             std::chrono::seconds(5));
    EXPECT_FALSE(ec) << ec.message();
    ec = conn_->Handshake(false, std::chrono::seconds(5));
    EXPECT_FALSE(ec) << ec.message();
  }
  // Sends `bytes` as they are and reads one answer: its HTTP status, 0 when
  // the connection ended without one.
  unsigned Send(const std::string& bytes) {
    namespace http = boost::beast::http;
    auto ec = conn_->WriteBytes(bytes, std::chrono::seconds(5));
    if (ec) return 0;
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    ec = conn_->ReadMessage(buffer, parser, std::chrono::seconds(5));
    return ec ? 0 : parser.get().result_int();
  }

 private:
  std::unique_ptr<region_internal::ssl::context> ctx_;
  std::unique_ptr<region_internal::TlsConnection> conn_;
};

// A TLS peer on kAddress that answers one connection with `header`, then
// `body` in `chunks` writes `gap` apart: a region on a slow link, or one
// dripping bytes to stay inside every idle deadline.
class PacedPeer {
 public:
  PacedPeer(const std::string& ca, const std::string& cert, const std::string& key,
            std::string header, std::string body, size_t chunks, std::chrono::milliseconds gap) {
    EXPECT_TRUE(region_internal::MakeTlsContext(true, ca, cert, key, &ctx_).ok());
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    ::inet_pton(AF_INET, kAddress, &addr.sin_addr);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener_, 1), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, header = std::move(header), body = std::move(body), chunks, gap] {
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      region_internal::TlsConnection conn(*ctx_);
      if (fd < 0 || conn.Adopt(fd) || conn.Handshake(true, std::chrono::seconds(5))) return;
      if (conn.WriteBytes(header, std::chrono::seconds(5))) return;
      const size_t per = (body.size() + chunks - 1) / chunks;
      for (size_t at = 0; at < body.size() && !stop_; at += per) {
        if (conn.WriteBytes(std::string_view(body).substr(at, per), std::chrono::seconds(5))) {
          return;
        }
        std::this_thread::sleep_for(gap);
      }
      while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    });
  }
  ~PacedPeer() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  unsigned short port() const { return port_; }

 private:
  std::unique_ptr<region_internal::ssl::context> ctx_;
  int listener_ = -1;
  unsigned short port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(RegionTls, AnAnswerDrippedToStayInsideTheIdleDeadlineFailsAtItsPaceAndASteadyOneArrives) {
  const std::string body(64 * 1024, 'x');
  const std::string header =
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  const IssuedCertificate& site = certs_["site-a"];
  std::unique_ptr<region_internal::ssl::context> client_ctx;
  ASSERT_TRUE(region_internal::MakeTlsContext(false, site.ca_path, site.cert_path, site.key_path,
                                              &client_ctx)
                  .ok());
  // Each step has 500 ms and the whole answer 500 ms plus its size at
  // 256 KiB/s (about 0.8 s).
  const region_internal::Pace pace(std::chrono::milliseconds(500), 256 * 1024);
  struct Case {
    size_t chunks;
    std::chrono::milliseconds gap;
    bool arrives;
  };
  // 1 KiB every 100 ms: every step makes progress, the whole would take 6.4 s.
  // 8 KiB every 20 ms: the whole in about 0.2 s.
  for (const Case& c : {Case{64, std::chrono::milliseconds(100), false},
                        Case{8, std::chrono::milliseconds(20), true}}) {
    PacedPeer peer(store_->ca_cert_path(), store_->server_cert_path(), store_->server_key_path(),
                   header, body, c.chunks, c.gap);
    region_internal::TlsConnection conn(*client_ctx);
    ASSERT_FALSE(conn.Connect(kAddress, std::to_string(peer.port()), std::chrono::seconds(5)));
    ASSERT_FALSE(conn.Handshake(false, std::chrono::seconds(5)));
    boost::beast::flat_buffer buffer;
    boost::beast::http::response_parser<boost::beast::http::string_body> parser;
    parser.body_limit(body.size());
    const auto start = std::chrono::steady_clock::now();
    const auto ec = conn.ReadMessage(buffer, parser, pace);
    const auto took = std::chrono::steady_clock::now() - start;
    if (c.arrives) {
      EXPECT_FALSE(ec) << ec.message();
      EXPECT_EQ(parser.get().body(), body);
    } else {
      EXPECT_EQ(ec, boost::beast::error::timeout) << ec.message();
      EXPECT_FALSE(parser.is_done());
      // Not at the first idle deadline (bytes kept coming), but well before
      // the drip would have ended.
      EXPECT_GE(took, std::chrono::milliseconds(700));
      EXPECT_LT(took, std::chrono::seconds(3));
    }
  }
}

TEST_F(RegionTls, MalformedAndOversizedRequestsGetErrorsAndTheServiceStaysUp) {
  StartServer();
  const std::string host = "Host: x\r\n";
  struct Case {
    std::string request;
    unsigned status;
  };
  const std::vector<Case> cases = {
      {"NONSENSE\r\n\r\n", 400},
      {"GET /v1/volumes HTTP/1.1\r\n" + host + "X-Big: " + std::string(20000, 'a') + "\r\n\r\n",
       431},
      {"POST /v1/restore HTTP/1.1\r\n" + host + "Content-Length: 1000000\r\n\r\n", 413},
      {"GET /etc/passwd HTTP/1.1\r\n" + host + "\r\n", 404},
      {"GET /v1/volumes/../snapshots/latest HTTP/1.1\r\n" + host + "\r\n", 400},
      {"POST /v1/restore HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\n{{{{{", 400},
      {"POST /v1/volumes/vol/snapshots/latest/blocks HTTP/1.1\r\n" + host +
           "Content-Length: 3\r\n\r\nabc",
       400},
      {"GET /v1/volumes HTTP/1.1\r\n" + host + "Lsifs-Class: urgent\r\n\r\n", 400},
  };
  for (const Case& c : cases) {
    RawSite site(certs_["site-a"], server_->endpoint());
    EXPECT_EQ(site.Send(c.request), c.status) << c.request.substr(0, 60);
  }
  // Still serving.
  auto client = Client("site-a");
  std::string body;
  EXPECT_TRUE(Get(*client, "/v1/volumes", &body).ok());
  EXPECT_GE(server_->Stats().malformed, cases.size());
}

TEST_F(RegionTls, AGreedySiteDoesNotStarveAnother) {
  RegionServerOptions options;
  options.workers = 1;  // one slot: the whole region is contended
  StartServer(options);
  auto greedy = Client("site-a");
  auto modest = Client("site-b");
  ExtensionKeys a_keys = KeysOfExtension("site-a");
  RemoteOrigin a_origin(*greedy, a_keys);
  std::unique_ptr<OriginSnapshot> a_snap;
  ASSERT_TRUE(a_origin.OpenSnapshot("vol", snapshot_, &a_snap).ok());
  std::atomic<bool> modest_done{false};
  std::atomic<uint64_t> greedy_batches{0};
  std::vector<std::thread> hogs;
  for (int t = 0; t < 6; ++t) {
    hogs.emplace_back([&] {
      const std::vector<uint64_t>& present = a_snap->present();
      Bytes out(present.size() * kBlock);
      std::vector<uint8_t*> outs;
      for (size_t i = 0; i < present.size(); ++i) outs.push_back(out.data() + i * kBlock);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (!modest_done && std::chrono::steady_clock::now() < deadline) {
        if (a_snap->FetchIn(LinkClass::kLow, present, outs).ok()) ++greedy_batches;
      }
    });
  }
  while (greedy_batches < 6) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // Every modest request is served while the greedy one keeps the region busy.
  std::string body;
  int served = 0;
  for (int i = 0; i < 20; ++i) served += Get(*modest, "/v1/volumes", &body).ok();
  const uint64_t greedy_during = greedy_batches;
  modest_done = true;
  for (auto& t : hogs) t.join();
  EXPECT_EQ(served, 20);
  EXPECT_GT(greedy_during, 6u);  // the greedy site was served meanwhile too
  const RegionServerStats stats = server_->Stats();
  EXPECT_EQ(stats.extensions.at("site-b").requests, 20u);
  EXPECT_EQ(stats.extensions.at("site-b").errors, 0u);
}

TEST_F(RegionTls, AnOutageIsLoggedOnceAndSoIsItsEnd) {
  StartServer();
  const std::string endpoint = server_->endpoint();
  std::mutex mu;
  std::vector<std::string> lines;
  RegionClientOptions o;
  o.url = "https://" + endpoint;
  o.ca_path = certs_["site-a"].ca_path;
  o.cert_path = certs_["site-a"].cert_path;
  o.key_path = certs_["site-a"].key_path;
  o.attempts = 2;
  o.backoff = std::chrono::milliseconds(10);
  o.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    lines.push_back(line);
  };
  std::unique_ptr<RegionClient> c;
  ASSERT_TRUE(RegionClient::Open(o, &c).ok());
  std::string body;
  ASSERT_TRUE(Get(*c, "/v1/volumes", &body).ok());
  server_.reset();
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(Get(*c, "/v1/volumes", &body).code(), Status::Code::kUnavailable);
  EXPECT_FALSE(c->Stats().reachable);
  RegionServerOptions again;
  again.listen = endpoint;
  again.ca_cert_path = store_->ca_cert_path();
  again.cert_path = store_->server_cert_path();
  again.key_path = store_->server_key_path();
  again.crl_path = store_->crl_path();
  ASSERT_TRUE(RegionServer::Start(again, *service_, &server_).ok());
  ASSERT_TRUE(Get(*c, "/v1/volumes", &body).ok());
  EXPECT_TRUE(c->Stats().reachable);
  EXPECT_EQ(c->Stats().outages, 1u);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("unreachable"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("answers again"), std::string::npos) << lines[1];
}

TEST_F(RegionTls, AnExtensionOverItsRateIsToldToWaitAndOthersAreNot) {
  RegionServerOptions options;
  options.rate_per_extension = 2;
  options.rate_burst = 3;
  StartServer(options);
  auto a = Client("site-a", 1);
  auto b = Client("site-b", 1);
  std::string body;
  int refused = 0;
  Status last;
  for (int i = 0; i < 6; ++i) {
    Status s = Get(*a, "/v1/volumes", &body);
    if (!s.ok()) {
      ++refused;
      last = s;
    }
  }
  EXPECT_GE(refused, 2);
  EXPECT_EQ(last.code(), Status::Code::kUnavailable);
  EXPECT_NE(last.message().find("rate"), std::string::npos) << last.message();
  EXPECT_TRUE(Get(*b, "/v1/volumes", &body).ok());
  // With retries, the client waits its turn and gets through.
  auto patient = Client("site-a", 6);
  Status waited = Get(*patient, "/v1/volumes", &body);
  EXPECT_TRUE(waited.ok()) << waited.ToString();
  EXPECT_GE(server_->Stats().extensions.at("site-a").rate_limited, 2u);
}

}  // namespace
}  // namespace lsifs
