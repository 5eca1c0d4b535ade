// lsictl: the administration and restore CLI of lsifs. Every command's logic
// lives in core/; this file parses arguments and prints results (text for
// people, --json for scripts).
#include <fcntl.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/catalog/catalog.h"
#include "core/control/control.h"
#include "core/crypto/key_backup.h"
#include "core/crypto/keyfile.h"
#include "core/metrics/metrics.h"
#include "core/origin/import.h"
#include "core/origin/link.h"
#include "core/origin/snapshot.h"
#include "core/region/certs.h"
#include "core/region/client.h"
#include "core/service/report.h"
#include "core/service/service.h"
#include "core/site/site.h"
#include "core/store/store.h"
#include "core/util/file.h"
#include "core/util/hex.h"
#include "core/util/json.h"
#include "core/util/log.h"
#include "core/util/names.h"
#include "core/util/numbers.h"
#include "core/util/progress.h"
#include "core/verify/verify.h"

namespace po = boost::program_options;
using namespace lsifs;

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitDamaged = 3;  // lsictl verify found damage

struct Context {
  std::string store_path;
  bool json = false;
  // --region: a site asks the region's lsid, as the extension its
  // certificate names.
  std::string region, region_cert, region_key, region_ca;
  po::variables_map vm;

  std::string Arg(const char* name) const {
    return vm.count(name) ? vm[name].as<std::string>() : std::string();
  }
};

// Ctrl-C and SIGTERM during long work (an import): the work stops between
// two steps, removes what it wrote and says so, instead of dying midway.
std::atomic<bool> g_interrupted{false};

class StopOnInterrupt {
 public:
  StopOnInterrupt() {
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_interrupted.store(true); };
    ::sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopOnInterrupt() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

int Fail(const Status& s) {
  std::fprintf(stderr, "lsictl: %s\n", PrintableLine(s.message()).c_str());
  return kExitError;
}

Status OpenStore(const Context& ctx, std::unique_ptr<Store>* store) {
  return Store::Open(ctx.store_path, store);
}

Status LoadOriginKeys(const Store& store, std::unique_ptr<OriginKeys>* keys) {
  SecretKey provider;
  LSIFS_RETURN_IF_ERROR(store.LoadProviderKey(&provider));
  *keys = std::make_unique<OriginKeys>(OriginKeys::Derive(provider));
  return Status::Ok();
}

void PrintJson(const JsonWriter& j) {
  std::printf("%s\n", j.str().c_str());
}

Status ParseIdArg(const std::string& text, const char* what, uint64_t* id) {
  auto parsed = ParseId(text);
  if (!parsed) {
    return Status::InvalidArgument(std::string(what) + " id '" + text +
                                   "' is not a valid id (16 hex digits, not all zeros)");
  }
  *id = *parsed;
  return Status::Ok();
}

// The TLS material of a site: --cert, --key and --ca, else the site
// folder's (-s SITE_DIR) as lsifs --region finds it, for the extension
// given or the one whose certificate is there.
Status OpenRegion(const Context& ctx, const std::string& extension, std::chrono::seconds timeout,
                  std::unique_ptr<RegionClient>* out) {
  const bool all_given =
      !ctx.region_cert.empty() && !ctx.region_key.empty() && !ctx.region_ca.empty();
  if (!all_given && ctx.store_path.empty()) {
    return Status::InvalidArgument(
        "--region needs the site's TLS material: -s SITE_DIR (its tls/ folder), or --cert, "
        "--key and --ca");
  }
  RegionClientOptions ro;
  ro.url = ctx.region;
  ro.cert_path = ctx.region_cert;
  ro.key_path = ctx.region_key;
  ro.ca_path = ctx.region_ca;
  ro.request_timeout = timeout;
  ro.connect_timeout = std::min<std::chrono::milliseconds>(ro.connect_timeout, timeout);
  return OpenSiteClient(std::move(ro), ctx.store_path, extension, out);
}

// `request` asked of the region's lsid (the routes of region/protocol.h),
// whose replies are the service's own. What a site may ask: restores,
// pre-assemblies, and its own LSIs and assemblies.
Status RegionServiceCall(const Context& ctx, const std::vector<std::string>& request,
                         std::string* body, std::chrono::seconds timeout) {
  const std::string& what = request[0];
  RegionCall call;
  std::string extension;
  if (what == "restore" || what == "preassemble") {
    extension = request[1];
    boost::json::object o{{"volume", request[2]}};
    if (what == "restore") {
      if (request[3] != "-") o["snapshot"] = request[3];
    } else {
      uint64_t budget = 0;
      LSIFS_RETURN_IF_ERROR(ParseUnsigned(request[5], "--budget", 0, UINT64_MAX, &budget));
      o["strategy"] = request[3];
      o["priority"] = request[4];
      o["budget"] = budget;
      o["explain"] = request[6] == "1";
    }
    call.method = "POST";
    call.target = "/v1/" + what;
    call.body = boost::json::serialize(o);
    call.link_class = LinkClass::kHigh;
  } else if (what == "lsi-list") {
    call.target = "/v1/lsis";
  } else if (what == "lsi-show") {
    call.target = "/v1/lsis/" + request[1];
  } else if (what == "assemblies") {
    call.target = "/v1/assemblies";
  } else if (what == "assembly-cancel") {
    call.method = "POST";
    call.target = "/v1/assemblies/" + request[1] + "/cancel";
  } else {
    return Status::InvalidArgument(
        "this is the region's to do, on its host (lsictl -s STORE ...); with --region a site "
        "may restore, preassemble, and list or show its LSIs and assemblies");
  }
  std::unique_ptr<RegionClient> region;
  LSIFS_RETURN_IF_ERROR(OpenRegion(ctx, extension, timeout, &region));
  RegionAnswer answer;
  LSIFS_RETURN_IF_ERROR(region->Call(call, &answer));
  *body = std::move(answer.body);
  // The site's lsifs, if one runs here, pulls what was delivered now rather
  // than at its next pass.
  std::unique_ptr<Store> site;
  if (what == "restore" && !ctx.store_path.empty() && Store::Open(ctx.store_path, &site).ok()) {
    std::string ignored;
    bool reached = false;
    (void)ControlCall(site->control_socket_path(), {"site-pull"}, &ignored, std::chrono::seconds(5),
                      &reached, nullptr);
  }
  return Status::Ok();
}

// Sends `request` to the running lsifs, which holds the co-access database
// and the origin link; when none runs, serves it here on the store itself.
// With --region, asks the region instead. Long work (assemblies) may take
// `timeout` in the daemon.
Status ServiceCall(const Context& ctx, const std::vector<std::string>& request, std::string* body,
                   std::chrono::seconds timeout = std::chrono::seconds(60),
                   std::function<void(uint64_t, uint64_t)> progress = nullptr) {
  if (!ctx.region.empty()) return RegionServiceCall(ctx, request, body, timeout);
  std::unique_ptr<Store> store;
  LSIFS_RETURN_IF_ERROR(OpenStore(ctx, &store));
  bool reached = false;
  Status s = ControlCall(store->control_socket_path(), request, body, timeout, &reached, progress);
  if (reached || s.code() != Status::Code::kUnavailable) {
    if (reached && (ctx.vm.count("origin-latency") || ctx.vm.count("origin-bandwidth"))) {
      std::fprintf(stderr,
                   "lsictl: note: the running lsifs did this on its own origin link; "
                   "--origin-latency and --origin-bandwidth apply without a daemon only\n");
    }
    return s;
  }
  std::unique_ptr<OriginKeys> keys;
  LSIFS_RETURN_IF_ERROR(LoadOriginKeys(*store, &keys));
  std::unique_ptr<Catalog> catalog;
  LSIFS_RETURN_IF_ERROR(Catalog::Open(*store, &catalog));
  // The link to model, as lsifs -o origin_latency=,origin_bandwidth= does.
  WanProfile wan;
  if (ctx.vm.count("origin-latency")) {
    LSIFS_RETURN_IF_ERROR(ParseLatency(ctx.Arg("origin-latency"), &wan.latency));
  }
  if (ctx.vm.count("origin-bandwidth")) {
    LSIFS_RETURN_IF_ERROR(ParseBandwidth(ctx.Arg("origin-bandwidth"), &wan.bytes_per_second));
  }
  LocalOrigin local(*store, *keys);
  LinkOptions link_options;
  link_options.profile = wan;
  OriginLink link(local, link_options);
  ServiceEnv env;
  env.store = store.get();
  env.keys = keys.get();
  env.link = &link;
  env.catalog = catalog.get();
  env.progress = std::move(progress);
  env.with_db = [&](const std::function<Status(AccessDb*)>& fn) {
    // Another lsictl may hold the database for a moment.
    std::unique_ptr<AccessDb> db;
    const SessionPolicy policy = MakeSessionPolicy(*store, *keys, /*learn_sequential=*/false);
    Status opened = AccessDb::Open(store->db_dir(), CoAccessSettings(), &db, policy);
    for (int i = 0; i < 50 && opened.code() == Status::Code::kUnavailable; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      opened = AccessDb::Open(store->db_dir(), CoAccessSettings(), &db, policy);
    }
    return fn(opened.ok() ? db.get() : nullptr);
  };
  AssemblyQueue queue(MakeAssemblyWork(env), AssemblyQueue::Options());
  env.queue = &queue;
  if (request[0] != "restore" && request[0] != "preassemble") {
    return ServeRequest(env, request, body);
  }
  // An assembly here, in this process: Ctrl-C cancels it between two
  // requests to the origin, and what it wrote goes with it.
  StopOnInterrupt stop_on_interrupt;
  std::atomic<bool> served{false};
  std::thread watcher([&] {
    while (!served.load()) {
      if (g_interrupted.load()) {
        queue.Stop();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  Status served_status = ServeRequest(env, request, body);
  served = true;
  watcher.join();
  if (g_interrupted.load() && !served_status.ok()) {
    return Status::Cancelled("interrupted; nothing was assembled");
  }
  return served_status;
}

// Parses a service reply (JSON) for rendering as text.
Status ParseReply(const std::string& body, boost::json::value* out) {
  boost::system::error_code ec;
  *out = boost::json::parse(body, ec);
  if (ec) return Status::Corruption("unreadable reply from the service: " + ec.message());
  return Status::Ok();
}

std::string Str(const boost::json::value& v, const char* key) {
  const auto* f = v.as_object().if_contains(key);
  return f != nullptr && f->is_string() ? std::string(f->as_string()) : std::string("-");
}

uint64_t Num(const boost::json::value& v, const char* key) {
  const auto* f = v.as_object().if_contains(key);
  if (f == nullptr) return 0;
  if (f->is_uint64()) return f->as_uint64();
  if (f->is_int64()) return static_cast<uint64_t>(std::max<int64_t>(0, f->as_int64()));
  return 0;
}

bool Flag(const boost::json::value& v, const char* key) {
  const auto* f = v.as_object().if_contains(key);
  return f != nullptr && f->is_bool() && f->as_bool();
}

// "delivered, image, in use": the state and what else matters about it.
std::string StateText(const boost::json::value& lsi) {
  std::string out = Str(lsi, "state");
  if (Flag(lsi, "alias")) out += ", image";
  if (Flag(lsi, "superseded")) out += ", superseded";
  if (Flag(lsi, "in_use")) out += ", in use";
  return out;
}

// Asks the service, then prints its JSON reply as is (--json), or renders it
// for people.
// Long work (an assembly) may take `timeout`, showing its progress on `bar`.
// A listing shows the good entries; each file left out of it is named on
// stderr, and the exit status says the listing is not whole.
int NameLeftOut(const char* why, const std::vector<std::string>& left_out) {
  for (const auto& f : left_out) {
    std::fprintf(stderr, "lsictl: %s, not listed: %s\n", why, PrintableLine(f).c_str());
  }
  return left_out.empty() ? 0 : kExitError;
}

int ServeAndPrint(const Context& ctx, const std::vector<std::string>& request,
                  const std::function<int(const boost::json::value&)>& render,
                  std::chrono::seconds timeout = std::chrono::seconds(60),
                  ProgressBar* bar = nullptr) {
  std::string body;
  Status s = ServiceCall(ctx, request, &body, timeout, [bar](uint64_t done, uint64_t total) {
    if (bar != nullptr) bar->Update(done, total);
  });
  if (bar != nullptr) bar->Finish();
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    std::printf("%s\n", body.c_str());
    return 0;
  }
  boost::json::value v;
  s = ParseReply(body, &v);
  if (!s.ok()) return Fail(s);
  return render(v);
}

std::string Shorten(std::string s, size_t n) {
  return s.size() <= n ? s : s.substr(0, n - 1) + "~";
}

// ---- commands ------------------------------------------------------------

int CmdInit(Context& ctx) {
  std::string path = ctx.Arg("store-path");
  StoreConfig config;
  Status s;
  if (ctx.vm.count("block-size")) s = ParseBlockSize(ctx.Arg("block-size"), &config.block_size);
  if (s.ok() && ctx.vm.count("lsi-cap")) s = ParseByteSize(ctx.Arg("lsi-cap"), &config.lsi_cap);
  if (s.ok() && ctx.vm.count("free-floor")) {
    s = ParseByteSize(ctx.Arg("free-floor"), &config.free_floor);
  }
  if (s.ok() && ctx.vm.count("lsi-cap") && config.lsi_cap == 0) {
    s = Status::InvalidArgument("--lsi-cap 0 would leave no room for any LSI");
  }
  if (s.ok()) s = Store::Init(path, &config);
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("store", path)
        .Field("store_id", FormatId(config.store_id))
        .Field("block_size", config.block_size)
        .Field("lsi_cap", config.lsi_cap)
        .Field("free_floor", config.free_floor)
        .EndObject();
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf(
        "Created store %s (block size %s, store id %s; LSIs capped at %s, evicted below %s "
        "free).\n",
        path.c_str(), FormatBytes(config.block_size).c_str(), FormatId(config.store_id).c_str(),
        FormatBytes(config.lsi_cap).c_str(), FormatBytes(config.free_floor).c_str());
    std::printf("Next: export LSIFS_STORE=%s; lsictl key create EXT; lsictl import VOLUME IMAGE\n",
                path.c_str());
  }
  return 0;
}

int CmdKeyCreate(Context& ctx) {
  std::unique_ptr<Store> store;
  Status s = OpenStore(ctx, &store);
  if (!s.ok()) return Fail(s);
  KeyInfo info;
  s = store->keyring().Create(ctx.Arg("extension"), &info);
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("extension", info.name)
        .Field("key_id", FormatId(info.id))
        .Field("path", info.path)
        .EndObject();
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("Created %s in %s (mode 0600).\n", DescribeKey(info).c_str(), info.path.c_str());
  }
  return 0;
}

int CmdKeyList(Context& ctx) {
  std::unique_ptr<Store> store;
  Status s = OpenStore(ctx, &store);
  if (!s.ok()) return Fail(s);
  std::vector<KeyInfo> keys;
  std::vector<std::string> unusable;
  s = store->keyring().List(&keys, &unusable);
  if (!s.ok()) return Fail(s);
  const int status = NameLeftOut("unusable", unusable);
  if (ctx.json) {
    JsonWriter j;
    j.BeginArray();
    for (const auto& k : keys) {
      j.BeginObject()
          .Field("extension", k.name)
          .Field("key_id", FormatId(k.id))
          .Field("path", k.path)
          .Field("rotation_unfinished", store->keyring().RotationPending(k.name))
          .EndObject();
    }
    j.EndArray();
    std::printf("%s\n", j.str().c_str());
    return status;
  }
  if (keys.empty()) {
    std::printf("No extension keys yet; create one with: lsictl key create EXT\n");
    return status;
  }
  std::printf("%-24s %-16s %s\n", "EXTENSION", "KEY ID", "FILE");
  for (const auto& k : keys) {
    std::printf("%-24s %-16s %s%s\n", k.name.c_str(), FormatId(k.id).c_str(), k.path.c_str(),
                store->keyring().RotationPending(k.name)
                    ? ("  (rotation unfinished: lsictl key rotate " + k.name + ")").c_str()
                    : "");
  }
  return status;
}

// Tells the running lsifs (if one holds the control socket) that the keys
// of `extension` changed; other mounts notice at their next open. Says
// whether it was reached.
bool TellKeysChanged(const Store& store, const std::string& extension) {
  std::string body;
  bool reached = false;
  Status s = ControlCall(store.control_socket_path(), {"keys-changed", extension}, &body,
                         std::chrono::seconds(10), &reached);
  if (reached && !s.ok()) {
    std::fprintf(stderr, "lsictl: the running lsifs could not read the keys again: %s\n",
                 PrintableLine(s.message()).c_str());
  }
  return reached && s.ok() && body != "not served here";
}

int CmdKeyRotate(Context& ctx) {
  std::unique_ptr<Store> store;
  std::unique_ptr<Catalog> catalog;
  Status s = OpenStore(ctx, &store);
  if (s.ok()) s = Catalog::Open(*store, &catalog);
  if (!s.ok()) return Fail(s);
  const std::string extension = ctx.Arg("extension");
  KeyRotation r;
  {
    ProgressBar bar("rekeying the LSIs of " + extension);
    // The running lsifs is told after each LSI, so that an image it has
    // open is pinned again through its rekeyed manifest at once.
    s = catalog->RotateKey(
        extension,
        [&](uint64_t done, uint64_t total) {
          bar.Update(done, total);
          if (done > 0) (void)TellKeysChanged(*store, extension);
        },
        &r);
  }
  if (!s.ok()) {
    if (store->keyring().RotationPending(extension)) {
      return Fail(s.WithContext("key rotation of '" + extension +
                                "' interrupted (every LSI stays readable; run it again to "
                                "finish)"));
    }
    return Fail(s);
  }
  const bool told = TellKeysChanged(*store, extension);
  for (const auto& [id, why] : r.left_out) {
    std::fprintf(stderr, "lsictl: LSI %s stays unusable (not rekeyed): %s\n", FormatId(id).c_str(),
                 PrintableLine(why).c_str());
  }
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("extension", extension)
        .Field("old_key_id", FormatId(r.old_key.id))
        .Field("key_id", FormatId(r.new_key.id))
        .Field("resumed", r.resumed)
        .Field("rekeyed", r.rekeyed)
        .Field("already_rekeyed", r.already)
        .Field("layer_bytes", r.layer_bytes)
        .Field("mount_told", told);
    j.Key("left_out").BeginArray();
    for (const auto& [id, why] : r.left_out) {
      j.BeginObject().Field("lsi", FormatId(id)).Field("reason", why).EndObject();
    }
    j.EndArray().EndObject();
    PrintJson(j);
    return 0;
  }
  std::printf("Rotated the key of extension '%s': %s -> %s%s.\n", extension.c_str(),
              FormatId(r.old_key.id).c_str(), FormatId(r.new_key.id).c_str(),
              r.resumed ? " (finished an interrupted rotation)" : "");
  std::printf(
      "%llu LSI(s) rekeyed now (%s of layers rewritten: data keys rewrapped, block records copied "
      "as they were)",
      static_cast<unsigned long long>(r.rekeyed), FormatBytes(r.layer_bytes).c_str());
  if (r.already) std::printf(", %llu before", static_cast<unsigned long long>(r.already));
  std::printf(".\n%s\n", told ? "The running lsifs of this extension reads the new key now."
                              : "Mounts of this extension read the new key at their next open.");
  return 0;
}

int CmdKeyDelete(Context& ctx) {
  std::unique_ptr<Store> store;
  std::unique_ptr<Catalog> catalog;
  Status s = OpenStore(ctx, &store);
  if (s.ok()) s = Catalog::Open(*store, &catalog);
  if (!s.ok()) return Fail(s);
  const std::string extension = ctx.Arg("extension");
  const bool force = ctx.vm["force"].as<bool>();
  KeyDeletion d;
  s = catalog->DeleteKey(extension, force, &d);
  if (!s.ok()) return Fail(s);
  if (d.deleted) (void)TellKeysChanged(*store, extension);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject().Field("extension", extension).Field("deleted", d.deleted);
    j.Key("lsis").BeginArray();
    for (uint64_t id : d.lsis) j.String(FormatId(id));
    j.EndArray().Key("deferred").BeginArray();
    for (uint64_t id : d.deferred) j.String(FormatId(id));
    j.EndArray().Field("freed", d.bytes).EndObject();
    PrintJson(j);
    return d.deleted ? 0 : kExitError;
  }
  if (!d.deleted) {
    std::fprintf(stderr,
                 "lsictl: deleting the key of '%s' would make %zu LSI(s) unusable; nothing was "
                 "deleted. Run again with --force to drop them with it:\n",
                 extension.c_str(), d.lsis.size());
    for (uint64_t id : d.lsis) std::fprintf(stderr, "  %s\n", FormatId(id).c_str());
    return kExitError;
  }
  std::printf("Deleted the key of extension '%s'", extension.c_str());
  if (!d.lsis.empty()) {
    std::printf(" and dropped its %zu LSI(s) (%s freed", d.lsis.size(),
                FormatBytes(d.bytes).c_str());
    if (!d.deferred.empty()) {
      std::printf("; %zu in use go when their mounts release them", d.deferred.size());
    }
    std::printf(")");
  }
  std::printf(".\n");
  return 0;
}

// A passphrase from --passphrase-file (its first line; "-" reads stdin), or
// asked on the terminal without echo (twice when `confirm`).
Status ReadPassphrase(const Context& ctx, bool confirm, std::string* out) {
  if (ctx.vm.count("passphrase-file")) {
    const std::string path = ctx.Arg("passphrase-file");
    std::string text;
    if (path == "-") {
      std::getline(std::cin, text);
    } else {
      LSIFS_RETURN_IF_ERROR(ReadWholeFile(path, 4096, &text));
      text = text.substr(0, text.find('\n'));
    }
    *out = text;
  } else {
    int tty = ::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (tty < 0) {
      return Status::InvalidArgument(
          "no terminal to ask for a passphrase on: use --passphrase-file FILE");
    }
    File closer(tty);
    // No echo and no signals while it is typed: Ctrl-C arrives as a byte
    // and ends the prompt, so the terminal is always put back as it was.
    auto ask = [&](const char* prompt, std::string* answer) -> Status {
      struct termios before {};
      if (::tcgetattr(tty, &before) != 0) return Status::FromErrno("/dev/tty", errno);
      struct termios quiet = before;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ISIG);
      (void)!::write(tty, prompt, std::strlen(prompt));
      ::tcsetattr(tty, TCSAFLUSH, &quiet);
      answer->clear();
      Status got = Status::Ok();
      for (;;) {
        char c;
        const ssize_t n = ::read(tty, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n != 1) {
          got = Status::InvalidArgument("no passphrase was given (end of input)");
          break;
        }
        if (c == '\n' || c == '\r') break;
        if (c == before.c_cc[VINTR] || c == before.c_cc[VQUIT] || c == before.c_cc[VSUSP]) {
          got = Status::Cancelled("interrupted; nothing was done");
          break;
        }
        answer->push_back(c);
      }
      ::tcsetattr(tty, TCSAFLUSH, &before);
      (void)!::write(tty, "\n", 1);
      if (!got.ok()) OPENSSL_cleanse(answer->data(), answer->size());
      return got;
    };
    LSIFS_RETURN_IF_ERROR(ask("Passphrase: ", out));
    if (confirm) {
      std::string again;
      LSIFS_RETURN_IF_ERROR(ask("Passphrase again: ", &again));
      const bool same = again == *out;
      OPENSSL_cleanse(again.data(), again.size());
      if (!same) return Status::InvalidArgument("the passphrases differ; nothing was done");
    }
  }
  if (confirm && out->size() < 8) {
    return Status::InvalidArgument("the passphrase must have at least 8 characters");
  }
  return Status::Ok();
}

int CmdKeyExportProvider(Context& ctx) {
  std::unique_ptr<Store> store;
  Status s = OpenStore(ctx, &store);
  if (!s.ok()) return Fail(s);
  const std::string path = ctx.Arg("file");
  KeyInfo info;
  SecretKey key;
  s = ReadKeyFile(store->provider_key_path(), &info, &key);
  std::string passphrase, backup;
  if (s.ok()) s = ReadPassphrase(ctx, /*confirm=*/true, &passphrase);
  if (s.ok()) s = ExportProviderKey(info, key, passphrase, ScryptCost(), &backup);
  OPENSSL_cleanse(passphrase.data(), passphrase.size());
  // Beside its destination, so that the rename is atomic; never replaces.
  if (s.ok()) {
    std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
    if (dir.empty()) dir = "/";
    s = WriteFileAtomically(dir, path, AsBytes(backup), 0600, /*replace=*/false);
    if (s.code() == Status::Code::kExists) {
      s = Status::Exists(path + " exists; choose another file name");
    }
  }
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject().Field("file", path).Field("key_id", FormatId(info.id)).EndObject();
    PrintJson(j);
  } else {
    std::printf(
        "Wrote the provider key %s, wrapped under the passphrase, to %s (mode 0600).\n"
        "Keep it and the passphrase apart; restore with: lsictl key import-provider %s\n",
        FormatId(info.id).c_str(), path.c_str(), path.c_str());
  }
  return 0;
}

int CmdKeyImportProvider(Context& ctx) {
  std::unique_ptr<Store> store;
  Status s = OpenStore(ctx, &store);
  if (!s.ok()) return Fail(s);
  const std::string path = ctx.Arg("file");
  std::string backup, passphrase;
  s = ReadWholeFile(path, 64 * 1024, &backup);
  KeyInfo info;
  SecretKey key;
  if (s.ok()) s = ReadPassphrase(ctx, /*confirm=*/false, &passphrase);
  if (s.ok()) s = ImportProviderKey(backup, passphrase, &info, &key);
  OPENSSL_cleanse(passphrase.data(), passphrase.size());
  if (!s.ok()) return Fail(s);
  const std::string target = store->provider_key_path();
  KeyInfo present;
  SecretKey present_key;
  if (ReadKeyFile(target, &present, &present_key).ok()) {
    if (present.id == info.id) {
      if (ctx.json) {
        JsonWriter j;
        j.BeginObject().Field("imported", FormatId(info.id)).Field("changed", false).EndObject();
        PrintJson(j);
      } else {
        std::printf("The store already holds provider key %s; nothing changed.\n",
                    FormatId(info.id).c_str());
      }
      return 0;
    }
    return Fail(Status::Exists("this store holds another provider key (" + FormatId(present.id) +
                               ") than the backup (" + FormatId(info.id) +
                               "); nothing was changed"));
  }
  if (PathExists(target)) {
    return Fail(Status::Exists(target + " is there but unreadable; move it aside first"));
  }
  // The key must open this store's snapshots, if it has any.
  std::vector<SnapshotInfo> listed;
  std::vector<std::string> damaged;
  OriginKeys keys = OriginKeys::Derive(key);
  s = ListSnapshots(*store, keys, "", &listed, &damaged);
  if (!s.ok()) return Fail(s.WithContext("checking the backup's key against the snapshots"));
  if (listed.empty() && !damaged.empty()) {
    return Fail(Status::Permission("the backup's key " + FormatId(info.id) +
                                   " does not open this store's snapshots; nothing was changed"));
  }
  info.path = target;
  s = WriteKeyFile(store->tmp_dir(), target, info, key);
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("imported", FormatId(info.id))
        .Field("changed", true)
        .Field("path", target)
        .EndObject();
    PrintJson(j);
  } else {
    std::printf("Restored provider key %s to %s (mode 0600); %zu snapshot(s) open with it.\n",
                FormatId(info.id).c_str(), target.c_str(), listed.size());
  }
  return 0;
}

void SnapshotJson(JsonWriter& j, const SnapshotInfo& s) {
  j.BeginObject().Field("volume", s.volume).Field("snapshot", FormatId(s.id)).Key("parent");
  if (s.parent) {
    j.String(FormatId(s.parent));
  } else {
    j.Null();
  }
  j.Field("size", s.size)
      .Field("block_size", s.block_size)
      .Field("present_blocks", s.present_blocks)
      .Field("stored_blocks", s.stored_blocks)
      .Field("created", FormatTime(s.created_us / 1000000))
      .EndObject();
}

int CmdImport(Context& ctx) {
  std::unique_ptr<Store> store;
  Status s = OpenStore(ctx, &store);
  if (!s.ok()) return Fail(s);
  std::unique_ptr<OriginKeys> origin_keys;
  s = LoadOriginKeys(*store, &origin_keys);
  if (!s.ok()) return Fail(s);
  const OriginKeys& keys = *origin_keys;

  std::string volume = ctx.Arg("volume");
  ProgressBar bar("importing " + volume);
  ImportOptions options;
  options.progress = [&](uint64_t done, uint64_t total) { bar.Update(done, total); };
  options.resize = ctx.vm["resize"].as<bool>();
  options.cancel = &g_interrupted;
  StopOnInterrupt stop_on_interrupt;
  ImportResult r;
  s = ImportImage(*store, keys, volume, ctx.Arg("image"), options, &r);
  bar.Finish();
  if (!s.ok()) return Fail(s);
  // A running lsifs pre-assembles the new snapshot for the extensions that
  // restore this volume, before they ask.
  std::string told;
  (void)ControlCall(store->control_socket_path(), {"snapshot-added", volume}, &told,
                    std::chrono::seconds(5));

  double mbps = r.seconds > 0 ? static_cast<double>(r.snapshot.size) / r.seconds / 1e6 : 0;
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject().Key("snapshot_info");
    SnapshotJson(j, r.snapshot);
    j.Field("snapshot", FormatId(r.snapshot.id))
        .Field("new_blocks", r.new_blocks)
        .Field("reused_blocks", r.reused_blocks)
        .Field("zero_blocks", r.zero_blocks)
        .Field("bytes_stored", r.bytes_stored)
        .Field("seconds", r.seconds)
        .Field("throughput_mb_s", mbps)
        .EndObject();
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  std::fprintf(stderr,
               "imported %s: %s image, %llu blocks stored (%s), %llu unchanged since parent, "
               "%llu zero; %.2f s, %.0f MB/s\n",
               volume.c_str(), FormatBytes(r.snapshot.size).c_str(),
               static_cast<unsigned long long>(r.new_blocks), FormatBytes(r.bytes_stored).c_str(),
               static_cast<unsigned long long>(r.reused_blocks),
               static_cast<unsigned long long>(r.zero_blocks), r.seconds, mbps);
  std::printf("%s\n", FormatId(r.snapshot.id).c_str());
  return 0;
}

int CmdSnapshots(Context& ctx) {
  std::unique_ptr<Store> store;
  Status s = OpenStore(ctx, &store);
  if (!s.ok()) return Fail(s);
  std::unique_ptr<OriginKeys> origin_keys;
  s = LoadOriginKeys(*store, &origin_keys);
  if (!s.ok()) return Fail(s);
  const OriginKeys& keys = *origin_keys;
  std::vector<SnapshotInfo> list;
  std::vector<std::string> damaged;
  std::string volume = ctx.Arg("volume");
  s = ListSnapshots(*store, keys, volume, &list, &damaged);
  if (!s.ok()) return Fail(s);
  const int status = NameLeftOut("damaged", damaged);
  if (ctx.json) {
    JsonWriter j;
    j.BeginArray();
    for (const auto& snap : list) SnapshotJson(j, snap);
    j.EndArray();
    std::printf("%s\n", j.str().c_str());
    return status;
  }
  if (list.empty()) {
    std::printf("No snapshots%s; import one with: lsictl import VOLUME IMAGE\n",
                volume.empty() ? "" : (" of " + volume).c_str());
    return status;
  }
  std::printf("%-16s %-16s %-20s %10s %10s %10s %10s\n", "VOLUME", "SNAPSHOT", "CREATED", "SIZE",
              "BLOCK", "PRESENT", "STORED");
  for (const auto& snap : list) {
    std::printf("%-16s %-16s %-20s %10s %10s %10llu %10llu\n", snap.volume.c_str(),
                FormatId(snap.id).c_str(), FormatTime(snap.created_us / 1000000).c_str(),
                FormatBytes(snap.size).c_str(), FormatBytes(snap.block_size).c_str(),
                static_cast<unsigned long long>(snap.present_blocks),
                static_cast<unsigned long long>(snap.stored_blocks));
  }
  return status;
}

// Prints an LSI the service returned: its id on stdout (for scripts),
// `what` happened on stderr.
// Prints an LSI the service returned: its id on stdout (for scripts),
// `what` happened on stderr; with `explain`, why it holds its blocks.
int PrintDelivered(const boost::json::value& v, const std::string& what, bool explain) {
  std::string how;
  if (!Flag(v, "reused")) {
    how = "; " + std::to_string(Num(v, "fetched_blocks")) + " blocks fetched over the link, " +
          std::to_string(Num(v, "local_blocks")) + " re-sealed from local copies";
  }
  std::fprintf(
      stderr, "%s LSI of %s (snapshot %s) for %s: %llu blocks in %llu delta layer(s)%s; %s\n",
      what.c_str(), Str(v, "volume").c_str(), Str(v, "snapshot").c_str(),
      Str(v, "extension").c_str(), static_cast<unsigned long long>(Num(v, "prefetched_blocks")),
      static_cast<unsigned long long>(Num(v, "layers")), how.c_str(),
      Str(v, "expires") == "-" ? "never expires" : ("expires " + Str(v, "expires")).c_str());
  const auto* plan = v.as_object().if_contains("plan");
  if (explain && plan != nullptr && plan->is_object()) {
    const auto& tiers = plan->as_object().at("tiers");
    std::printf(
        "plan: %llu blocks within a budget of %s (a session reads about %.0f blocks; own history "
        "weighs %.0f%%, the volume-wide model the rest)\n"
        "  own        %6llu  read often by this extension's past sessions\n"
        "  volume-wide%6llu  read often by every extension's sessions of the volume\n"
        "  successor  %6llu  followed a confident seed in past sessions\n"
        "  metadata   %6llu  read first by every session (filesystem metadata)\n"
        "  left out   %6llu  above the probability floor, beyond the budget\n",
        static_cast<unsigned long long>(Num(v, "prefetched_blocks")),
        FormatBytes(Num(*plan, "budget_bytes")).c_str(),
        plan->as_object().at("expected_blocks").to_number<double>(),
        100 * plan->as_object().at("own_weight").to_number<double>(),
        static_cast<unsigned long long>(Num(tiers, "own")),
        static_cast<unsigned long long>(Num(tiers, "volume-wide")),
        static_cast<unsigned long long>(Num(tiers, "successor")),
        static_cast<unsigned long long>(Num(tiers, "metadata")),
        static_cast<unsigned long long>(Num(*plan, "cut_by_budget")));
  } else if (explain) {
    std::printf("plan: %s\n", Flag(v, "reused") ? "a fresh LSI was already assembled"
                                                : ("strategy " + Str(v, "strategy")).c_str());
  }
  std::printf("%s\n", Str(v, "lsi").c_str());
  return 0;
}

// An assembly or restore asked of the service, with a progress bar; the
// reply printed as JSON, or as `fresh` or `made` says when it was (not)
// reused.
int AssemblyCommand(const Context& ctx, const std::string& label,
                    const std::vector<std::string>& request, const std::string& fresh,
                    const std::string& made, bool explain) {
  ProgressBar bar(label);
  return ServeAndPrint(
      ctx, request,
      [&](const boost::json::value& v) {
        return PrintDelivered(v, Flag(v, "reused") ? fresh : made, explain);
      },
      std::chrono::hours(24), &bar);
}

int CmdRestore(Context& ctx) {
  std::string snapshot = "-";
  if (ctx.vm.count("snapshot")) {
    uint64_t id = 0;
    Status s = ParseIdArg(ctx.Arg("snapshot"), "snapshot", &id);
    if (s.ok() && id == 0) s = Status::InvalidArgument("snapshot id 0 names no snapshot");
    if (!s.ok()) return Fail(s);
    snapshot = FormatId(id);
  }
  return AssemblyCommand(ctx, "restoring " + ctx.Arg("volume"),
                         {"restore", ctx.Arg("extension"), ctx.Arg("volume"), snapshot},
                         "delivered the fresh", "assembled and delivered a new", false);
}

int CmdPreassemble(Context& ctx) {
  std::string priority = ctx.vm.count("priority") ? ctx.Arg("priority") : "normal";
  std::string strategy = ctx.vm.count("strategy") ? ctx.Arg("strategy") : kPredictedStrategy;
  uint64_t budget = 0;
  if (ctx.vm.count("budget")) {
    Status s = ParseByteSize(ctx.Arg("budget"), &budget);
    if (s.ok() && budget == 0) s = Status::InvalidArgument("--budget 0 would plan nothing");
    if (!s.ok()) return Fail(s);
  }
  bool explain = ctx.vm.count("explain") > 0;
  return AssemblyCommand(ctx, "assembling " + ctx.Arg("volume"),
                         {"preassemble", ctx.Arg("extension"), ctx.Arg("volume"), strategy,
                          priority, std::to_string(budget), explain ? "1" : "0"},
                         "found a fresh (restore delivers it)",
                         "assembled (restore delivers it) an", explain);
}

int CmdLsiList(Context& ctx) {
  return ServeAndPrint(ctx, {"lsi-list"}, [&](const boost::json::value& v) {
    const auto& list = v.as_array();
    if (list.empty()) {
      std::printf("No LSIs; deliver one with: lsictl restore -e EXT -v VOLUME\n");
      return 0;
    }
    std::printf("%-16s  %-12s  %-12s  %-16s  %-30s  %9s  %-20s\n", "LSI", "EXTENSION", "VOLUME",
                "SNAPSHOT", "STATE", "ON DISK", "EXPIRES");
    for (const auto& lsi : list) {
      std::printf("%-16s  %-12s  %-12s  %-16s  %-30s  %9s  %-20s\n", Str(lsi, "lsi").c_str(),
                  Shorten(Str(lsi, "extension"), 12).c_str(),
                  Shorten(Str(lsi, "volume"), 12).c_str(), Str(lsi, "snapshot").c_str(),
                  StateText(lsi).c_str(), FormatBytes(Num(lsi, "bytes")).c_str(),
                  Str(lsi, "expires") == "-" ? "never" : Str(lsi, "expires").c_str());
    }
    for (const auto& lsi : list) {
      std::string reason = Str(lsi, "reason");
      if (reason != "-" && !reason.empty()) {
        std::printf("  %s %s: %s\n", Str(lsi, "lsi").c_str(), Str(lsi, "state").c_str(),
                    reason.c_str());
      }
    }
    return 0;
  });
}

int CmdLsiShow(Context& ctx) {
  return ServeAndPrint(ctx, {"lsi-show", ctx.Arg("id")}, [&](const boost::json::value& v) {
    std::string ttl = "never expires";
    if (Str(v, "expires") != "-") {
      ttl = Str(v, "expires") + " (TTL " + std::to_string(Num(v, "ttl_seconds") / 3600) + " h)";
    }
    std::printf(
        "lsi:        %s\nextension:  %s\nvolume:     %s\nsnapshot:   %s\nstate:      %s\n"
        "size:       %s (%s on disk)\nstrategy:   %s (planned from %llu sessions)\n"
        "created:    %s\nexpires:    %s\ndelivered:  %s\nlast used:  %s\n"
        "layers:     %llu (%llu blocks)\n",
        Str(v, "lsi").c_str(), Str(v, "extension").c_str(), Str(v, "volume").c_str(),
        Str(v, "snapshot").c_str(), StateText(v).c_str(), FormatBytes(Num(v, "size")).c_str(),
        FormatBytes(Num(v, "bytes")).c_str(), Str(v, "strategy").c_str(),
        static_cast<unsigned long long>(Num(v, "model_sessions")), Str(v, "created").c_str(),
        ttl.c_str(), Str(v, "delivered") == "-" ? "never" : Str(v, "delivered").c_str(),
        Str(v, "last_used").c_str(), static_cast<unsigned long long>(Num(v, "layers")),
        static_cast<unsigned long long>(Num(v, "prefetched_blocks")));
    if (Str(v, "reason") != "-" && !Str(v, "reason").empty()) {
      std::printf("why:        %s\n", Str(v, "reason").c_str());
    }
    size_t i = 0;
    for (const auto& l : v.as_object().at("layer_list").as_array()) {
      std::printf("  layer %zu: %s, %llu blocks\n", i++, Str(l, "layer").c_str(),
                  static_cast<unsigned long long>(Num(l, "blocks")));
    }
    const auto& counters = v.as_object().at("counters");
    std::printf("counters:   %s\n", counters.is_null() ? "none recorded yet"
                                                       : boost::json::serialize(counters).c_str());
    return 0;
  });
}

int CmdLsiDrop(Context& ctx) {
  std::unique_ptr<Store> store;
  std::unique_ptr<Catalog> catalog;
  uint64_t id = 0;
  Status s = ParseIdArg(ctx.Arg("id"), "LSI", &id);
  if (s.ok()) s = OpenStore(ctx, &store);
  if (s.ok()) s = Catalog::Open(*store, &catalog);
  DropResult r;
  if (s.ok()) s = catalog->Drop(id, &r, ctx.vm["force"].as<bool>());
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("dropped", FormatId(id))
        .Field("deferred", r.deferred)
        .Field("freed", r.bytes)
        .EndObject();
    PrintJson(j);
  } else if (r.deferred) {
    std::fprintf(stderr,
                 "dropped LSI %s: a mount has it open; it is gone from every listing now, and "
                 "its files are removed when the mount releases it\n",
                 FormatId(id).c_str());
  } else {
    std::fprintf(stderr, "dropped LSI %s (%s freed)\n", FormatId(id).c_str(),
                 FormatBytes(r.bytes).c_str());
  }
  return 0;
}

// Drops the LSIs that stand on `volume` (on its snapshot `snapshot`; 0:
// on any): refused, dropping none, while a mount has one open. Each drop is
// whole: a crash midway leaves the snapshots and the LSIs not dropped yet,
// never an LSI standing on nothing.
Status DropLsisStandingOn(const Catalog& catalog, const std::string& volume, uint64_t snapshot,
                          std::vector<uint64_t>* dropped, uint64_t* freed) {
  CatalogContext context;
  context.now = static_cast<int64_t>(std::time(nullptr));
  std::vector<CatalogEntry> entries;
  LSIFS_RETURN_IF_ERROR(catalog.List(context, &entries));
  std::vector<uint64_t> standing;
  for (const auto& e : entries) {
    if (e.manifest.volume != volume || (snapshot != 0 && e.manifest.snapshot != snapshot)) {
      continue;
    }
    if (e.in_use) {
      return Status::Unavailable(
          "LSI " + FormatId(e.lsi_id) + " stands on " +
          (snapshot ? "snapshot " + FormatId(snapshot) : "volume " + volume) +
          " and a mount has it open; close it, then delete again");
    }
    standing.push_back(e.lsi_id);
  }
  for (uint64_t lsi : standing) {
    DropResult r;
    LSIFS_RETURN_IF_ERROR(catalog.Drop(lsi, &r, /*force=*/true));
    dropped->push_back(lsi);
    if (r.deferred) {
      // Opened since the listing: what it stands on must stay for now.
      return Status::Unavailable("LSI " + FormatId(lsi) +
                                 " was opened by a mount meanwhile (it is dropped and goes when "
                                 "released); close it, then delete again");
    }
    *freed += r.bytes;
  }
  return Status::Ok();
}

int CmdSnapshotDelete(Context& ctx) {
  const std::string volume = ctx.Arg("volume");
  uint64_t id = 0;
  Status s = ParseIdArg(ctx.Arg("id"), "snapshot", &id);
  std::unique_ptr<Store> store;
  std::unique_ptr<Catalog> catalog;
  if (s.ok()) s = OpenStore(ctx, &store);
  if (s.ok()) s = Catalog::Open(*store, &catalog);
  if (!s.ok()) return Fail(s);
  std::unique_ptr<OriginKeys> origin_keys;
  s = LoadOriginKeys(*store, &origin_keys);
  if (!s.ok()) return Fail(s);
  const OriginKeys& keys = *origin_keys;
  uint64_t freed = 0;
  std::vector<uint64_t> standing;
  s = DropLsisStandingOn(*catalog, volume, id, &standing, &freed);
  if (!s.ok()) return Fail(s);
  SnapshotDeletion deletion;
  s = DeleteSnapshot(*store, keys, volume, id, &deletion);
  if (!s.ok()) return Fail(s);
  freed += deletion.freed;
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("volume", volume)
        .Field("deleted", FormatId(id))
        .Field("freed", freed)
        .Field("data_kept", deletion.data_kept)
        .Field("kept_because", deletion.kept_because);
    j.Key("dropped_lsis").BeginArray();
    for (uint64_t lsi : standing) j.String(FormatId(lsi));
    j.EndArray().EndObject();
    PrintJson(j);
    return 0;
  }
  std::fprintf(
      stderr, "deleted snapshot %s of %s (%s freed%s)%s\n", FormatId(id).c_str(), volume.c_str(),
      FormatBytes(freed).c_str(),
      deletion.data_kept ? ("; its blocks stay: " + deletion.kept_because).c_str() : "",
      standing.empty()
          ? ""
          : ("; dropped the " + std::to_string(standing.size()) + " LSI(s) on it").c_str());
  return 0;
}

int CmdVolumeDelete(Context& ctx) {
  const std::string volume = ctx.Arg("volume");
  std::unique_ptr<Store> store;
  std::unique_ptr<Catalog> catalog;
  std::unique_ptr<OriginKeys> keys;
  Status s = ValidateName("volume", volume);
  if (s.ok()) s = OpenStore(ctx, &store);
  if (s.ok()) s = Catalog::Open(*store, &catalog);
  if (s.ok()) s = LoadOriginKeys(*store, &keys);
  if (s.ok() && !PathExists(store->volume_dir(volume))) {
    s = Status::NotFound("the store has no volume '" + volume + "' (see: lsictl snapshots)");
  }
  if (!s.ok()) return Fail(s);
  uint64_t freed = 0;
  std::vector<uint64_t> dropped;
  s = DropLsisStandingOn(*catalog, volume, 0, &dropped, &freed);
  VolumeDeletion deletion;
  if (s.ok()) s = DeleteVolume(*store, *keys, volume, &deletion);
  if (!s.ok()) return Fail(s);
  freed += deletion.freed;
  // What was learned of it goes too (through the daemon that holds the
  // database, or here); the volume is gone either way.
  std::string body;
  Status forgot = ServiceCall(ctx, {"access-forget-volume", volume}, &body);
  uint64_t sessions = 0;
  if (forgot.ok()) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(body, ec);
    if (!ec && v.is_object() && v.as_object().contains("removed_sessions")) {
      sessions = boost::json::value_to<uint64_t>(v.at("removed_sessions"));
    }
  } else {
    std::fprintf(stderr, "lsictl: what was learned of %s stays: %s\n", volume.c_str(),
                 PrintableLine(forgot.message()).c_str());
  }
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("volume", volume)
        .Field("snapshots", deletion.snapshots)
        .Field("freed", freed)
        .Field("forgotten_sessions", sessions);
    j.Key("dropped_lsis").BeginArray();
    for (uint64_t lsi : dropped) j.String(FormatId(lsi));
    j.EndArray().EndObject();
    PrintJson(j);
    return 0;
  }
  std::printf(
      "Deleted volume %s: %u snapshot(s) and %zu LSI(s), %s freed; %llu session(s) of "
      "learned reads forgotten.\n",
      volume.c_str(), deletion.snapshots, dropped.size(), FormatBytes(freed).c_str(),
      static_cast<unsigned long long>(sessions));
  return 0;
}

int CmdLsiDeliver(Context& ctx) {
  std::unique_ptr<Store> store;
  std::unique_ptr<Catalog> catalog;
  uint64_t id = 0;
  Manifest peek;
  KeyInfo info;
  SecretKey key;
  Status s = ParseIdArg(ctx.Arg("id"), "LSI", &id);
  if (s.ok()) s = OpenStore(ctx, &store);
  if (s.ok()) s = Catalog::Open(*store, &catalog);
  if (s.ok()) s = PeekManifest(store->manifest_path(id), &peek);
  if (s.IsNotFound()) {
    s = Status::NotFound("no LSI " + FormatId(id) + " in this store (see: lsictl lsi list)");
  }
  if (s.ok()) s = store->keyring().Load(peek.extension, &info, &key);
  bool image = ctx.vm.count("as-image") > 0;
  if (s.ok()) s = catalog->Deliver(id, info, key, image, std::time(nullptr));
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("delivered", FormatId(id))
        .Field("extension", info.name)
        .Field("alias", image)
        .EndObject();
    PrintJson(j);
  } else {
    std::fprintf(stderr, "delivered LSI %s to %s%s\n", FormatId(id).c_str(), info.name.c_str(),
                 image ? (" as " + peek.volume + ".img").c_str() : " (by id)");
  }
  return 0;
}

int CmdGc(Context& ctx) {
  return ServeAndPrint(ctx, {"gc"}, [&](const boost::json::value& v) {
    for (const auto& d : v.as_object().at("dropped").as_array()) {
      std::printf("dropped %s  %9s  %s%s\n", Str(d, "lsi").c_str(),
                  FormatBytes(Num(d, "bytes")).c_str(), Str(d, "why").c_str(),
                  Flag(d, "deferred") ? " (in use: removed when released)" : "");
    }
    std::printf("freed %s; LSIs take %s of %s cap; %s free on disk (floor %s)%s\n",
                FormatBytes(Num(v, "freed")).c_str(),
                FormatBytes(Num(v, "lsi_bytes_after")).c_str(),
                FormatBytes(Num(v, "lsi_cap")).c_str(), FormatBytes(Num(v, "free_after")).c_str(),
                FormatBytes(Num(v, "free_floor")).c_str(),
                Flag(v, "satisfied")
                    ? ""
                    : "\nstill over: what is left is in use (or the disk is full of other data); "
                      "raise the cap with: lsictl config set lsi_cap SIZE");
    return 0;
  });
}

int CmdAssemblies(Context& ctx) {
  return ServeAndPrint(ctx, {"assemblies"}, [&](const boost::json::value& v) {
    const auto& list = v.as_array();
    if (list.empty()) {
      std::printf("no assembly queued or running\n");
      return 0;
    }
    std::printf("%4s  %-10s %-12s %-14s %-8s %-7s %-12s %-13s %s\n", "ID", "STATE", "EXTENSION",
                "VOLUME", "PRIORITY", "WAITERS", "REASON", "STRATEGY", "PROGRESS");
    for (const auto& a : list) {
      uint64_t done = Num(a, "done_bytes"), total = Num(a, "total_bytes");
      std::string progress = total == 0 ? "-"
                                        : FormatBytes(done) + " / " + FormatBytes(total) + " (" +
                                              std::to_string(done * 100 / total) + "%)";
      std::printf("%4llu  %-10s %-12s %-14s %-8s %7llu %-12s %-13s %s\n",
                  static_cast<unsigned long long>(Num(a, "id")), Str(a, "state").c_str(),
                  Shorten(Str(a, "extension"), 12).c_str(), Shorten(Str(a, "volume"), 14).c_str(),
                  Str(a, "priority").c_str(), static_cast<unsigned long long>(Num(a, "waiters")),
                  Shorten(Str(a, "reason"), 12).c_str(), Shorten(Str(a, "strategy"), 13).c_str(),
                  progress.c_str());
    }
    return 0;
  });
}

int CmdAssembliesCancel(Context& ctx) {
  std::string id = ctx.Arg("id");
  return ServeAndPrint(ctx, {"assembly-cancel", id}, [&](const boost::json::value&) {
    std::printf("cancelled assembly %s (whoever waited for it is told; nothing of it is kept)\n",
                id.c_str());
    return 0;
  });
}

std::string Ratio(const boost::json::value& v, const char* key) {
  const auto* f = v.as_object().if_contains(key);
  if (f == nullptr || !f->is_number()) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.2f", f->to_number<double>());
  return buf;
}

int CmdStats(Context& ctx) {
  return ServeAndPrint(ctx, {"stats"}, [&](const boost::json::value& v) {
    const auto& o = v.as_object();
    std::printf("LSIs: %s of %s cap;", FormatBytes(Num(v, "lsi_bytes")).c_str(),
                FormatBytes(Num(v, "lsi_cap")).c_str());
    for (const auto& [state, cb] : o.at("lsis").as_object()) {
      std::printf(" %llu %.*s", static_cast<unsigned long long>(Num(cb, "count")),
                  static_cast<int>(state.size()), state.data());
    }
    std::printf("\ndisk: %s free (eviction floor %s)\n\n", FormatBytes(Num(v, "free")).c_str(),
                FormatBytes(Num(v, "free_floor")).c_str());
    std::printf("%-14s %5s %9s  %-12s %-28s %9s %8s %8s %6s %9s\n", "VOLUME", "SNAPS", "STORED",
                "EXTENSION", "LSIS", "LSI BYTES", "RESTORES", "SESSIONS", "RECALL", "PRECISION");
    for (const auto& vol : o.at("volumes").as_array()) {
      std::string left = Shorten(Str(vol, "volume"), 14);
      char head[64];
      std::snprintf(head, sizeof head, "%-14s %5llu %9s", left.c_str(),
                    static_cast<unsigned long long>(Num(vol, "snapshots")),
                    FormatBytes(Num(vol, "stored_bytes")).c_str());
      const auto& exts = vol.as_object().at("extensions").as_array();
      if (exts.empty()) std::printf("%s  (no LSIs, no sessions)\n", head);
      for (const auto& e : exts) {
        std::string lsis;
        for (const auto& [state, cb] : e.as_object().at("lsis").as_object()) {
          lsis += (lsis.empty() ? "" : " ") + std::to_string(Num(cb, "count")) + " " +
                  std::string(state);
        }
        std::printf("%s  %-12s %-28s %9s %8llu %8llu %6s %9s\n", head,
                    Shorten(Str(e, "extension"), 12).c_str(),
                    Shorten(lsis.empty() ? "-" : lsis, 28).c_str(),
                    FormatBytes(Num(e, "lsi_bytes")).c_str(),
                    static_cast<unsigned long long>(Num(e, "restores")),
                    static_cast<unsigned long long>(Num(e, "sessions")), Ratio(e, "recall").c_str(),
                    Ratio(e, "precision").c_str());
        // Later rows of the volume leave its columns blank.
        std::snprintf(head, sizeof head, "%30s", "");
      }
    }
    std::printf(
        "\nRECALL and PRECISION: medians over the last sessions whose logs are kept, in distinct\n"
        "blocks (recall = from delta / (from delta + from base); precision = delta blocks read /\n"
        "delta blocks).\n");
    return 0;
  });
}

int CmdConfig(Context& ctx) {
  std::unique_ptr<Store> store;
  Status s = OpenStore(ctx, &store);
  if (!s.ok()) return Fail(s);
  std::string key = ctx.Arg("config-key"), value = ctx.Arg("value");
  if (ctx.vm.count("set") && ctx.Arg("set") != "set") {
    return Fail(Status::InvalidArgument("usage: lsictl config [set KEY SIZE]"));
  }
  if (ctx.vm.count("set") && key.empty()) {
    return Fail(Status::InvalidArgument("config set needs KEY SIZE (lsi_cap or free_floor)"));
  }
  if (!key.empty()) {
    if (key != "lsi_cap" && key != "free_floor") {
      return Fail(
          Status::InvalidArgument("unknown setting '" + key + "' (settable: lsi_cap, free_floor)"));
    }
    if (value.empty()) {
      return Fail(Status::InvalidArgument("config set " + key + " needs a SIZE (e.g. 20G)"));
    }
    uint64_t bytes = 0;
    s = ParseByteSize(value, &bytes);
    if (s.ok()) {
      uint64_t cap = key == "lsi_cap" ? bytes : store->config().lsi_cap;
      uint64_t floor = key == "free_floor" ? bytes : store->config().free_floor;
      s = store->UpdateCaps(cap, floor);
    }
    if (!s.ok()) return Fail(s);
  }
  const StoreConfig& c = store->config();
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("store", store->root())
        .Field("store_id", FormatId(c.store_id))
        .Field("block_size", c.block_size)
        .Field("lsi_cap", c.lsi_cap)
        .Field("free_floor", c.free_floor)
        .EndObject();
    PrintJson(j);
    return 0;
  }
  std::printf(
      "store:       %s\nstore id:    %s\nblock size:  %s\nlsi_cap:     %s\n"
      "free_floor:  %s\n",
      store->root().c_str(), FormatId(c.store_id).c_str(), FormatBytes(c.block_size).c_str(),
      FormatBytes(c.lsi_cap).c_str(), FormatBytes(c.free_floor).c_str());
  return 0;
}

int CmdVerify(Context& ctx) {
  const std::string target = ctx.vm.count("id") ? ctx.Arg("id") : "";
  if (!target.empty() && ctx.vm["all"].as<bool>()) {
    std::fprintf(stderr, "lsictl: give --all or an id, not both (see: lsictl verify --help)\n");
    return kExitUsage;
  }
  std::unique_ptr<Store> store;
  Status s = OpenStore(ctx, &store);
  if (!s.ok()) return Fail(s);
  std::unique_ptr<OriginKeys> origin_keys;
  s = LoadOriginKeys(*store, &origin_keys);
  if (!s.ok()) return Fail(s);
  const OriginKeys& keys = *origin_keys;
  ProgressBar bar("verifying");
  std::vector<VerifyResult> results;
  s = Verify(
      *store, keys, target, [&](uint64_t done, uint64_t total) { bar.Update(done, total); },
      &results);
  bar.Finish();
  if (!s.ok()) return Fail(s);
  size_t damaged = 0;
  uint64_t blocks = 0;
  for (const auto& r : results) {
    damaged += !r.ok();
    blocks += r.blocks_checked;
  }
  auto kind = [](const VerifyResult& r) {
    return r.kind == VerifyResult::Kind::kSnapshot ? "snapshot" : "lsi";
  };
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject().Field("checked", static_cast<uint64_t>(results.size()));
    j.Field("damaged", static_cast<uint64_t>(damaged)).Field("blocks_checked", blocks);
    j.Key("results").BeginArray();
    for (const auto& r : results) {
      j.BeginObject()
          .Field("kind", kind(r))
          .Field("id", FormatId(r.id))
          .Field("volume", r.volume)
          .Field("ok", r.ok())
          .Field("blocks_checked", r.blocks_checked);
      j.Key("problems").BeginArray();
      for (const auto& p : r.problems) j.String(p);
      j.EndArray().EndObject();
    }
    j.EndArray().EndObject();
    std::printf("%s\n", j.str().c_str());
  } else {
    for (const auto& r : results) {
      std::printf("%-8s %s  %-16s %s (%llu blocks checked)\n", kind(r), FormatId(r.id).c_str(),
                  r.volume.empty() ? "-" : r.volume.c_str(), r.ok() ? "ok" : "DAMAGED",
                  static_cast<unsigned long long>(r.blocks_checked));
      for (const auto& p : r.problems) std::printf("    %s\n", PrintableLine(p).c_str());
    }
    std::printf("%zu checked, %zu damaged, %llu blocks authenticated\n", results.size(), damaged,
                static_cast<unsigned long long>(blocks));
  }
  return damaged == 0 ? 0 : kExitDamaged;
}

int CmdAccessShow(Context& ctx) {
  std::string session = "0";
  if (ctx.vm.count("session")) {
    uint64_t n = 0;
    Status parsed = ParseUnsigned(ctx.Arg("session"), "--session", 1, UINT32_MAX, &n);
    if (!parsed.ok()) return Fail(parsed);
    session = std::to_string(n);
  }
  std::string body;
  Status s = ServiceCall(
      ctx, {"access-show", ctx.Arg("extension"), ctx.Arg("volume"), session, ctx.json ? "1" : "0"},
      &body);
  if (!s.ok()) return Fail(s);
  std::fputs(body.c_str(), stdout);
  return 0;
}

int CmdStatus(Context& ctx) {
  const std::string mountpoint = ctx.Arg("mountpoint");
  // Read to its end: control files report size 0, as /proc files do.
  const std::string path = mountpoint + "/.lsifs/mount.json";
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOTCONN) {
      return Fail(Status::Unavailable("the lsifs serving " + mountpoint +
                                      " is gone (a dead mount): fusermount3 -u " + mountpoint));
    }
    if (errno != ENOENT && errno != ENOTDIR) return Fail(Status::FromErrno(path, errno));
    return Fail(Status::NotFound(mountpoint + " is not an lsifs mount (no .lsifs/mount.json)"));
  }
  std::stringstream text_stream;
  text_stream << in.rdbuf();
  const std::string text = text_stream.str();
  MountMetrics m;
  Status s = ParseMountJson(text, &m);
  if (!s.ok()) return Fail(s.WithContext(mountpoint));
  if (ctx.json) {
    std::fputs(text.c_str(), stdout);
  } else {
    std::fputs(RenderStatusText(m).c_str(), stdout);
  }
  return 0;
}

int CmdAccessForget(Context& ctx) {
  uint64_t n = 0;
  Status s = ParseUnsigned(ctx.Arg("session"), "--session", 1, UINT32_MAX, &n);
  if (!s.ok()) return Fail(s);
  const std::string ext = ctx.Arg("extension"), volume = ctx.Arg("volume");
  std::string body;
  s = ServiceCall(ctx, {"access-forget", ext, volume, std::to_string(n)}, &body);
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    std::fputs(body.c_str(), stdout);
    return 0;
  }
  boost::json::value v;
  boost::system::error_code ec;
  v = boost::json::parse(body, ec);
  const uint64_t relearned = ec ? 0 : boost::json::value_to<uint64_t>(v.at("relearned_sessions"));
  const uint64_t lost = ec ? 0 : boost::json::value_to<uint64_t>(v.at("lost_without_log"));
  std::printf("Forgot session %llu of %s on %s: the model was learned again from %llu session(s)",
              static_cast<unsigned long long>(n), ext.c_str(), volume.c_str(),
              static_cast<unsigned long long>(relearned));
  if (lost) {
    std::printf("; %llu older session(s) whose logs are no longer kept no longer count",
                static_cast<unsigned long long>(lost));
  }
  std::printf(".\n");
  return 0;
}

int CmdAccessReset(Context& ctx) {
  const std::string ext = ctx.Arg("extension"), volume = ctx.Arg("volume");
  std::string body;
  Status s = ServiceCall(ctx, {"access-reset", ext, volume}, &body);
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    std::fputs(body.c_str(), stdout);
    return 0;
  }
  boost::json::value v;
  boost::system::error_code ec;
  v = boost::json::parse(body, ec);
  const uint64_t removed = ec ? 0 : boost::json::value_to<uint64_t>(v.at("removed_sessions"));
  std::printf(
      "Forgot everything learned from %s's reads of %s (%llu session(s)); the next\n"
      "restore starts from the volume-wide model.\n",
      ext.c_str(), volume.c_str(), static_cast<unsigned long long>(removed));
  return 0;
}

// The heat map's format: --format, else the output file's extension; a
// name that says otherwise, or nothing, is refused before any work.
Status HeatmapFormatOf(const Context& ctx, const std::string& path, HeatmapFormat* format) {
  const size_t slash = path.find_last_of('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  const size_t dot = base.find_last_of('.');
  std::string ext = dot == std::string::npos ? "" : base.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  HeatmapFormat named;
  const bool by_name = ParseHeatmapFormat(ext, &named).ok();
  if (ctx.vm.count("format")) {
    LSIFS_RETURN_IF_ERROR(ParseHeatmapFormat(ctx.Arg("format"), format));
    if (by_name && named != *format) {
      return Status::InvalidArgument(path + " ends in ." + ext + " but --format is " +
                                     HeatmapFormatName(*format));
    }
    return Status::Ok();
  }
  if (!by_name) {
    return Status::InvalidArgument("cannot tell the heat map's format from '" + path +
                                   "': name it FILE.svg or FILE.png, or pass --format svg|png");
  }
  *format = named;
  return Status::Ok();
}

int CmdAccessHeatmap(Context& ctx) {
  const std::string path = ctx.Arg("output");
  HeatmapFormat format;
  Status s = HeatmapFormatOf(ctx, path, &format);
  if (!s.ok()) return Fail(s);
  // SVG is asked for as before PNG existed, so that a daemon started
  // before an upgrade still draws it.
  std::vector<std::string> request{"access-heatmap", ctx.Arg("extension"), ctx.Arg("volume")};
  if (format == HeatmapFormat::kPng) request.push_back(HeatmapFormatName(format));
  std::string picture;
  s = ServiceCall(ctx, request, &picture);
  if (!s.ok()) return Fail(s);
  // Beside the file, then renamed over it: never a half-written picture.
  s = WriteFileAtomically(DirName(path), path, AsBytes(picture), 0644, /*replace=*/true);
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject().Field("heatmap", path).Field("format", HeatmapFormatName(format)).EndObject();
    PrintJson(j);
  } else {
    std::fprintf(stderr, "wrote %s (%s)\n", path.c_str(), HeatmapFormatName(format));
  }
  return 0;
}

// ---- certificates of the two-site form -------------------------------------

std::vector<std::string> HostsArg(const Context& ctx) {
  std::vector<std::string> hosts;
  if (ctx.vm.count("host")) {
    for (const auto& h : ctx.vm["host"].as<std::vector<std::string>>()) {
      if (std::find(hosts.begin(), hosts.end(), h) == hosts.end()) hosts.push_back(h);
    }
  }
  return hosts.empty() ? DefaultServerHosts() : hosts;
}

std::string JoinWords(const std::vector<std::string>& words, const char* sep) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : sep) + w;
  return out;
}

int CertUsage(const char* command, const std::string& why) {
  std::fprintf(stderr, "lsictl %s: %s (see: lsictl %s --help)\n", command, why.c_str(), command);
  return kExitUsage;
}

int CmdCaInit(Context& ctx) {
  std::unique_ptr<Store> store;
  Status s = OpenStore(ctx, &store);
  if (!s.ok()) return Fail(s);
  CaOptions options;
  options.server_hosts = HostsArg(ctx);
  s = InitCa(*store, options);
  if (!s.ok()) return Fail(s);
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const std::string ca_until = FormatTime(now + int64_t{86400} * options.days);
  const std::string server_until = FormatTime(now + int64_t{86400} * options.server_days);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("ca_cert", store->ca_cert_path())
        .Field("ca_key", store->ca_key_path())
        .Field("ca_not_after", ca_until)
        .Field("server_cert", store->server_cert_path())
        .Field("server_key", store->server_key_path())
        .Field("server_not_after", server_until)
        .Key("hosts")
        .BeginArray();
    for (const auto& h : options.server_hosts) j.String(h);
    j.EndArray().Field("crl", store->crl_path()).EndObject();
    PrintJson(j);
    return 0;
  }
  std::printf("Created the certificate authority of %s: %s, valid until %s.\n",
              store->root().c_str(), store->ca_cert_path().c_str(), ca_until.c_str());
  std::printf("Its key %s (mode 0600) never leaves this host.\n", store->ca_key_path().c_str());
  std::printf("lsid's certificate %s is valid for %s until %s.\n",
              store->server_cert_path().c_str(), JoinWords(options.server_hosts, ", ").c_str(),
              server_until.c_str());
  std::printf("Next, for each site: lsictl -s %s cert issue EXT\n", store->root().c_str());
  return 0;
}

int CmdCertIssueServer(Context& ctx) {
  if (ctx.vm.count("extension")) {
    return CertUsage("cert issue", "--server issues lsid's certificate, for no extension");
  }
  if (ctx.vm.count("out")) {
    return CertUsage("cert issue", "--out is for a site's files; lsid's go to STORE/ca");
  }
  uint64_t days = CaOptions().server_days;
  Status s;
  if (ctx.vm.count("days")) s = ParseUnsigned(ctx.Arg("days"), "--days", 1, 36500, &days);
  std::unique_ptr<Store> store;
  if (s.ok()) s = OpenStore(ctx, &store);
  const std::vector<std::string> hosts = HostsArg(ctx);
  if (s.ok()) s = IssueServerCertificate(*store, hosts, static_cast<uint32_t>(days));
  if (!s.ok()) return Fail(s);
  const std::string until =
      FormatTime(static_cast<int64_t>(std::time(nullptr)) + static_cast<int64_t>(days) * 86400);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("server_cert", store->server_cert_path())
        .Field("server_key", store->server_key_path())
        .Field("not_after", until)
        .Key("hosts")
        .BeginArray();
    for (const auto& h : hosts) j.String(h);
    j.EndArray().EndObject();
    PrintJson(j);
    return 0;
  }
  std::printf("Issued lsid's certificate %s for %s, valid until %s.\n",
              store->server_cert_path().c_str(), JoinWords(hosts, ", ").c_str(), until.c_str());
  std::printf("lsid reads it at start: restart lsid to use it.\n");
  return 0;
}

int CmdCertIssue(Context& ctx) {
  if (ctx.vm["server"].as<bool>()) return CmdCertIssueServer(ctx);
  if (ctx.vm.count("host")) {
    return CertUsage("cert issue", "--host names lsid's hosts: use it with --server");
  }
  if (!ctx.vm.count("extension")) {
    return CertUsage("cert issue", "missing EXT, or --server for lsid's certificate");
  }
  const std::string extension = ctx.Arg("extension");
  uint64_t days = 365;
  Status s;
  if (ctx.vm.count("days")) s = ParseUnsigned(ctx.Arg("days"), "--days", 1, 36500, &days);
  const std::string out = ctx.vm.count("out") ? ctx.Arg("out") : extension + "-tls";
  std::unique_ptr<Store> store;
  if (s.ok()) s = OpenStore(ctx, &store);
  IssuedCertificate c;
  if (s.ok()) {
    s = IssueSiteCertificate(*store, extension, out, static_cast<uint32_t>(days), &c);
  }
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("extension", c.extension)
        .Field("serial", c.serial)
        .Field("not_after", FormatTime(c.not_after))
        .Field("key", c.key_path)
        .Field("cert", c.cert_path)
        .Field("ca", c.ca_path)
        .EndObject();
    PrintJson(j);
    return 0;
  }
  std::printf("Issued a certificate to extension '%s' (serial %s), valid until %s:\n",
              c.extension.c_str(), c.serial.c_str(), FormatTime(c.not_after).c_str());
  const int width = static_cast<int>(std::max(c.key_path.size(), c.ca_path.size()));
  std::printf("  %-*s  its private key (mode 0600: the site's secret)\n", width,
              c.key_path.c_str());
  std::printf("  %-*s  its certificate\n", width, c.cert_path.c_str());
  std::printf("  %-*s  the CA, by which the site checks lsid\n", width, c.ca_path.c_str());
  std::printf(
      "Move them to the site, e.g.: scp -rp %s root@SITE:/etc/lsifs/%s && rm -r %s\n"
      "(the key belongs at the site only; lsictl cert revoke %s withdraws it).\n",
      out.c_str(), extension.c_str(), out.c_str(), extension.c_str());
  return 0;
}

int CmdCertRevoke(Context& ctx) {
  std::unique_ptr<Store> store;
  Status s = OpenStore(ctx, &store);
  const std::string extension = ctx.Arg("extension");
  std::vector<std::string> revoked;
  if (s.ok()) s = RevokeSite(*store, extension, &revoked);
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject().Field("extension", extension).Key("revoked").BeginArray();
    for (const auto& serial : revoked) j.String(serial);
    j.EndArray().Field("crl", store->crl_path()).EndObject();
    PrintJson(j);
    return 0;
  }
  if (revoked.empty()) {
    std::printf("Every certificate issued to '%s' was already revoked; %s is unchanged.\n",
                extension.c_str(), store->crl_path().c_str());
    return 0;
  }
  std::printf("Revoked %zu certificate(s) of '%s': %s.\n", revoked.size(), extension.c_str(),
              JoinWords(revoked, ", ").c_str());
  std::printf(
      "%s is written anew: a running lsid rereads it when it changes and refuses them,\n"
      "without a restart.\n",
      store->crl_path().c_str());
  return 0;
}

int CmdCertList(Context& ctx) {
  std::unique_ptr<Store> store;
  Status s = OpenStore(ctx, &store);
  std::vector<IssuedRecord> issued;
  if (s.ok()) s = ListIssued(*store, &issued);
  if (!s.ok()) return Fail(s);
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  if (ctx.json) {
    JsonWriter j;
    j.BeginArray();
    for (const auto& r : issued) {
      j.BeginObject()
          .Field("serial", r.cert.serial)
          .Field("extension", r.cert.extension)
          .Field("not_after", FormatTime(r.cert.not_after))
          .Field("revoked", r.revoked)
          .Field("expired", r.cert.not_after <= now)
          .EndObject();
    }
    j.EndArray();
    PrintJson(j);
    return 0;
  }
  if (issued.empty()) {
    std::printf("No certificates issued yet; issue one with: lsictl cert issue EXT\n");
    return 0;
  }
  std::printf("%-32s  %-24s  %-20s  %s\n", "SERIAL", "EXTENSION", "NOT AFTER", "STATE");
  for (const auto& r : issued) {
    const char* state = r.revoked ? "revoked" : r.cert.not_after <= now ? "expired" : "valid";
    std::printf("%-32s  %-24s  %-20s  %s\n", r.cert.serial.c_str(), r.cert.extension.c_str(),
                FormatTime(r.cert.not_after).c_str(), state);
  }
  return 0;
}

// ---- the command table and parsing ---------------------------------------

struct Positional {
  const char* name;
  bool required;
  const char* shown;  // how usage names it
};

struct Command {
  std::vector<std::string> words;  // "key", "create"
  std::string usage_args;          // "EXT"
  std::string summary;
  std::string details;
  std::vector<Positional> positionals;
  std::function<void(po::options_description&)> add_options;
  std::function<int(Context&)> run;
  bool needs_store = true;
  bool region = false;  // a site may ask it of the region (--region)
};

void AddPassphraseFile(po::options_description& d) {
  d.add_options()("passphrase-file", po::value<std::string>(),
                  "read the passphrase from the first line of this file (- for stdin)");
}

std::vector<Command> Commands() {
  return {
      {{"init"},
       "STORE [--block-size SIZE] [--lsi-cap SIZE] [--free-floor SIZE]",
       "create a store (provider key, LevelDB, layout)",
       "Creates STORE, which must not exist or be an empty directory: the provider key\n"
       "(provider.key, mode 0600), the co-access LevelDB and the folders for snapshots,\n"
       "keys, layers, LSIs and the catalog. The block size (the unit of fetch and\n"
       "encryption) is fixed for the store's life: a power of two from 4K to 1M, default\n"
       "64K. LSIs are evicted (least useful first, never one in use) while they take more\n"
       "than --lsi-cap (default: a quarter of the disk) or the disk has less free than\n"
       "--free-floor (default: a twentieth of the disk, at most 8G); change both later\n"
       "with lsictl config set.\n"
       "Example: lsictl init /srv/lsifs --block-size 64K --lsi-cap 200G",
       {{"store-path", true, "STORE"}},
       [](po::options_description& d) {
         d.add_options()("block-size", po::value<std::string>(),
                         "block size: 4K..1M, power of two (default 64K)")(
             "lsi-cap", po::value<std::string>(), "bytes LSIs may take (default: disk/4)")(
             "free-floor", po::value<std::string>(),
             "free disk kept by eviction (default: disk/20, at most 8G)");
       },
       CmdInit,
       false},
      {{"config"},
       "[set KEY SIZE]",
       "show the store's configuration, or change its eviction caps",
       "Without arguments, prints the store id, block size and eviction settings.\n"
       "'config set lsi_cap SIZE' and 'config set free_floor SIZE' change them (sizes\n"
       "such as 500M, 20G); the next restore, pre-assembly or lsictl gc applies them.\n"
       "Example: lsictl -s /srv/lsifs config set lsi_cap 50G",
       {{"set", false, "set"}, {"config-key", false, "KEY"}, {"value", false, "SIZE"}},
       nullptr,
       CmdConfig},
      {{"key", "create"},
       "EXT",
       "create the key of extension EXT (file mode 0600)",
       "Creates STORE/keys/EXT.key with a new random 256-bit key. The key wraps the data\n"
       "keys of every delta layer made for EXT; keep it secret. Fails if EXT has a key.\n"
       "Example: lsictl -s /srv/lsifs key create site-a",
       {{"extension", true, "EXT"}},
       nullptr,
       CmdKeyCreate},
      {{"key", "list"},
       "",
       "list the extension keys (names and ids, never key bytes)",
       "Example: lsictl -s /srv/lsifs key list --json",
       {},
       nullptr,
       CmdKeyList},
      {{"key", "rotate"},
       "EXT",
       "replace EXT's key with a new one; every LSI of EXT is rekeyed",
       "Makes a new key for EXT and rekeys every LSI made for it: each delta layer's data\n"
       "key is wrapped anew and each manifest authenticated anew (the block records are\n"
       "copied, never decrypted); the delivery record follows; then the new key replaces\n"
       "STORE/keys/EXT.key and the old one is gone. Interrupted at any point (Ctrl-C, a\n"
       "crash), every LSI stays readable with the old or the new key (the next one waits\n"
       "in STORE/keys/EXT.key.next) and running the command again finishes the rotation.\n"
       "The running lsifs is told over the control socket: images it has open keep\n"
       "serving, later opens use the new key; other mounts of EXT notice at their next\n"
       "open. Local copies of base blocks fetched for those LSIs are discarded (they were\n"
       "sealed under the old key) and fetched again when read.\n"
       "Example: lsictl -s /srv/lsifs key rotate site-a",
       {{"extension", true, "EXT"}},
       nullptr,
       CmdKeyRotate},
      {{"key", "delete"},
       "EXT [--force]",
       "delete EXT's key; says which LSIs that makes unusable, drops them with --force",
       "Without --force, when EXT has LSIs, lists them (they cannot be read without the\n"
       "key) and deletes nothing (exit status 1). With --force, drops them (those a mount\n"
       "has open go when it releases them), removes EXT's delivery record, then its key.\n"
       "What was learned from EXT's reads stays; lsictl access reset forgets it.\n"
       "Example: lsictl -s /srv/lsifs key delete site-old --force",
       {{"extension", true, "EXT"}},
       [](po::options_description& d) {
         d.add_options()("force", po::bool_switch(), "drop EXT's LSIs with its key");
       },
       CmdKeyDelete},
      {{"key", "export-provider"},
       "FILE [--passphrase-file FILE]",
       "back up the provider key to FILE, wrapped under a passphrase",
       "Losing STORE/provider.key loses every snapshot. This writes it to FILE (a new\n"
       "file, mode 0600), sealed with AES-256-GCM under a key made from a passphrase by\n"
       "scrypt (N=65536, r=8, p=1). The passphrase (at least 8 characters) is asked twice\n"
       "on the terminal, or read from the first line of --passphrase-file (- for stdin).\n"
       "Example: lsictl -s /srv/lsifs key export-provider /media/backup/provider.lsifs-key",
       {{"file", true, "FILE"}},
       AddPassphraseFile,
       CmdKeyExportProvider},
      {{"key", "import-provider"},
       "FILE [--passphrase-file FILE]",
       "restore the provider key from a backup made by export-provider",
       "Writes STORE/provider.key back from FILE. Refused when the store holds another\n"
       "provider key, or when the backup's key does not open the store's snapshots; a\n"
       "store that holds the same key is left as it is.\n"
       "Example: lsictl -s /srv/lsifs key import-provider /media/backup/provider.lsifs-key",
       {{"file", true, "FILE"}},
       AddPassphraseFile,
       CmdKeyImportProvider},
      {{"ca", "init"},
       "[--host NAME]...",
       "create the store's certificate authority and lsid's certificate",
       "Creates STORE/ca (mode 0700): the CA's key ca.key (EC P-256, mode 0600; it never\n"
       "leaves this host) and self-signed certificate ca.crt (10 years), lsid's key\n"
       "server.key and certificate server.crt (825 days, serverAuth) for the hosts and\n"
       "addresses sites reach it by (--host, repeated; default: localhost, 127.0.0.1, ::1\n"
       "and this host's name), an empty revocation list crl.pem and the list of\n"
       "certificates issued. Refused when the store has a CA: it is never replaced, since\n"
       "every site's certificate hangs on it.\n"
       "Example: lsictl -s /srv/lsifs ca init --host region.example.net --host 10.0.0.5",
       {},
       [](po::options_description& d) {
         d.add_options()("host", po::value<std::vector<std::string>>()->composing(),
                         "a name or IP address of lsid's certificate (repeat it)");
       },
       CmdCaInit},
      {{"cert", "issue"},
       "EXT [--out DIR] [--days N] | --server [--host NAME]... [--days N]",
       "issue a site's key and certificate, or lsid's certificate anew",
       "For extension EXT (which must have a key in the store): a new key and a\n"
       "certificate signed by the store's CA (subject CN=EXT, clientAuth only, --days,\n"
       "default 365), written with the CA's certificate to --out (default: ./EXT-tls,\n"
       "made mode 0700): EXT.key (mode 0600), EXT.crt and ca.crt, the three files the\n"
       "site needs. Files there are never replaced. The certificate is recorded in\n"
       "STORE/ca/issued, so that cert revoke EXT finds it. Move the folder to the site.\n"
       "With --server: lsid's key and certificate anew, in STORE/ca, for the --host names\n"
       "and addresses (default: localhost, 127.0.0.1, ::1 and this host's name) and\n"
       "--days (default 825); lsid reads them at start.\n"
       "Example: lsictl -s /srv/lsifs cert issue site-a --out /tmp/site-a-tls",
       {{"extension", false, "EXT"}},
       [](po::options_description& d) {
         d.add_options()("out", po::value<std::string>(),
                         "the folder for the site's files (default: ./EXT-tls)")(
             "days", po::value<std::string>(),
             "days the certificate is valid (default 365; lsid's 825)")(
             "server", po::bool_switch(), "issue lsid's certificate instead of a site's")(
             "host", po::value<std::vector<std::string>>()->composing(),
             "with --server: a name or IP address of lsid (repeat it)");
       },
       CmdCertIssue},
      {{"cert", "revoke"},
       "EXT",
       "revoke every certificate issued to EXT (lsid needs no restart)",
       "Adds every certificate issued to EXT that is not yet revoked to the CA's\n"
       "revocation list STORE/ca/crl.pem (the entries already there stay), signed by the\n"
       "CA and written anew in one piece. A running lsid rereads it when it changes. Prints\n"
       "the serials revoked. To let the site in again, issue it a new certificate.\n"
       "Example: lsictl -s /srv/lsifs cert revoke site-a",
       {{"extension", true, "EXT"}},
       nullptr,
       CmdCertRevoke},
      {{"cert", "list"},
       "",
       "list the certificates issued to sites, and which are revoked",
       "Reads STORE/ca/issued and checks each serial against the revocation list (whose\n"
       "signature is verified with the CA's certificate). STATE is valid, expired or\n"
       "revoked.\n"
       "Example: lsictl -s /srv/lsifs cert list --json",
       {},
       nullptr,
       CmdCertList},
      {{"import"},
       "VOLUME IMAGE",
       "import a raw image as a new snapshot of VOLUME; prints its id",
       "Reads IMAGE (a raw disk image or a block device) in bounded memory and stores\n"
       "its non-zero blocks, each sealed with the provider key (AES-256-GCM) and bound to\n"
       "volume, snapshot and block number. Blocks unchanged since VOLUME's latest snapshot\n"
       "are not stored again. Prints the new snapshot id on stdout and a summary on\n"
       "stderr; a progress bar is shown on a terminal. An image whose size differs from\n"
       "VOLUME's latest snapshot changes the volume's size and is refused without\n"
       "--resize. Ctrl-C stops it before its next 8 MiB; nothing is imported or left.\n"
       "Example: lsictl -s /srv/lsifs import vol-db /var/tmp/db.img",
       {{"volume", true, "VOLUME"}, {"image", true, "IMAGE"}},
       [](po::options_description& d) {
         d.add_options()("resize", po::bool_switch(),
                         "accept an image whose size differs from the volume's latest snapshot");
       },
       CmdImport},
      {{"restore"},
       "-e EXT -v VOLUME [--snapshot ID]",
       "deliver an LSI of VOLUME to extension EXT; prints the LSI id",
       "The restore workflow: if the catalog holds a fresh LSI of (EXT, VOLUME, snapshot)\n"
       "(on that snapshot, planned from EXT's current learned model, TTL not run out) it\n"
       "is delivered at once; otherwise a new one is assembled and delivered. The\n"
       "snapshot is the volume's latest unless --snapshot names one. A running\n"
       "lsifs -e EXT shows the LSI as MOUNTPOINT/by-id/ID.img and, for a restore without\n"
       "--snapshot, as MOUNTPOINT/VOLUME.img, without remounting. While lsifs runs, it\n"
       "does the work (it holds the learned models); otherwise lsictl does.\n"
       "(Until the predictor lands, new LSIs hold no delta layers: every block is\n"
       "fetched from the base snapshot on first read.)\n"
       "Example: lsictl -s /srv/lsifs restore -e site-a -v vol-db",
       {},
       [](po::options_description& d) {
         d.add_options()("extension,e", po::value<std::string>()->required(), "the extension")(
             "volume,v", po::value<std::string>()->required(), "the volume")(
             "snapshot", po::value<std::string>(), "a snapshot id (default: the latest)")(
             "origin-latency", po::value<std::string>(),
             "without a daemon: model the link, one round trip per request (40ms)")(
             "origin-bandwidth", po::value<std::string>(),
             "without a daemon: model the link's bandwidth (200Mbit)");
       },
       CmdRestore,
       true,
       true},
      {{"preassemble"},
       "-e EXT -v VOLUME [--priority high|normal|low] [--budget SIZE] [--explain]",
       "PreAssembleSnapshot: compose EXT's next restore of VOLUME; prints the LSI id",
       "Ranks the blocks of VOLUME's latest snapshot by the probability that EXT's next\n"
       "session reads them (its own past sessions, smoothed toward every extension's;\n"
       "confident co-access successors of likely blocks; the filesystem's metadata on a\n"
       "cold start), takes them greedily until --budget (default: 1.5 x what a session\n"
       "reads) or a probability floor, and seals them for EXT in a delta layer ordered by\n"
       "expected first access. Blocks EXT's earlier layers hold unchanged are re-sealed\n"
       "locally; only the rest crosses the origin link. The LSI is published as\n"
       "assembled: restore delivers it while it is fresh. A fresh assembled LSI is\n"
       "returned as is. --explain says per tier how many blocks and why. --strategy\n"
       "full (every present block), none (base-only) and replay (exactly what the last\n"
       "recorded session read, in its order) are the benchmarks' baselines.\n"
       "While lsifs runs, the assembly runs in it, on its origin link.\n"
       "Example: lsictl -s /srv/lsifs preassemble -e site-a -v vol-db --explain",
       {},
       [](po::options_description& d) {
         d.add_options()("extension,e", po::value<std::string>()->required(), "the extension")(
             "volume,v", po::value<std::string>()->required(), "the volume")(
             "priority", po::value<std::string>(), "high, normal (default) or low")(
             "budget", po::value<std::string>(), "bytes of delta layer at most (e.g. 256M)")(
             "explain", "say per tier how many blocks and why")(
             "strategy", po::value<std::string>(),
             "predicted (default); baselines: full, none, replay")(
             "origin-latency", po::value<std::string>(),
             "without a daemon: model the link, one round trip per request (40ms)")(
             "origin-bandwidth", po::value<std::string>(),
             "without a daemon: model the link's bandwidth (200Mbit)");
       },
       CmdPreassemble,
       true,
       true},
      {{"lsi", "list"},
       "",
       "list the LSIs in the catalog with their state, size and expiry",
       "States: assembled (ready, not delivered), delivered (shown by mounts of its\n"
       "extension; 'image' when it is MOUNTPOINT/VOLUME.img), expired (TTL ran out),\n"
       "stale (an older snapshot, or sessions learned since it was planned), dropped\n"
       "(waiting for a mount to release it), unreadable (damaged, missing layer, no key);\n"
       "'in use' when a mount has it open. Oldest first.\n"
       "Example: lsictl -s /srv/lsifs lsi list --json",
       {},
       nullptr,
       CmdLsiList,
       true,
       true},
      {{"lsi", "show"},
       "ID",
       "show one LSI: state, TTL, layers and read counters",
       "Counters are those last saved by an lsifs serving the LSI (once a second):\n"
       "reads, blocks_read, from_delta, from_base, zero, origin_requests, origin_bytes,\n"
       "stalled_reads, prefetched_blocks, prefetched_read, read_errors, recall and\n"
       "precision.\n"
       "Example: lsictl -s /srv/lsifs lsi show 0123456789abcdef --json",
       {{"id", true, "ID"}},
       nullptr,
       CmdLsiShow,
       true,
       true},
      {{"lsi", "drop"},
       "ID [--force]",
       "remove an LSI: it leaves every listing at once, its files go when unused",
       "An LSI that a mount has open is pinned: it disappears from listings and mounts\n"
       "at once, the mount keeps reading it until its session ends, and its files are\n"
       "removed then. Dropping VOLUME.img's LSI removes VOLUME.img (no older one takes\n"
       "its place); restore again to bring one back. An LSI whose manifest is damaged\n"
       "(lsictl verify) is dropped only with --force; the layers no readable manifest\n"
       "names go with it.\n"
       "Example: lsictl -s /srv/lsifs lsi drop 0123456789abcdef",
       {{"id", true, "ID"}},
       [](po::options_description& d) {
         d.add_options()("force", po::bool_switch(), "drop it even if its manifest is damaged");
       },
       CmdLsiDrop},
      {{"lsi", "deliver"},
       "ID [--as-image]",
       "deliver this exact LSI to its extension (benchmarks, tests, rollbacks)",
       "Mounts of the LSI's extension show it as by-id/ID.img; with --as-image also as\n"
       "VOLUME.img, as a restore without --snapshot would. Unlike restore, nothing is\n"
       "chosen or assembled: a baseline made with preassemble --strategy full|none|replay\n"
       "is delivered this way.\n"
       "Example: lsictl -s /srv/lsifs lsi deliver 0123456789abcdef",
       {{"id", true, "ID"}},
       [](po::options_description& d) {
         d.add_options()("as-image", "also show it as MOUNTPOINT/VOLUME.img");
       },
       CmdLsiDeliver},
      {{"gc"},
       "",
       "evict LSIs now until the byte cap and the free-disk floor hold",
       "Finishes interrupted drops, removes layers no LSI uses, then drops LSIs in this\n"
       "order until LSIs take at most lsi_cap and the disk has free_floor free:\n"
       "unreadable, expired or stale, superseded, assembled, delivered by id, and last\n"
       "the current VOLUME.img ones; least recently used first within each; never one in\n"
       "use. Prints what it dropped and freed. See lsictl config.\n"
       "Example: lsictl -s /srv/lsifs gc --json",
       {},
       nullptr,
       CmdGc},
      {{"assemblies"},
       "",
       "the assembly queue: what the running lsifs assembles now and next",
       "Lists queued and running assemblies: id, state (queued, running, cancelling),\n"
       "extension, volume, priority, how many wait for it, why it was queued (restore,\n"
       "preassemble, session end, new snapshot), strategy and progress. Assemblies run\n"
       "high, then normal, then low, at most two at once and at most one low; a request\n"
       "for the same extension, volume, snapshot and strategy joins the one queued or\n"
       "running (raising its priority). Without a running lsifs nothing is queued.\n"
       "Example: lsictl -s /srv/lsifs assemblies --json",
       {},
       nullptr,
       CmdAssemblies,
       true,
       true},
      {{"assemblies", "cancel"},
       "ID",
       "cancel one queued or running assembly",
       "The assembly stops between two requests to the origin; what it wrote is removed\n"
       "and no LSI is published. Those waiting for it (a restore, a preassemble) fail\n"
       "with 'cancelled'.\n"
       "Example: lsictl -s /srv/lsifs assemblies cancel 3",
       {{"id", true, "ID"}},
       nullptr,
       CmdAssembliesCancel,
       true,
       true},
      {{"stats"},
       "",
       "store-wide figures: volumes, LSIs by state, restores, recall/precision",
       "Per volume: snapshots and bytes stored; per extension of it: LSIs by state and\n"
       "their bytes, restores, sessions recorded, and the median recall and precision of\n"
       "the pre-assembled layers over the last 5 sessions whose logs are kept.\n"
       "Example: lsictl -s /srv/lsifs stats --json",
       {},
       nullptr,
       CmdStats},
      {{"status"},
       "MOUNTPOINT",
       "what a running lsifs mount serves: images, origin, cache, assemblies, in human units",
       "Like cryptsetup status: reads MOUNTPOINT/.lsifs/mount.json, which the mount writes\n"
       "as it is read, and prints the extension and its key, the origin link, what was\n"
       "fetched and how long reads waited on it, the cache, recording, assemblies, and\n"
       "one line per image (reads, blocks, bytes fetched, recall, errors). --json prints\n"
       "the mount's JSON as it is. Needs no store. Exit status 1 when MOUNTPOINT is not\n"
       "an lsifs mount.\n"
       "Example: lsictl status /mnt/lsi",
       {{"mountpoint", true, "MOUNTPOINT"}},
       nullptr,
       CmdStatus,
       false},
      {{"access", "show"},
       "-e EXT -v VOLUME [--session N]",
       "show what has been learned from EXT's reads of VOLUME",
       "Lists the restore sessions (number, LSI, start, blocks read, reads, events\n"
       "dropped), the hottest blocks with their estimated probability of being read in\n"
       "the next session and their typical first-access rank, and co-access clusters\n"
       "(blocks joined by successors seen in at least 2 sessions' worth of decayed\n"
       "support). With --session N: the blocks that session read, in first-access order\n"
       "(--json: {\"blocks\": [...], \"t_us\": [...]}). Volume-wide statistics across all\n"
       "extensions are shown with -e '*'. A running lsifs answers through the control\n"
       "socket; otherwise lsictl reads the database itself.\n"
       "Example: lsictl -s /srv/lsifs access show -e site-a -v vol-db --session 3 --json",
       {},
       [](po::options_description& d) {
         d.add_options()("extension,e", po::value<std::string>()->required(), "the extension")(
             "volume,v", po::value<std::string>()->required(), "the volume")(
             "session", po::value<std::string>(), "one session's first-access order");
       },
       CmdAccessShow},
      {{"access", "forget"},
       "-e EXT -v VOLUME --session N",
       "remove one session from what was learned (a copy, a check, not a restore)",
       "Session N of EXT on VOLUME stops counting: it is marked forgotten (access show\n"
       "says so) and the models of EXT and of the volume are learned again from the\n"
       "logs of the sessions still learned. Logs beyond the last keep_sessions are gone,\n"
       "so what those older sessions taught is lost too; the command says how many.\n"
       "Sessions that read the whole image in order (cp, cmp, dd, a backup) are not\n"
       "learned from in the first place (lsifs -o sequential=skip, the default).\n"
       "Example: lsictl -s /srv/lsifs access forget -e site-a -v vol-db --session 7",
       {},
       [](po::options_description& d) {
         d.add_options()("extension,e", po::value<std::string>()->required(), "the extension")(
             "volume,v", po::value<std::string>()->required(), "the volume")(
             "session", po::value<std::string>()->required(), "the session to forget");
       },
       CmdAccessForget},
      {{"access", "reset"},
       "-e EXT -v VOLUME",
       "forget everything learned from EXT's reads of VOLUME",
       "Removes EXT's sessions of VOLUME, their logs and its model; the volume-wide\n"
       "model (-e '*') is learned again from the other extensions' sessions. The next\n"
       "restore of VOLUME for EXT is planned from the volume-wide model.\n"
       "Example: lsictl -s /srv/lsifs access reset -e site-a -v vol-db",
       {},
       [](po::options_description& d) {
         d.add_options()("extension,e", po::value<std::string>()->required(), "the extension")(
             "volume,v", po::value<std::string>()->required(), "the volume");
       },
       CmdAccessReset},
      {{"access", "heatmap"},
       "-e EXT -v VOLUME -o FILE.svg|FILE.png [--format svg|png]",
       "draw which blocks EXT's sessions read, over the volume's address space",
       "Draws the blocks of VOLUME's latest snapshot in rows of 64 cells (up to 4096\n"
       "blocks one per cell, larger volumes several per cell), every second or fourth row\n"
       "labelled with its first block and byte offset (\"block 16384 \xc2\xb7 1 GiB\"); -e '*'\n"
       "draws every extension's sessions. A cell's colour is the number of sessions that\n"
       "read its block (the most among its blocks), on the viridis palette, linear in\n"
       "the count: dark purple #440154 (1 session) through teal to yellow #fde725 (the\n"
       "most, named on the colour bar). Light grey #cccccc: the snapshot holds the block\n"
       "but no session read it. White hatched with grey #969696 diagonals: the snapshot\n"
       "does not hold it (a hole) and no session read it. Red #e41a1c outlines, numbered:\n"
       "the co-access clusters access show lists, under its numbers. The format is\n"
       "--format, else FILE's extension: .svg (SVG) or .png (PNG); any other is refused.\n"
       "The PNG has the same cells, outlines, ticks and colour bar but no text (title,\n"
       "labels, numbers): read those in the SVG. The file is written under a temporary\n"
       "name beside FILE and renamed over it.\n"
       "Example: lsictl -s /srv/lsifs access heatmap -e site-a -v vol-db -o vol-db.png",
       {},
       [](po::options_description& d) {
         d.add_options()("extension,e", po::value<std::string>()->required(), "the extension")(
             "volume,v", po::value<std::string>()->required(), "the volume")(
             "output,o", po::value<std::string>()->required(),
             "the file to write: FILE.svg or FILE.png")(
             "format", po::value<std::string>(), "svg or png (default: from FILE's extension)");
       },
       CmdAccessHeatmap},
      {{"verify"},
       "[--all | ID]",
       "check snapshots and LSIs end to end; say what is damaged",
       "Checks, as qemu-img check does, what the store holds: each snapshot's map and\n"
       "data files, every block it lists opened and authenticated; each LSI's manifest\n"
       "(under its extension's key), its base snapshot, and each layer's header, key,\n"
       "index and every record. ID names one snapshot or LSI; --all (the default)\n"
       "checks everything. Nothing is changed, and nothing is learned from the reads.\n"
       "Exit status: 0 all intact, 3 damage found (each damaged item is listed with its\n"
       "problems), 1 the check could not run, 2 bad arguments. Remove what is damaged\n"
       "with lsictl lsi drop --force ID or lsictl snapshot delete VOLUME ID.\n"
       "Example: lsictl -s /srv/lsifs verify --all --json",
       {{"id", false, "ID"}},
       [](po::options_description& d) {
         d.add_options()("all", po::bool_switch(), "check every snapshot and LSI (the default)");
       },
       CmdVerify},
      {{"snapshot", "delete"},
       "VOLUME ID",
       "delete a snapshot (a damaged one too); blocks later snapshots use stay",
       "Removes the snapshot's map, then its data file, unless a later snapshot of the\n"
       "volume still uses blocks stored there (or a map of the volume cannot be read and\n"
       "might): those stay, and go when the last snapshot using them is deleted. LSIs\n"
       "standing on the snapshot are dropped with it; refused while a mount has one of\n"
       "them open. Works on a snapshot whose files are damaged (see lsictl verify).\n"
       "Example: lsictl -s /srv/lsifs snapshot delete vol-db 0123456789abcdef",
       {{"volume", true, "VOLUME"}, {"id", true, "ID"}},
       nullptr,
       CmdSnapshotDelete},
      {{"volume", "delete"},
       "VOLUME",
       "delete a volume: its LSIs, every snapshot, and what was learned of it",
       "Refused, deleting nothing, while a mount has an LSI of VOLUME open. Otherwise\n"
       "drops VOLUME's LSIs (every extension's), deletes its snapshots newest first\n"
       "(each whole: a crash midway leaves a volume with fewer snapshots; run it\n"
       "again), removes its folder, and forgets the sessions learned from its restores.\n"
       "Prints the bytes freed.\n"
       "Example: lsictl -s /srv/lsifs volume delete vol-old --json",
       {{"volume", true, "VOLUME"}},
       nullptr,
       CmdVolumeDelete},
      {{"snapshots"},
       "[VOLUME]",
       "list snapshots, oldest first",
       "Example: lsictl -s /srv/lsifs snapshots vol-db --json",
       {{"volume", false, "VOLUME"}},
       nullptr,
       CmdSnapshots},
  };
}

void PrintMainHelp(const std::vector<Command>& commands) {
  std::printf(
      "lsictl - manage an lsifs store: snapshots, extension keys and restores\n\n"
      "Usage: lsictl [-s STORE] [--json] COMMAND [ARGS...]\n\n"
      "Commands:\n");
  for (const auto& c : commands) {
    std::string name;
    for (const auto& w : c.words) name += (name.empty() ? "" : " ") + w;
    std::string left = name + (c.usage_args.empty() ? "" : " " + c.usage_args);
    if (left.size() > 34) {
      std::printf("  %s\n  %-34s %s\n", left.c_str(), "", c.summary.c_str());
    } else {
      std::printf("  %-34s %s\n", left.c_str(), c.summary.c_str());
    }
  }
  std::printf(
      "\nOptions:\n"
      "  -s, --store STORE   the store to use (default: $LSIFS_STORE)\n"
      "      --json          print results as JSON, for scripts\n"
      "      --region URL    a site: ask the region's lsid at https://HOST:PORT, as the\n"
      "                      extension its certificate names (restore, preassemble, lsi\n"
      "                      list, lsi show, assemblies; default: $LSIFS_REGION)\n"
      "      --cert FILE     --region: the site's certificate (default SITE_DIR/tls/EXT.crt)\n"
      "      --key FILE      --region: its key, mode 0600 (default SITE_DIR/tls/EXT.key)\n"
      "      --ca FILE       --region: the region's CA (default SITE_DIR/tls/ca.crt)\n"
      "  -h, --help          this help; 'lsictl COMMAND --help' explains one command\n"
      "      --version       print the version\n\n"
      "Start here:\n"
      "  lsictl init /srv/lsifs && export LSIFS_STORE=/srv/lsifs\n"
      "  lsictl key create site-a\n"
      "  lsictl import vol-db disk.img\n"
      "  lsictl snapshots\n"
      "  lsictl restore -e site-a -v vol-db\n"
      "  lsifs $LSIFS_STORE /mnt/lsi -e site-a\n\n"
      "See lsictl(8), lsifs(8) and lsi(5).\n");
}

po::options_description CommonOptions() {
  po::options_description d("Options");
  d.add_options()("store,s", po::value<std::string>(), "the store (default: $LSIFS_STORE)")(
      "json", "print results as JSON")("help,h", "show this help");
  return d;
}

// A site's options: shown by the commands a site may run, taken (to be
// refused with a reason) by the others.
po::options_description SiteOptions() {
  po::options_description d("Options");
  d.add_options()(
      "region", po::value<std::string>(),
      "a site: ask the region's lsid at https://HOST:PORT (restore, preassemble, lsi list|show, "
      "assemblies; default: $LSIFS_REGION)")(
      "cert", po::value<std::string>(), "--region: the site's certificate (SITE_DIR/tls/EXT.crt)")(
      "key", po::value<std::string>(), "--region: its key (SITE_DIR/tls/EXT.key)")(
      "ca", po::value<std::string>(), "--region: the region's CA (SITE_DIR/tls/ca.crt)");
  return d;
}

int RunCommand(const Command& cmd, const std::vector<std::string>& args, Context ctx) {
  po::options_description desc = CommonOptions();
  if (cmd.add_options) cmd.add_options(desc);
  po::options_description hidden;
  (cmd.region ? desc : hidden).add(SiteOptions());
  po::positional_options_description pos;
  for (const auto& p : cmd.positionals) {
    hidden.add_options()(p.name, po::value<std::string>());
    pos.add(p.name, 1);
  }
  po::options_description all;
  all.add(desc).add(hidden);
  std::string name;
  for (const auto& w : cmd.words) name += (name.empty() ? "" : " ") + w;
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), ctx.vm);
    if (ctx.vm.count("help")) {
      std::printf("Usage: lsictl [-s STORE] %s %s\n\n%s.\n\n%s\n\n", name.c_str(),
                  cmd.usage_args.c_str(), cmd.summary.c_str(), cmd.details.c_str());
      std::cout << desc;
      return 0;
    }
    po::notify(ctx.vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "lsictl %s: %s (see: lsictl %s --help)\n", name.c_str(), e.what(),
                 name.c_str());
    return kExitUsage;
  }
  for (const auto& p : cmd.positionals) {
    if (p.required && !ctx.vm.count(p.name)) {
      std::fprintf(stderr, "lsictl %s: missing %s (usage: lsictl %s %s)\n", name.c_str(), p.shown,
                   name.c_str(), cmd.usage_args.c_str());
      return kExitUsage;
    }
  }
  if (ctx.vm.count("store")) ctx.store_path = ctx.vm["store"].as<std::string>();
  if (ctx.vm.count("json")) ctx.json = true;
  for (auto [option, field] :
       {std::pair{"region", &ctx.region}, std::pair{"cert", &ctx.region_cert},
        std::pair{"key", &ctx.region_key}, std::pair{"ca", &ctx.region_ca}}) {
    if (ctx.vm.count(option)) *field = ctx.vm[option].as<std::string>();
  }
  // $LSIFS_REGION: a site's host, whose commands of a site go to its region.
  const char* region_env = std::getenv("LSIFS_REGION");
  if (ctx.region.empty() && cmd.region && region_env != nullptr) ctx.region = region_env;
  if (ctx.region.empty() &&
      !(ctx.region_cert.empty() && ctx.region_key.empty() && ctx.region_ca.empty())) {
    std::fprintf(stderr, "lsictl %s: --cert, --key and --ca go with --region\n", name.c_str());
    return kExitUsage;
  }
  if (!ctx.region.empty()) {
    // A site's store is the region's: what it may ask goes there, the rest
    // is refused before anything is opened.
    if (!cmd.region) {
      std::fprintf(stderr,
                   "lsictl %s: not for a site: run it on the region's host (lsictl -s STORE %s); "
                   "with --region: restore, preassemble, lsi list, lsi show, assemblies\n",
                   name.c_str(), name.c_str());
      return kExitUsage;
    }
    return cmd.run(ctx);
  }
  if (cmd.needs_store && ctx.store_path.empty()) {
    std::fprintf(stderr, "lsictl %s: no store given: pass -s STORE or set LSIFS_STORE\n",
                 name.c_str());
    return kExitUsage;
  }
  return cmd.run(ctx);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Command> commands = Commands();
  Context ctx;
  if (const char* env = std::getenv("LSIFS_STORE")) ctx.store_path = env;
  std::vector<std::string> region_args;

  std::vector<std::string> args(argv + 1, argv + argc);
  size_t i = 0;
  // Global options before the command.
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      PrintMainHelp(commands);
      return 0;
    } else if (a == "--version") {
      std::printf("lsictl (lsifs) %s\n", LSIFS_VERSION);
      return 0;
    } else if (a == "--json") {
      ctx.json = true;
    } else if (a == "-s" || a == "--store") {
      if (i + 1 == args.size()) {
        std::fprintf(stderr, "lsictl: %s needs a store path\n", a.c_str());
        return kExitUsage;
      }
      ctx.store_path = args[++i];
    } else if (a.rfind("--store=", 0) == 0) {
      ctx.store_path = a.substr(8);
    } else if (a == "--region" || a == "--cert" || a == "--key" || a == "--ca") {
      if (i + 1 == args.size()) {
        std::fprintf(stderr, "lsictl: %s needs a value\n", a.c_str());
        return kExitUsage;
      }
      // Kept as the command's own option, which it then is.
      region_args.push_back(a);
      region_args.push_back(args[++i]);
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "lsictl: unknown option %s (see: lsictl --help)\n", a.c_str());
      return kExitUsage;
    } else {
      break;
    }
  }
  if (i == args.size()) {
    std::fprintf(stderr,
                 "lsictl: no command given. Usage: lsictl [-s STORE] COMMAND; see lsictl --help\n");
    return kExitUsage;
  }
  const Command* best = nullptr;
  for (const auto& c : commands) {
    if (args.size() - i < c.words.size()) continue;
    bool match = true;
    for (size_t w = 0; w < c.words.size(); ++w) match = match && args[i + w] == c.words[w];
    if (match && (best == nullptr || c.words.size() > best->words.size())) best = &c;
  }
  if (best == nullptr) {
    std::string subcommands;
    for (const auto& c : commands) {
      if (c.words.size() > 1 && c.words[0] == args[i]) {
        subcommands += (subcommands.empty() ? "" : ", ") + c.words[1];
      }
    }
    if (!subcommands.empty()) {
      std::fprintf(stderr, "lsictl %s: needs a subcommand: %s (see: lsictl --help)\n",
                   args[i].c_str(), subcommands.c_str());
      return kExitUsage;
    }
    std::fprintf(stderr, "lsictl: unknown command '%s' (see: lsictl --help)\n", args[i].c_str());
    return kExitUsage;
  }
  std::vector<std::string> rest(args.begin() + static_cast<long>(i + best->words.size()),
                                args.end());
  rest.insert(rest.end(), region_args.begin(), region_args.end());
  return RunCommand(*best, rest, std::move(ctx));
}
