// lsictl: the administration and restore CLI of lsifs. Every command's logic
// lives in core/; this file parses arguments and prints results (text for
// people, --json for scripts).
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "core/access/service.h"
#include "core/assembler/assemble.h"
#include "core/control/control.h"
#include "core/crypto/keyfile.h"
#include "core/origin/import.h"
#include "core/origin/snapshot.h"
#include "core/store/store.h"
#include "core/util/file.h"
#include "core/util/hex.h"
#include "core/util/json.h"
#include "core/util/progress.h"

namespace po = boost::program_options;
using namespace lsifs;

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

struct Context {
  std::string store_path;
  bool json = false;
  po::variables_map vm;

  std::string Arg(const char* name) const {
    return vm.count(name) ? vm[name].as<std::string>() : std::string();
  }
};

int Fail(const Status& s) {
  std::fprintf(stderr, "lsictl: %s\n", s.message().c_str());
  return kExitError;
}

std::string FormatTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
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
    return Status::InvalidArgument(std::string(what) + " id '" + text + "' is not 16 hex digits");
  }
  *id = *parsed;
  return Status::Ok();
}

uint64_t DeltaBlocks(const Manifest& m) {
  uint64_t n = 0;
  for (const auto& l : m.layers) n += l.blocks.size();
  return n;
}

void ManifestJson(JsonWriter& j, const Manifest& m) {
  j.Field("lsi", FormatId(m.lsi_id))
      .Field("extension", m.extension)
      .Field("volume", m.volume)
      .Field("snapshot", FormatId(m.snapshot))
      .Field("size", m.volume_size)
      .Field("block_size", m.block_size)
      .Field("layers", static_cast<uint64_t>(m.layers.size()))
      .Field("prefetched_blocks", DeltaBlocks(m))
      .Field("created", FormatTime(m.created));
  j.Key("expires");
  if (m.expires) {
    j.String(FormatTime(m.expires));
  } else {
    j.Null();
  }
}

// ---- commands ------------------------------------------------------------

int CmdInit(Context& ctx) {
  std::string path = ctx.Arg("store-path");
  uint32_t block_size = kDefaultBlockSize;
  if (ctx.vm.count("block-size")) {
    Status s = ParseBlockSize(ctx.Arg("block-size"), &block_size);
    if (!s.ok()) return Fail(s);
  }
  StoreConfig config;
  Status s = Store::Init(path, block_size, &config);
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("store", path)
        .Field("store_id", FormatId(config.store_id))
        .Field("block_size", config.block_size)
        .EndObject();
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("Created store %s (block size %s, store id %s).\n", path.c_str(),
                FormatBytes(config.block_size).c_str(), FormatId(config.store_id).c_str());
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
  s = store->keyring().List(&keys);
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginArray();
    for (const auto& k : keys) {
      j.BeginObject()
          .Field("extension", k.name)
          .Field("key_id", FormatId(k.id))
          .Field("path", k.path)
          .EndObject();
    }
    j.EndArray();
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  if (keys.empty()) {
    std::printf("No extension keys yet; create one with: lsictl key create EXT\n");
    return 0;
  }
  std::printf("%-24s %-16s %s\n", "EXTENSION", "KEY ID", "FILE");
  for (const auto& k : keys) {
    std::printf("%-24s %-16s %s\n", k.name.c_str(), FormatId(k.id).c_str(), k.path.c_str());
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
  SecretKey provider;
  s = store->LoadProviderKey(&provider);
  if (!s.ok()) return Fail(s);
  OriginKeys keys = OriginKeys::Derive(provider);
  provider.Wipe();

  std::string volume = ctx.Arg("volume");
  ProgressBar bar("importing " + volume);
  ImportOptions options;
  options.progress = [&](uint64_t done, uint64_t total) { bar.Update(done, total); };
  ImportResult r;
  s = ImportImage(*store, keys, volume, ctx.Arg("image"), options, &r);
  bar.Finish();
  if (!s.ok()) return Fail(s);

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
  SecretKey provider;
  s = store->LoadProviderKey(&provider);
  if (!s.ok()) return Fail(s);
  OriginKeys keys = OriginKeys::Derive(provider);
  std::vector<SnapshotInfo> list;
  std::string volume = ctx.Arg("volume");
  s = ListSnapshots(*store, keys, volume, &list);
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginArray();
    for (const auto& snap : list) SnapshotJson(j, snap);
    j.EndArray();
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  if (list.empty()) {
    std::printf("No snapshots%s; import one with: lsictl import VOLUME IMAGE\n",
                volume.empty() ? "" : (" of " + volume).c_str());
    return 0;
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
  return 0;
}

// What the commands acting for one extension need: the store, the origin
// (in-process, with the provider key) and the extension's key.
struct ForExtension {
  std::unique_ptr<Store> store;
  std::unique_ptr<OriginKeys> keys;
  std::unique_ptr<LocalOrigin> origin;
  KeyInfo key_info;
  SecretKey key;
};

Status OpenForExtension(const Context& ctx, ForExtension* x) {
  LSIFS_RETURN_IF_ERROR(OpenStore(ctx, &x->store));
  LSIFS_RETURN_IF_ERROR(LoadOriginKeys(*x->store, &x->keys));
  LSIFS_RETURN_IF_ERROR(x->store->keyring().Load(ctx.Arg("extension"), &x->key_info, &x->key));
  x->origin = std::make_unique<LocalOrigin>(*x->store, *x->keys);
  return Status::Ok();
}

int CmdRestore(Context& ctx) {
  uint64_t snapshot = 0;
  if (ctx.vm.count("snapshot")) {
    Status s = ParseIdArg(ctx.Arg("snapshot"), "snapshot", &snapshot);
    if (!s.ok()) return Fail(s);
  }
  ForExtension x;
  Status s = OpenForExtension(ctx, &x);
  if (!s.ok()) return Fail(s);
  Manifest m;
  bool reused = false;
  s = Restore(*x.store, *x.origin, *x.keys, x.key_info, x.key, ctx.Arg("volume"), snapshot, &m,
              &reused);
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject();
    ManifestJson(j, m);
    j.Field("reused", reused).EndObject();
    PrintJson(j);
    return 0;
  }
  std::fprintf(stderr, "%s LSI of %s (snapshot %s) for %s: %zu delta layers, %llu blocks\n",
               reused ? "delivered the cached" : "assembled and delivered a new", m.volume.c_str(),
               FormatId(m.snapshot).c_str(), m.extension.c_str(), m.layers.size(),
               static_cast<unsigned long long>(DeltaBlocks(m)));
  std::printf("%s\n", FormatId(m.lsi_id).c_str());
  return 0;
}

int CmdPreassemble(Context& ctx) {
  ForExtension x;
  Status s = OpenForExtension(ctx, &x);
  if (!s.ok()) return Fail(s);
  ProgressBar bar("assembling " + ctx.Arg("volume"));
  AssembleOptions options;
  uint32_t block_size = x.store->block_size();
  options.progress = [&](uint64_t done, uint64_t total) {
    bar.Update(done * block_size, total * block_size);
  };
  Manifest m;
  s = PreassembleFixed(*x.store, *x.origin, *x.keys, x.key_info, x.key, ctx.Arg("volume"),
                       ctx.Arg("strategy"), options, &m);
  bar.Finish();
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject();
    ManifestJson(j, m);
    j.EndObject();
    PrintJson(j);
    return 0;
  }
  std::printf("%s\n", FormatId(m.lsi_id).c_str());
  return 0;
}

int CmdLsiList(Context& ctx) {
  std::unique_ptr<Store> store;
  Status s = OpenStore(ctx, &store);
  if (!s.ok()) return Fail(s);
  std::vector<Manifest> lsis;
  std::vector<std::string> problems;
  s = ListLsis(*store, &lsis, &problems);
  if (!s.ok()) return Fail(s);
  for (const auto& p : problems) std::fprintf(stderr, "lsictl: warning: %s\n", p.c_str());
  if (ctx.json) {
    JsonWriter j;
    j.BeginArray();
    for (const auto& m : lsis) {
      j.BeginObject();
      ManifestJson(j, m);
      j.EndObject();
    }
    j.EndArray();
    PrintJson(j);
    return 0;
  }
  if (lsis.empty()) {
    std::printf("No LSIs; deliver one with: lsictl restore -e EXT -v VOLUME\n");
    return 0;
  }
  std::printf("%-16s %-14s %-16s %-16s %6s %10s %-20s\n", "LSI", "EXTENSION", "VOLUME", "SNAPSHOT",
              "LAYERS", "BLOCKS", "CREATED");
  for (const auto& m : lsis) {
    std::printf("%-16s %-14s %-16s %-16s %6zu %10llu %-20s\n", FormatId(m.lsi_id).c_str(),
                m.extension.c_str(), m.volume.c_str(), FormatId(m.snapshot).c_str(),
                m.layers.size(), static_cast<unsigned long long>(DeltaBlocks(m)),
                FormatTime(m.created).c_str());
  }
  return 0;
}

// Opens the store and reads the catalog entry named by the ID argument.
Status OpenLsiArg(const Context& ctx, std::unique_ptr<Store>* store, uint64_t* id, Manifest* m) {
  LSIFS_RETURN_IF_ERROR(OpenStore(ctx, store));
  LSIFS_RETURN_IF_ERROR(ParseIdArg(ctx.Arg("id"), "LSI", id));
  Status s = PeekManifest(LsiPath(**store, *id), m);
  if (s.IsNotFound()) {
    return Status::NotFound("no LSI " + FormatId(*id) + " in this store (see: lsictl lsi list)");
  }
  return s;
}

int CmdLsiShow(Context& ctx) {
  std::unique_ptr<Store> store;
  uint64_t id = 0;
  Manifest m;
  Status s = OpenLsiArg(ctx, &store, &id, &m);
  if (!s.ok()) return Fail(s);
  // Counters as last saved by a daemon serving this LSI (once a second).
  std::string counters;
  std::string path = store->root() + "/run/" + FormatId(id) + "." + m.extension + ".counters.json";
  bool have_counters = ReadWholeFile(path, 1 << 20, &counters).ok();
  while (!counters.empty() && (counters.back() == '\n')) counters.pop_back();
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject();
    ManifestJson(j, m);
    j.Key("layer_list").BeginArray();
    for (const auto& l : m.layers) {
      j.BeginObject()
          .Field("layer", FormatId(l.layer_id))
          .Field("blocks", static_cast<uint64_t>(l.blocks.size()))
          .EndObject();
    }
    j.EndArray().Key("counters");
    std::string out = j.str() + (have_counters ? counters : std::string("null")) + "}";
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::printf(
      "lsi:        %s\nextension:  %s\nvolume:     %s\nsnapshot:   %s\nsize:       %s\n"
      "created:    %s\nlayers:     %zu (%llu blocks)\n",
      FormatId(m.lsi_id).c_str(), m.extension.c_str(), m.volume.c_str(),
      FormatId(m.snapshot).c_str(), FormatBytes(m.volume_size).c_str(),
      FormatTime(m.created).c_str(), m.layers.size(),
      static_cast<unsigned long long>(DeltaBlocks(m)));
  for (size_t i = 0; i < m.layers.size(); ++i) {
    std::printf("  layer %zu: %s, %zu blocks\n", i, FormatId(m.layers[i].layer_id).c_str(),
                m.layers[i].blocks.size());
  }
  std::printf("counters:   %s\n", have_counters ? counters.c_str() : "none recorded yet");
  return 0;
}

int CmdLsiDrop(Context& ctx) {
  std::unique_ptr<Store> store;
  uint64_t id = 0;
  Manifest m;
  Status s = OpenLsiArg(ctx, &store, &id, &m);
  if (s.ok()) s = DropLsi(*store, id);
  if (!s.ok()) return Fail(s);
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject().Field("dropped", FormatId(id)).EndObject();
    PrintJson(j);
  } else {
    std::fprintf(stderr, "dropped LSI %s\n", FormatId(id).c_str());
  }
  return 0;
}

// Sends a co-access request to the running lsifs that holds the database,
// or, when none runs, serves it here on the database itself.
Status AccessRequest(const Context& ctx, const std::vector<std::string>& request,
                     std::string* body) {
  std::unique_ptr<Store> store;
  std::unique_ptr<OriginKeys> keys;
  LSIFS_RETURN_IF_ERROR(OpenStore(ctx, &store));
  Status s = ControlCall(ControlSocketPath(store->root()), request, body);
  if (s.code() != Status::Code::kUnavailable) return s;
  LSIFS_RETURN_IF_ERROR(LoadOriginKeys(*store, &keys));
  std::unique_ptr<AccessDb> db;
  LSIFS_RETURN_IF_ERROR(AccessDb::Open(store->db_dir(), CoAccessSettings(), &db));
  return ServeAccessRequest(*db, *store, *keys, request, body);
}

int CmdAccessShow(Context& ctx) {
  std::string session = "0";
  if (ctx.vm.count("session")) {
    unsigned long n = std::strtoul(ctx.Arg("session").c_str(), nullptr, 10);
    if (n == 0 || n > UINT32_MAX) {
      return Fail(Status::InvalidArgument("--session takes a session number (1, 2, ...)"));
    }
    session = std::to_string(n);
  }
  std::string body;
  Status s = AccessRequest(
      ctx, {"access-show", ctx.Arg("extension"), ctx.Arg("volume"), session, ctx.json ? "1" : "0"},
      &body);
  if (!s.ok()) return Fail(s);
  std::fputs(body.c_str(), stdout);
  return 0;
}

int CmdAccessHeatmap(Context& ctx) {
  std::string path = ctx.Arg("output");
  if (path.size() < 4 || path.compare(path.size() - 4, 4, ".svg") != 0) {
    return Fail(Status::InvalidArgument("the heat map is drawn as SVG: name the file FILE.svg"));
  }
  std::string svg;
  Status s = AccessRequest(ctx, {"access-heatmap", ctx.Arg("extension"), ctx.Arg("volume")}, &svg);
  if (!s.ok()) return Fail(s);
  File f;
  std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  s = File::CreateExclusive(tmp, 0644, &f);
  if (s.ok()) s = f.WriteAll(AsBytes(svg));
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Status::FromErrno(path, errno);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return Fail(s);
  }
  if (ctx.json) {
    JsonWriter j;
    j.BeginObject().Field("heatmap", path).EndObject();
    PrintJson(j);
  } else {
    std::fprintf(stderr, "wrote %s\n", path.c_str());
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
};

std::vector<Command> Commands() {
  return {
      {{"init"},
       "STORE [--block-size SIZE]",
       "create a store (provider key, LevelDB, layout)",
       "Creates STORE, which must not exist or be an empty directory: the provider key\n"
       "(provider.key, mode 0600), the co-access LevelDB and the folders for snapshots,\n"
       "keys, layers and LSIs. The block size (the unit of fetch and encryption) is fixed\n"
       "for the store's life: a power of two from 4K to 1M, default 64K.\n"
       "Example: lsictl init /srv/lsifs --block-size 64K",
       {{"store-path", true, "STORE"}},
       [](po::options_description& d) {
         d.add_options()("block-size", po::value<std::string>(),
                         "block size: 4K..1M, power of two (default 64K)");
       },
       CmdInit,
       false},
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
      {{"import"},
       "VOLUME IMAGE",
       "import a raw image as a new snapshot of VOLUME; prints its id",
       "Reads IMAGE (a raw disk image or a block device) in bounded memory and stores\n"
       "its non-zero blocks, each sealed with the provider key (AES-256-GCM) and bound to\n"
       "volume, snapshot and block number. Blocks unchanged since VOLUME's latest snapshot\n"
       "are not stored again. Prints the new snapshot id on stdout and a summary on\n"
       "stderr; a progress bar is shown on a terminal.\n"
       "Example: lsictl -s /srv/lsifs import vol-db /var/tmp/db.img",
       {{"volume", true, "VOLUME"}, {"image", true, "IMAGE"}},
       nullptr,
       CmdImport},
      {{"restore"},
       "-e EXT -v VOLUME [--snapshot ID]",
       "deliver an LSI of VOLUME to extension EXT; prints the LSI id",
       "The restore workflow: if the catalog holds a fresh LSI of (EXT, VOLUME, snapshot)\n"
       "it is delivered at once; otherwise a new one is assembled. The snapshot is the\n"
       "volume's latest unless --snapshot names one. A running lsifs -e EXT shows the\n"
       "LSI as MOUNTPOINT/VOLUME.img and MOUNTPOINT/by-id/ID.img without remounting.\n"
       "(Until the predictor lands, new LSIs hold no delta layers: every block is\n"
       "fetched from the base snapshot on first read.)\n"
       "Example: lsictl -s /srv/lsifs restore -e site-a -v vol-db",
       {},
       [](po::options_description& d) {
         d.add_options()("extension,e", po::value<std::string>()->required(), "the extension")(
             "volume,v", po::value<std::string>()->required(), "the volume")(
             "snapshot", po::value<std::string>(), "a snapshot id (default: the latest)");
       },
       CmdRestore},
      {{"preassemble"},
       "-e EXT -v VOLUME --strategy full|none",
       "pre-assemble an LSI of VOLUME's latest snapshot for EXT; prints its id",
       "Fetches blocks of the base snapshot through the origin, seals them for EXT in\n"
       "a delta layer and writes the LSI to the catalog, where restore and a running\n"
       "lsifs find it. Strategies: full puts every present block in the layer (a fully\n"
       "local LSI: the full-copy baseline); none makes a base-only LSI. The predictor's\n"
       "strategy, with --priority and --budget, comes with the PSA.\n"
       "Example: lsictl -s /srv/lsifs preassemble -e site-a -v vol-db --strategy full",
       {},
       [](po::options_description& d) {
         d.add_options()("extension,e", po::value<std::string>()->required(), "the extension")(
             "volume,v", po::value<std::string>()->required(), "the volume")(
             "strategy", po::value<std::string>()->required(), "full or none");
       },
       CmdPreassemble},
      {{"lsi", "list"},
       "",
       "list the LSIs in the catalog, oldest first",
       "Example: lsictl -s /srv/lsifs lsi list --json",
       {},
       nullptr,
       CmdLsiList},
      {{"lsi", "show"},
       "ID",
       "show one LSI: its layers and its read counters",
       "Counters are those last saved by an lsifs serving the LSI (once a second):\n"
       "reads, blocks_read, from_delta, from_base, zero, origin_requests, origin_bytes,\n"
       "stalled_reads, prefetched_blocks, prefetched_read, read_errors, recall and\n"
       "precision.\n"
       "Example: lsictl -s /srv/lsifs lsi show 0123456789abcdef --json",
       {{"id", true, "ID"}},
       nullptr,
       CmdLsiShow},
      {{"lsi", "drop"},
       "ID",
       "remove an LSI: its catalog entry, then its layers",
       "A mount that has the LSI open keeps reading it until it is closed.\n"
       "Example: lsictl -s /srv/lsifs lsi drop 0123456789abcdef",
       {{"id", true, "ID"}},
       nullptr,
       CmdLsiDrop},
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
      {{"access", "heatmap"},
       "-e EXT -v VOLUME -o FILE.svg",
       "draw block-access frequency over the volume's address space",
       "Writes an SVG: the volume's blocks in rows, left to right, each cell coloured\n"
       "by the estimated probability that the next session reads it (white: never read,\n"
       "dark red: read every session).\n"
       "Example: lsictl -s /srv/lsifs access heatmap -e site-a -v vol-db -o vol-db.svg",
       {},
       [](po::options_description& d) {
         d.add_options()("extension,e", po::value<std::string>()->required(), "the extension")(
             "volume,v", po::value<std::string>()->required(), "the volume")(
             "output,o", po::value<std::string>()->required(), "the SVG file to write");
       },
       CmdAccessHeatmap},
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
    std::printf("  %-34s %s\n", left.c_str(), c.summary.c_str());
  }
  std::printf(
      "\nOptions:\n"
      "  -s, --store STORE   the store to use (default: $LSIFS_STORE)\n"
      "      --json          print results as JSON, for scripts\n"
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

int RunCommand(const Command& cmd, const std::vector<std::string>& args, Context ctx) {
  po::options_description desc = CommonOptions();
  if (cmd.add_options) cmd.add_options(desc);
  po::options_description hidden;
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

  std::vector<std::string> args(argv + 1, argv + argc);
  size_t i = 0;
  // Global options before the command.
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      PrintMainHelp(commands);
      return 0;
    } else if (a == "--version") {
      std::printf("lsictl (lsifs) 0.1.0\n");
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
  return RunCommand(*best, rest, std::move(ctx));
}
