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

#include "core/crypto/keyfile.h"
#include "core/origin/import.h"
#include "core/origin/snapshot.h"
#include "core/store/store.h"
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
  j.BeginObject()
      .Field("volume", s.volume)
      .Field("snapshot", FormatId(s.id))
      .Key("parent");
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

// ---- the command table and parsing ---------------------------------------

struct Positional {
  const char* name;
  bool required;
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
       {{"store-path", true}},
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
       {{"extension", true}},
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
       {{"volume", true}, {"image", true}},
       nullptr,
       CmdImport},
      {{"snapshots"},
       "[VOLUME]",
       "list snapshots, oldest first",
       "Example: lsictl -s /srv/lsifs snapshots vol-db --json",
       {{"volume", false}},
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
      "  lsictl snapshots\n\n"
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
    po::notify(ctx.vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "lsictl %s: %s (see: lsictl %s --help)\n", name.c_str(), e.what(),
                 name.c_str());
    return kExitUsage;
  }
  if (ctx.vm.count("help")) {
    std::printf("Usage: lsictl [-s STORE] %s %s\n\n%s.\n\n%s\n\n", name.c_str(),
                cmd.usage_args.c_str(), cmd.summary.c_str(), cmd.details.c_str());
    std::cout << desc;
    return 0;
  }
  for (const auto& p : cmd.positionals) {
    if (p.required && !ctx.vm.count(p.name)) {
      std::fprintf(stderr, "lsictl %s: missing %s (usage: lsictl %s %s)\n", name.c_str(), p.name,
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
    std::fprintf(stderr, "lsictl: no command given. Usage: lsictl [-s STORE] COMMAND; see lsictl --help\n");
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
