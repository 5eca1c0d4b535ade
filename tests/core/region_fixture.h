// The region and its sites under test: a real store with a real LevelDB
// served by the region service over real TLS 1.3, on an address inside a
// network namespace the test process makes (unshare(CLONE_NEWNET), a veth
// pair, one end at 10.77.0.1), sites with certificates issued by the
// store's CA. For region_tls_test.cc and site_test.cc (root).
#pragma once

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstring>
#include <map>
#include <mutex>

#include "core/access/access_db.h"
#include "core/assembler/queue.h"
#include "core/region/certs.h"
#include "core/region/client.h"
#include "core/region/region.h"
#include "core/region/server.h"
#include "tests/core/test_util.h"

namespace lsifs::testing {

inline constexpr char kAddress[] = "10.77.0.1";
inline constexpr uint64_t kBlocks = 96;

// The namespace is made once per process, before any thread: every
// thread started later lives in it.
inline void EnterNetworkNamespace() {
  static bool entered = false;
  if (entered) return;
  ASSERT_EQ(::geteuid(), 0u) << "the region tests make a network namespace: run them as root";
  ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << std::strerror(errno);
  ASSERT_EQ(RunShell("ip link set lo up && ip link add lsifs-r0 type veth peer name lsifs-r1 && "
                     "ip addr add 10.77.0.1/24 dev lsifs-r0 && ip link set lsifs-r0 up && "
                     "ip link set lsifs-r1 up"),
            0);
  entered = true;
}

class RegionTls : public StoreTest {
 protected:
  void SetUp() override {
    EnterNetworkNamespace();
    if (HasFatalFailure()) return;
    KeyInfo b;
    ASSERT_TRUE(store_->keyring().Create("site-b", &b).ok());
    // Every third block absent: absent blocks read as zeros and are not served.
    image_ = PseudoRandom(kBlocks * kBlock, 11);
    for (uint64_t i = 0; i < kBlocks; i += 3) {
      std::fill_n(image_.begin() + static_cast<ptrdiff_t>(i * kBlock), kBlock, 0);
    }
    snapshot_ = ImportBytes("vol", image_);
    CaOptions ca;
    ca.server_hosts = {kAddress};
    ASSERT_TRUE(InitCa(*store_, ca).ok());
    for (const char* ext : {"site-a", "site-b"}) {
      IssuedCertificate issued;
      Status s =
          IssueSiteCertificate(*store_, ext, dir_ / (std::string("tls-") + ext), 30, &issued);
      ASSERT_TRUE(s.ok()) << s.ToString();
      certs_[ext] = issued;
    }
    ASSERT_TRUE(AccessDb::Open(store_->db_dir(), CoAccessSettings(), &db_).ok());
    link_ = std::make_unique<OriginLink>(*local_, LinkOptions());
    env_.store = store_.get();
    env_.keys = keys_.get();
    env_.link = link_.get();
    env_.catalog = catalog_.get();
    env_.with_db = [this](const std::function<Status(AccessDb*)>& fn) {
      std::lock_guard<std::mutex> lock(db_mu_);
      return fn(db_.get());
    };
    queue_ = std::make_unique<AssemblyQueue>(MakeAssemblyWork(env_), AssemblyQueue::Options());
    env_.queue = queue_.get();
    service_ = std::make_unique<RegionService>(env_, successors_);
  }

  void StartServer(RegionServerOptions options = RegionServerOptions()) {
    options.listen = std::string(kAddress) + ":0";
    options.ca_cert_path = store_->ca_cert_path();
    options.cert_path = store_->server_cert_path();
    options.key_path = store_->server_key_path();
    options.crl_path = store_->crl_path();
    Status s = RegionServer::Start(options, *service_, &server_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::unique_ptr<RegionClient> Client(const std::string& ext, int attempts = 4) {
    RegionClientOptions o;
    o.url = "https://" + server_->endpoint();
    o.ca_path = certs_[ext].ca_path;
    o.cert_path = certs_[ext].cert_path;
    o.key_path = certs_[ext].key_path;
    o.attempts = attempts;
    o.backoff = std::chrono::milliseconds(20);
    o.request_timeout = std::chrono::milliseconds(20000);
    std::unique_ptr<RegionClient> c;
    Status s = RegionClient::Open(o, &c);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return c;
  }

  ExtensionKeys KeysOfExtension(const std::string& ext) {
    ExtensionKeys keys;
    EXPECT_TRUE(store_->keyring().LoadKeys(ext, &keys).ok());
    return keys;
  }

  static Status Get(RegionClient& c, const std::string& target, std::string* body,
                    const std::string& range = "") {
    RegionCall call;
    call.target = target;
    call.range = range;
    RegionAnswer answer;
    Status s = c.Call(call, &answer);
    *body = answer.body;
    return s;
  }

  static Status Post(RegionClient& c, const std::string& target, const std::string& json,
                     std::string* body) {
    RegionCall call;
    call.method = "POST";
    call.target = target;
    call.body = json;
    call.idempotent = false;
    RegionAnswer answer;
    Status s = c.Call(call, &answer);
    *body = answer.body;
    return s;
  }

  // An LSI of every present block, assembled for `ext` at the region.
  std::string AssembleFull(RegionClient& c) {
    std::string body;
    Status s = Post(c, "/v1/preassemble", R"({"volume":"vol","strategy":"full"})", &body);
    EXPECT_TRUE(s.ok()) << s.ToString();
    boost::json::value v = boost::json::parse(body);
    return std::string(v.as_object().at("lsi").as_string());
  }

  Bytes image_;
  uint64_t snapshot_ = 0;
  std::map<std::string, IssuedCertificate> certs_;
  std::mutex db_mu_;
  std::unique_ptr<AccessDb> db_;
  std::unique_ptr<OriginLink> link_;
  ServiceEnv env_;
  std::unique_ptr<AssemblyQueue> queue_;
  SuccessorCache successors_{PlanOptions(), 1 << 16};
  std::unique_ptr<RegionService> service_;
  std::unique_ptr<RegionServer> server_;  // last: stopped first
};

}  // namespace lsifs::testing
