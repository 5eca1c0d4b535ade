// lsid's figures (issue 15): the re-encrypting throughput of the region
// service (MB/s of blocks served over TLS 1.3 on this machine's cores, the
// sites' decryption beside it), and the latency TLS adds to one block fetch
// over the in-process origin. A real store of 64 KiB blocks in a temporary
// folder, the real RegionServer and RemoteOrigin on 127.0.0.1.
//   usage: region_bench [--mib N] [--seconds S] [--threads T] [--batch B] [--json PATH]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "core/access/access_db.h"
#include "core/assembler/queue.h"
#include "core/crypto/aead.h"
#include "core/origin/import.h"
#include "core/region/certs.h"
#include "core/region/client.h"
#include "core/region/region.h"
#include "core/util/file.h"
#include "core/util/hex.h"

using namespace lsifs;
using Clock = std::chrono::steady_clock;

namespace {

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "region_bench: %s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mib = 256;
  double seconds = 5;
  int threads = 4, batch = 16;
  std::string json;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string("0"); };
    if (a == "--mib")
      mib = std::stoull(next());
    else if (a == "--seconds")
      seconds = std::stod(next());
    else if (a == "--threads")
      threads = std::stoi(next());
    else if (a == "--batch")
      batch = std::stoi(next());
    else if (a == "--json")
      json = next();
    else {
      std::fprintf(
          stderr,
          "usage: region_bench [--mib N] [--seconds S] [--threads T] [--batch B] [--json PATH]\n");
      return 2;
    }
  }
  char tmpl[] = "/tmp/lsifs-region-bench.XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string root = dir + "/store";
  StoreConfig config;
  config.block_size = 64 * 1024;
  Check(Store::Init(root, &config), "init");
  std::unique_ptr<Store> store;
  Check(Store::Open(root, &store), "open");
  SecretKey provider;
  Check(store->LoadProviderKey(&provider), "provider key");
  const OriginKeys keys = OriginKeys::Derive(provider);
  {
    AtomicFileWriter w;
    Check(w.Open(store->tmp_dir(), dir + "/image"), "image");
    Bytes chunk(1 << 20);
    for (uint64_t i = 0; i < mib; ++i) {
      RandomBytes(chunk);
      Check(w.Write(chunk), "image");
    }
    Check(w.Commit(), "image");
  }
  ImportResult imported;
  Check(ImportImage(*store, keys, "vol", dir + "/image", ImportOptions(), &imported), "import");
  KeyInfo info;
  Check(store->keyring().Create("site-a", &info), "key");
  CaOptions ca;
  ca.server_hosts = {"127.0.0.1"};
  Check(InitCa(*store, ca), "ca");
  IssuedCertificate cert;
  Check(IssueSiteCertificate(*store, "site-a", dir + "/tls", 30, &cert), "cert");

  std::unique_ptr<Catalog> catalog;
  Check(Catalog::Open(*store, &catalog), "catalog");
  LocalOrigin local(*store, keys);
  OriginLink link(local, LinkOptions());
  std::unique_ptr<AccessDb> db;
  Check(AccessDb::Open(store->db_dir(), CoAccessSettings(), &db), "db");
  ServiceEnv env;
  env.store = store.get();
  env.keys = &keys;
  env.link = &link;
  env.catalog = catalog.get();
  env.with_db = [&](const std::function<Status(AccessDb*)>& fn) { return fn(db.get()); };
  AssemblyQueue queue(MakeAssemblyWork(env), AssemblyQueue::Options());
  env.queue = &queue;
  SuccessorCache successors(PlanOptions(), 1 << 16);
  RegionService service(env, successors);
  RegionServerOptions options;
  options.listen = "127.0.0.1:0";
  options.ca_cert_path = store->ca_cert_path();
  options.cert_path = store->server_cert_path();
  options.key_path = store->server_key_path();
  options.crl_path = store->crl_path();
  std::unique_ptr<RegionServer> server;
  Check(RegionServer::Start(options, service, &server), "server");

  RegionClientOptions co;
  co.url = "https://" + server->endpoint();
  co.ca_path = cert.ca_path;
  co.cert_path = cert.cert_path;
  co.key_path = cert.key_path;
  std::unique_ptr<RegionClient> client;
  Check(RegionClient::Open(co, &client), "client");
  ExtensionKeys site_keys;
  Check(store->keyring().LoadKeys("site-a", &site_keys), "keys");
  RemoteOrigin remote(*client, site_keys);
  std::unique_ptr<OriginSnapshot> far, near;
  Check(remote.OpenSnapshot("vol", imported.snapshot.id, &far), "remote snapshot");
  Check(local.OpenSnapshot("vol", imported.snapshot.id, &near), "local snapshot");
  const std::vector<uint64_t>& present = far->present();
  const size_t bs = far->info().block_size;
  // Warm the page cache: the figure is the service's, not the disk's.
  {
    Bytes b(bs);
    uint8_t* o[] = {b.data()};
    for (uint64_t blk : present) Check(near->Fetch(std::span(&blk, 1), o), "warm");
  }

  // Latency: one block at a time, in-process and through lsid.
  auto time_one = [&](OriginSnapshot& s, int n) {
    std::vector<double> us;
    Bytes b(bs);
    uint8_t* o[] = {b.data()};
    for (int i = 0; i < n; ++i) {
      const uint64_t blk = present[static_cast<size_t>(i * 7919) % present.size()];
      const auto t0 = Clock::now();
      Check(s.Fetch(std::span(&blk, 1), o), "fetch");
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    return us;
  };
  (void)time_one(*far, 50);
  // A request with a small answer: the round trip itself.
  std::vector<double> small_us;
  for (int i = 0; i < 1000; ++i) {
    RegionCall call;
    call.target = "/v1/volumes/vol/snapshots/" + FormatId(imported.snapshot.id);
    RegionAnswer answer;
    const auto t0 = Clock::now();
    Check(client->Call(call, &answer), "facts");
    small_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  const std::vector<double> local_us = time_one(*near, 1000), remote_us = time_one(*far, 1000);

  // Throughput: T sites' threads fetching batches as fast as they can.
  std::atomic<uint64_t> blocks{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  const auto t0 = Clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      Bytes b(static_cast<size_t>(batch) * bs);
      std::vector<uint8_t*> outs;
      for (int i = 0; i < batch; ++i) outs.push_back(b.data() + static_cast<size_t>(i) * bs);
      size_t at = static_cast<size_t>(t) * 997 % present.size();
      while (!stop) {
        if (at + static_cast<size_t>(batch) > present.size()) at = 0;
        Check(far->FetchIn(LinkClass::kHigh,
                           std::span(present).subspan(at, static_cast<size_t>(batch)), outs),
              "batch");
        blocks += static_cast<uint64_t>(batch);
        at += static_cast<size_t>(batch);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  const double mb_per_s = static_cast<double>(blocks.load() * bs) / elapsed / 1e6;
  const double local_med = Percentile(local_us, 0.5), remote_med = Percentile(remote_us, 0.5);
  if (!json.empty()) {
    FILE* out = std::fopen(json.c_str(), "w");
    if (out == nullptr) {
      std::perror(json.c_str());
      return 1;
    }
    std::fprintf(
        out,
        "{\"block_size\":%zu,\"threads\":%d,\"batch_blocks\":%d,\"seconds\":%.2f,"
        "\"served_mb_per_s\":%.1f,\"cores\":%u,\"local_fetch_us_median\":%.1f,"
        "\"remote_fetch_us_median\":%.1f,\"remote_fetch_us_p99\":%.1f,\"tls_added_us_median\":%.1f,"
        "\"small_request_us_median\":%.1f}\n",
        bs, threads, batch, elapsed, mb_per_s, std::thread::hardware_concurrency(), local_med,
        remote_med, Percentile(remote_us, 0.99), remote_med - local_med, Percentile(small_us, 0.5));
    std::fclose(out);
  }
  {
    std::printf(
        "re-encrypted blocks served: %.1f MB/s (%d threads, batches of %d x %zu KiB, %u cores,"
        " sites' decryption on the same cores)\n",
        mb_per_s, threads, batch, bs / 1024, std::thread::hardware_concurrency());
    std::printf(
        "one %zu KiB block: in-process %.1f us, through lsid %.1f us (p99 %.1f us): "
        "TLS and the service add %.1f us\n",
        bs / 1024, local_med, remote_med, Percentile(remote_us, 0.99), remote_med - local_med);
    std::printf("a request with a small answer (a snapshot's facts): %.1f us\n",
                Percentile(small_us, 0.5));
  }
  server.reset();
  queue.Stop();
  std::string rm = "rm -rf '" + dir + "'";
  return std::system(rm.c_str()) == 0 ? 0 : 1;
}
