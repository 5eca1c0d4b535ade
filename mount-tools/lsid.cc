// lsid: the region service of the two-site form (DESIGN.md, "Where each part
// runs"). It holds the store, the provider key and the co-access database
// of all sites, runs the PSA, and serves each site over mutually
// authenticated TLS 1.3 only what is encrypted for that site's extension.
// The logic lives in core/region; this file parses arguments, opens the
// store and runs until a stop signal.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>
#include <thread>

#include "core/access/access_db.h"
#include "core/assembler/queue.h"
#include "core/catalog/catalog.h"
#include "core/control/control.h"
#include "core/origin/link.h"
#include "core/region/region.h"
#include "core/region/server.h"
#include "core/service/service.h"
#include "core/service/successors.h"
#include "core/store/store.h"

namespace po = boost::program_options;
using namespace lsifs;

namespace {

std::mutex g_log_mu;

void Log(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_log_mu);
  std::fprintf(stderr, "lsid: %s\n", line.c_str());
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "lsid: %s\n", message.c_str());
  return 1;
}

const char kUsage[] =
    "usage: lsid STORE --listen ADDR:PORT [options]\n"
    "\n"
    "Serves a store to remote sites over HTTPS with mutual TLS 1.3: each site\n"
    "connects with the certificate `lsictl cert issue EXT` made for its extension\n"
    "and is served only that extension's data: base blocks re-encrypted for it,\n"
    "its own LSIs' manifests and layers, restores and pre-assemblies for it.\n"
    "The provider key never leaves this host.\n"
    "\n"
    "First: lsictl -s STORE ca init --host NAME (the CA and this server's\n"
    "certificate), lsictl -s STORE key create EXT, lsictl -s STORE cert issue EXT.\n"
    "\n"
    "A revoked certificate (lsictl cert revoke EXT) is refused within a second,\n"
    "without a restart; SIGHUP rereads the revocation list at once. SIGINT or\n"
    "SIGTERM stops. lsictl on this host reaches lsid through the store's control\n"
    "socket, as it reaches lsifs.\n"
    "\n"
    "Options";

}  // namespace

int main(int argc, char** argv) {
  po::options_description visible(kUsage);
  std::string listen, ca, cert, key, crl;
  size_t workers = 0, max_connections = 0, max_per_extension = 0;
  double rate = 0, burst = 0;
  // clang-format off
  visible.add_options()
      ("help,h", "show this help")
      ("version", "show the version")
      ("listen,l", po::value(&listen), "ADDR:PORT to listen on (0.0.0.0:8443, [::]:8443; port 0 picks one)")
      ("ca", po::value(&ca), "the CA certificate sites' certificates are checked against (default: STORE/ca/ca.crt)")
      ("cert", po::value(&cert), "this server's certificate (default: STORE/ca/server.crt)")
      ("key", po::value(&key), "this server's key, mode 0600 (default: STORE/ca/server.key)")
      ("crl", po::value(&crl), "the revocation list, reread when it changes (default: STORE/ca/crl.pem)")
      ("workers", po::value(&workers)->default_value(4), "requests handled at once, shared fairly between extensions")
      ("max-connections", po::value(&max_connections)->default_value(256), "connections open at once, in all")
      ("max-per-extension", po::value(&max_per_extension)->default_value(32), "connections open at once for one extension")
      ("rate", po::value(&rate)->default_value(0), "requests per second one extension may make (0: no limit; over it: 429)")
      ("burst", po::value(&burst)->default_value(0), "requests one extension may make at once above --rate (0: one second's worth)")
      ("no-preassemble", "do not pre-assemble before asked (when a session ends or a snapshot is added)");
  // clang-format on
  po::options_description hidden;
  std::string store_path;
  hidden.add_options()("store", po::value(&store_path));
  po::options_description all;
  all.add(visible).add(hidden);
  po::positional_options_description positional;
  positional.add("store", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "lsid: %s (see lsid --help)\n", e.what());
    return 2;
  }
  if (vm.count("help")) {
    std::cout << visible << "\nSee lsid(8).\n";
    return 0;
  }
  if (vm.count("version")) {
    std::printf("lsid %s\n", LSIFS_VERSION);
    return 0;
  }
  if (store_path.empty()) {
    std::fprintf(stderr, "lsid: no STORE given (see lsid --help)\n");
    return 2;
  }
  if (listen.empty()) {
    std::fprintf(stderr, "lsid: no --listen ADDR:PORT given (see lsid --help)\n");
    return 2;
  }
  if (rate < 0 || burst < 0) {
    std::fprintf(stderr, "lsid: --rate and --burst are not negative\n");
    return 2;
  }

  // Stop and reload signals are taken by sigwait below, so every thread
  // started from here on must not take them.
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<Store> store;
  Status s = Store::Open(store_path, &store);
  if (!s.ok()) return Fail(s.message());
  SecretKey provider;
  s = store->LoadProviderKey(&provider);
  if (!s.ok()) return Fail(s.message());
  const OriginKeys origin_keys = OriginKeys::Derive(provider);
  provider.Wipe();
  std::unique_ptr<Catalog> catalog;
  s = Catalog::Open(*store, &catalog);
  if (!s.ok()) return Fail(s.message());

  // The region's assemblies read the store directly: no WAN to model, the
  // link only orders them by priority.
  LocalOrigin local(*store, origin_keys);
  OriginLink link(local, LinkOptions());
  const SessionPolicy session_policy =
      MakeSessionPolicy(*store, origin_keys, /*learn_sequential=*/false);
  std::unique_ptr<AccessDb> db;
  s = AccessDb::Open(store->db_dir(), CoAccessSettings(), &db, session_policy);
  if (!s.ok()) {
    return Fail("cannot hold the store's co-access database: " + s.message() +
                " (a region's lsid holds it alone: stop the lsifs or lsid that has it)");
  }
  std::mutex db_mu;

  PlanOptions confidence;
  confidence.min_support = 0;
  SuccessorCache successors(confidence, 1 << 20);
  ServiceEnv env;
  env.store = store.get();
  env.keys = &origin_keys;
  env.link = &link;
  env.catalog = catalog.get();
  env.preassemble = vm.count("no-preassemble") == 0;
  env.with_db = [&](const std::function<Status(AccessDb*)>& fn) {
    std::lock_guard<std::mutex> lock(db_mu);
    return fn(db.get());
  };
  env.on_session_end = [&](AccessDb& adb, const std::string& volume) {
    successors.Build(adb, volume);
    if (env.preassemble) QueuePreassemblies(env, adb, volume, "session end");
  };
  AssemblyQueue::Options queue_options;
  queue_options.log = Log;
  AssemblyQueue queue(MakeAssemblyWork(env), queue_options);
  env.queue = &queue;

  // lsictl on this host (import, key create, lsi list...) reaches the
  // database held here through the control socket.
  std::unique_ptr<ControlServer> control;
  s = ControlServer::Start(
      store->control_socket_path(),
      [&](const std::vector<std::string>& request, const ControlServer::Progress& progress,
          std::string* body) {
        if (!request.empty() && request[0] == "ping") {
          *body = "pid " + std::to_string(::getpid()) + " holds_db 1";
          return Status::Ok();
        }
        if (!request.empty() && request[0] == "keys-changed") {
          *body = "not served here";
          return Status::Ok();
        }
        ServiceEnv for_request = env;
        for_request.progress = progress;
        return ServeRequest(for_request, request, body);
      },
      &control, /*take_over=*/true);
  if (!s.ok()) return Fail("control socket: " + s.message());

  RegionService service(env, successors);
  RegionServerOptions options;
  options.listen = listen;
  options.ca_cert_path = ca.empty() ? store->ca_cert_path() : ca;
  options.cert_path = cert.empty() ? store->server_cert_path() : cert;
  options.key_path = key.empty() ? store->server_key_path() : key;
  options.crl_path = crl.empty() ? store->crl_path() : crl;
  options.workers = workers;
  options.max_connections = max_connections;
  options.max_per_extension = max_per_extension;
  options.rate_per_extension = rate;
  options.rate_burst = burst;
  options.log = Log;
  if (ca.empty() && ::access(options.ca_cert_path.c_str(), F_OK) != 0) {
    return Fail("the store has no certificate authority: run `lsictl -s " + store_path +
                " ca init --host NAME` first");
  }
  std::unique_ptr<RegionServer> server;
  s = RegionServer::Start(options, service, &server);
  if (!s.ok()) return Fail(s.message());
  Log("serving " + store_path + " on https://" + server->endpoint() + " (TLS 1.3, mutual)");

  // Successor tables asked for by sites are built off their requests' way
  // when sessions end; here, those asked for and missing.
  std::atomic<bool> stop{false};
  std::thread builder([&] {
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (!successors.Wanted()) continue;
      std::lock_guard<std::mutex> lock(db_mu);
      successors.Build(*db);
    }
  });

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      Status reloaded = server->ReloadRevocations();
      Log(reloaded.ok() ? "revocation list reread" : "revocation list: " + reloaded.message());
      continue;
    }
    Log(std::string("stopping (") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ")");
    break;
  }
  server.reset();
  queue.Stop();
  stop = true;
  builder.join();
  control.reset();
  Log("stopped");
  return 0;
}
