#include "core/store/store.h"

#include <dirent.h>
#include <leveldb/db.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sstream>

#include "core/util/file.h"
#include "core/util/hex.h"
#include "core/util/numbers.h"

namespace lsifs {
namespace {

constexpr char kConfigFormat[] = "lsifs-store";
constexpr uint64_t kConfigVersion = 1;
const char* const kSubdirs[] = {"keys", "db",      "snapshots", "layers",
                                "lsi",  "catalog", "run",       "tmp"};

std::string FormatConfig(const StoreConfig& c) {
  std::ostringstream out;
  out << "# lsifs store configuration; do not edit\n"
      << "format: " << kConfigFormat << "-" << kConfigVersion << "\n"
      << "store_id: " << FormatId(c.store_id) << "\n"
      << "block_size: " << c.block_size << "\n"
      << "created: " << c.created << "\n"
      << "lsi_cap: " << c.lsi_cap << "\n"
      << "free_floor: " << c.free_floor << "\n";
  return out.str();
}

// `*have_caps` tells whether the file names both caps (stores made before
// eviction existed do not).
Status ParseConfig(const std::string& path, const std::string& text, StoreConfig* c,
                   bool* have_caps = nullptr) {
  std::istringstream in(text);
  std::string line;
  int caps = 0;
  bool format_ok = false;
  bool have_id = false;
  bool have_block_size = false;
  auto bad = [&](const std::string& why) { return Status::Corruption(path + ": " + why); };
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t colon = line.find(": ");
    if (colon == std::string::npos) return bad("malformed line '" + line + "'");
    std::string field = line.substr(0, colon);
    std::string value = line.substr(colon + 2);
    if (field == "format") {
      LSIFS_RETURN_IF_ERROR(
          CheckFormatLine(value, kConfigFormat, kConfigVersion, "store configuration " + path));
      format_ok = true;
    } else if (field == "store_id") {
      auto id = ParseId(value);
      if (!id) return bad("bad store_id");
      c->store_id = *id;
      have_id = true;
    } else if (field == "block_size") {
      uint32_t bs = 0;
      if (!ParseBlockSize(value, &bs).ok()) return bad("bad block_size '" + value + "'");
      c->block_size = bs;
      have_block_size = true;
    } else if (field == "created") {
      uint64_t created = 0;
      if (!ParseUnsigned(value, "created", 0, INT64_MAX, &created).ok()) {
        return bad("bad created '" + value + "'");
      }
      c->created = static_cast<int64_t>(created);
    } else if (field == "lsi_cap" || field == "free_floor") {
      uint64_t n = 0;
      if (!ParseByteSize(value, &n).ok()) return bad("bad " + field + " '" + value + "'");
      (field == "lsi_cap" ? c->lsi_cap : c->free_floor) = n;
      ++caps;
    }
  }
  if (have_caps != nullptr) *have_caps = caps == 2 && c->lsi_cap != 0;
  if (!format_ok || !have_id || !have_block_size) return bad("incomplete store configuration");
  return Status::Ok();
}

bool IsEmptyDirectory(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return false;
  bool empty = true;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

void RemoveTree(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d != nullptr) {
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      std::string child = path + "/" + n;
      struct stat st;
      if (::lstat(child.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        RemoveTree(child);
      } else {
        ::unlink(child.c_str());
      }
    }
    ::closedir(d);
  }
  ::rmdir(path.c_str());
}

Status MakeDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0) return Status::FromErrno("mkdir " + path, errno);
  return Status::Ok();
}

// Caps that suit the disk the store is made on: LSIs may use a quarter of it,
// and eviction keeps a twentieth of it (at most 8 GiB) free.
void ChooseCaps(const std::string& dir, StoreConfig* c) {
  struct statvfs fs;
  uint64_t disk = 64ull << 30;
  if (::statvfs(dir.c_str(), &fs) == 0) disk = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize;
  constexpr uint64_t kMiB = 1ull << 20;
  if (c->lsi_cap == 0) c->lsi_cap = std::max<uint64_t>(disk / 4 / kMiB, 256) * kMiB;
  if (c->free_floor == 0) c->free_floor = std::min<uint64_t>(disk / 20 / kMiB, 8192) * kMiB;
}

// Keys, the access logs (every extension's reads) and the read counters
// are for the store's owner alone; the rest is sealed or public facts.
mode_t SubdirMode(const std::string& sub) {
  return sub == "keys" || sub == "db" || sub == "run" ? 0700 : 0755;
}

Status BuildStore(const std::string& dir, const StoreConfig& config, bool site) {
  for (const char* sub : kSubdirs) LSIFS_RETURN_IF_ERROR(MakeDir(dir + "/" + sub, SubdirMode(sub)));
  if (!site) {
    KeyInfo provider;
    provider.kind = KeyKind::kProvider;
    provider.name = "provider";
    provider.id = RandomU64NonZero();
    SecretKey key = SecretKey::Random();
    LSIFS_RETURN_IF_ERROR(WriteKeyFile(dir + "/tmp", dir + "/provider.key", provider, key));
  }

  leveldb::Options options;
  options.create_if_missing = true;
  options.error_if_exists = true;
  leveldb::DB* db = nullptr;
  leveldb::Status ls = leveldb::DB::Open(options, dir + "/db", &db);
  if (!ls.ok()) return Status::IOError("creating the co-access database: " + ls.ToString());
  ls = db->Put(leveldb::WriteOptions(), "meta/format", "1");
  delete db;
  if (!ls.ok()) return Status::IOError("writing the co-access database: " + ls.ToString());

  std::string text = FormatConfig(config);
  return WriteFileAtomically(dir + "/tmp", dir + "/config", AsBytes(text), 0644, false);
}

}  // namespace

Status ParseByteSize(const std::string& text, uint64_t* bytes) {
  size_t pos = 0;
  unsigned long long n = 0;
  // stoull would take " 5" and wrap "-5" around.
  if (text.empty() || text[0] < '0' || text[0] > '9') {
    return Status::InvalidArgument("'" + text + "' is not a size (try 4096, 64K, 1M, 10G)");
  }
  try {
    n = std::stoull(text, &pos, 10);
  } catch (...) {
    return Status::InvalidArgument("'" + text + "' is not a size (try 4096, 64K, 1M, 10G)");
  }
  std::string unit = text.substr(pos);
  uint64_t mult = 1;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "K" || unit == "KiB" || unit == "k") {
    mult = 1ull << 10;
  } else if (unit == "M" || unit == "MiB") {
    mult = 1ull << 20;
  } else if (unit == "G" || unit == "GiB") {
    mult = 1ull << 30;
  } else if (unit == "T" || unit == "TiB") {
    mult = 1ull << 40;
  } else {
    return Status::InvalidArgument(
        "'" + text + "': unknown size unit '" + unit +
        "' (use K, M, G, T or KiB, MiB, GiB, TiB: powers of 1024; bits are for bandwidths only)");
  }
  if (n > UINT64_MAX / mult) return Status::InvalidArgument("'" + text + "' is too large");
  *bytes = n * mult;
  return Status::Ok();
}

Status ParseBlockSize(const std::string& text, uint32_t* block_size) {
  uint64_t n = 0;
  LSIFS_RETURN_IF_ERROR(ParseByteSize(text, &n));
  if (!IsValidBlockSize(n)) {
    return Status::InvalidArgument("block size " + text +
                                   " is not a power of two from 4K to 1M (default 64K)");
  }
  *block_size = static_cast<uint32_t>(n);
  return Status::Ok();
}

Store::Store(std::string root, StoreConfig config)
    : root_(std::move(root)), config_(config), keyring_(root_ + "/keys", root_ + "/tmp") {}

Status Store::Init(const std::string& root, StoreConfig* config) {
  return Create(root, config, /*site=*/false);
}

Status Store::InitSite(const std::string& root, const StoreConfig& region) {
  StoreConfig config = region;
  return Create(root, &config, /*site=*/true);
}

Status Store::Create(const std::string& root, StoreConfig* config, bool site) {
  if (root.empty()) return Status::InvalidArgument("no store path given");
  const uint32_t block_size = config->block_size;
  if (!IsValidBlockSize(block_size)) {
    return Status::InvalidArgument("block size must be a power of two from 4K to 1M");
  }
  std::string path = root;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  // A site's folder may hold what its operator put there first: its key
  // (keys/) and TLS material (tls/), and what an interrupted first mount
  // made; the replica is laid around them.
  const bool fill_in = site && PathExists(path) && !IsEmptyDirectory(path);
  if (fill_in) {
    for (const std::string& n : ListFileNames(path)) {
      const bool layout = n == "tls" || std::find(std::begin(kSubdirs), std::end(kSubdirs), n) !=
                                            std::end(kSubdirs);
      if (!layout) {
        return Status::Exists(path + " holds " + n +
                              ": a site's folder holds only keys/ and tls/ before its first mount");
      }
    }
  } else if (PathExists(path) && !IsEmptyDirectory(path)) {
    return Status::Exists(path + " already exists and is not empty; choose a new path");
  }
  StoreConfig c = *config;
  if (!site || c.store_id == 0) c.store_id = RandomU64NonZero();
  c.created = static_cast<int64_t>(std::time(nullptr));
  ChooseCaps(DirName(path), &c);

  // Build beside the destination and rename into place, so that a failure
  // or crash never leaves a half-made store under the user's name. What a
  // crashed init left there is swept first.
  const std::string prefix = path.substr(path.find_last_of('/') + 1) + ".lsifs-init.";
  if (DIR* d = ::opendir(DirName(path).c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.rfind(prefix, 0) != 0) continue;
      long pid = std::strtol(n.c_str() + prefix.size(), nullptr, 10);
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
        RemoveTree(DirName(path) + "/" + n);
      }
    }
    ::closedir(d);
  }
  std::string building = path + ".lsifs-init." + std::to_string(::getpid());
  RemoveTree(building);
  Status s = MakeDir(building, 0755);
  if (s.ok()) s = BuildStore(building, c, site);
  if (s.ok() && fill_in) {
    // What is there stays; the rest moves in, the config last: it makes
    // the folder a store.
    for (const std::string& n : ListFileNames(building)) {
      if (n == "config") continue;
      if (PathExists(path + "/" + n)) {
        RemoveTree(building + "/" + n);
      } else if (::rename((building + "/" + n).c_str(), (path + "/" + n).c_str()) != 0) {
        s = Status::FromErrno("rename to " + path + "/" + n, errno);
        break;
      }
    }
    if (s.ok() && ::rename((building + "/config").c_str(), (path + "/config").c_str()) != 0) {
      s = Status::FromErrno("rename to " + path + "/config", errno);
    }
    if (s.ok()) {
      RemoveTree(building);
      s = SyncDirectory(path);
    }
  } else if (s.ok() && ::rename(building.c_str(), path.c_str()) != 0) {
    s = Status::FromErrno("rename to " + path, errno);
  }
  if (!s.ok()) {
    RemoveTree(building);
    return s;
  }
  LSIFS_RETURN_IF_ERROR(SyncDirectory(DirName(path)));
  *config = c;
  return Status::Ok();
}

Status Store::Open(const std::string& root, std::unique_ptr<Store>* store) {
  if (root.empty()) {
    return Status::InvalidArgument("no store given: pass -s STORE or set LSIFS_STORE");
  }
  std::string text;
  Status s = ReadWholeFile(root + "/config", 64 * 1024, &text);
  if (s.IsNotFound()) {
    return Status::NotFound(
        root + " is not an lsifs store (no config); create one with: lsictl init " + root);
  }
  LSIFS_RETURN_IF_ERROR(s);
  StoreConfig config;
  bool have_caps = false;
  LSIFS_RETURN_IF_ERROR(ParseConfig(root + "/config", text, &config, &have_caps));
  store->reset(new Store(root, config));
  // Folders and settings added since the store was made; private folders
  // of stores made before they were private are closed now.
  for (const char* sub : kSubdirs) {
    std::string path = root + "/" + sub;
    mode_t mode = SubdirMode(sub);
    struct stat st;
    if (::mkdir(path.c_str(), mode) != 0 && mode == 0700 && ::stat(path.c_str(), &st) == 0 &&
        (st.st_mode & 077) != 0 && st.st_uid == ::geteuid()) {
      ::chmod(path.c_str(), mode);
    }
  }
  if (!have_caps) {
    StoreConfig chosen = config;
    chosen.lsi_cap = 0;
    chosen.free_floor = 0;
    ChooseCaps(root, &chosen);
    LSIFS_RETURN_IF_ERROR((*store)->UpdateCaps(chosen.lsi_cap, chosen.free_floor));
  }
  (*store)->SweepTemporaries();
  return Status::Ok();
}

Status Store::UpdateCaps(uint64_t lsi_cap, uint64_t free_floor) {
  if (lsi_cap == 0) {
    return Status::InvalidArgument("an LSI cap of 0 would leave no room for any LSI");
  }
  StoreConfig c = config_;
  c.lsi_cap = lsi_cap;
  c.free_floor = free_floor;
  std::string text = FormatConfig(c);
  LSIFS_RETURN_IF_ERROR(
      WriteFileAtomically(tmp_dir(), config_path(), AsBytes(text), 0644, /*replace=*/true));
  config_ = c;
  return Status::Ok();
}

void Store::CurrentCaps(uint64_t* lsi_cap, uint64_t* free_floor) const {
  StoreConfig c = config_;
  std::string text;
  bool have_caps = false;
  if (ReadWholeFile(config_path(), 64 * 1024, &text).ok() &&
      ParseConfig(config_path(), text, &c, &have_caps).ok() && have_caps) {
    *lsi_cap = c.lsi_cap;
    *free_floor = c.free_floor;
    return;
  }
  *lsi_cap = config_.lsi_cap;
  *free_floor = config_.free_floor;
}

std::string Store::snapshot_map_path(const std::string& volume, uint64_t id) const {
  return volume_dir(volume) + "/" + FormatId(id) + ".snap";
}

std::string Store::snapshot_data_path(const std::string& volume, uint64_t id) const {
  return volume_dir(volume) + "/" + FormatId(id) + ".data";
}

std::string Store::site_snapshot_path(const std::string& volume, uint64_t id) const {
  return volume_dir(volume) + "/" + FormatId(id) + ".site";
}

Store::SiteTls Store::SiteTlsPaths(const std::string& site_dir, const std::string& extension) {
  const std::string tls = site_dir + "/tls/";
  return {tls + extension + ".crt", tls + extension + ".key", tls + "ca.crt"};
}

std::vector<std::string> Store::SiteTlsExtensions(const std::string& site_dir) {
  std::vector<std::string> out;
  for (const std::string& name : ListFileNames(site_dir + "/tls")) {
    const size_t dot = name.size() > 4 ? name.size() - 4 : 0;
    if (dot != 0 && name.compare(dot, 4, ".crt") == 0 && name != "ca.crt") {
      out.push_back(name.substr(0, dot));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Store::snapshot_kept_path(const std::string& volume, uint64_t id) const {
  return volume_dir(volume) + "/" + FormatId(id) + ".kept";
}

std::string Store::layer_path(uint64_t layer_id) const {
  return layers_dir() + "/" + FormatId(layer_id) + ".layer";
}

std::string Store::manifest_path(uint64_t lsi_id) const {
  return lsi_dir() + "/" + FormatId(lsi_id) + ".lsi";
}

std::string Store::site_evicted_path(uint64_t lsi_id) const {
  return lsi_dir() + "/" + FormatId(lsi_id) + ".evicted";
}

std::string Store::tombstone_path(uint64_t lsi_id) const {
  return lsi_dir() + "/" + FormatId(lsi_id) + ".dropped";
}

std::string Store::deliveries_path(const std::string& extension) const {
  return catalog_dir() + "/" + extension + ".deliveries";
}

std::string Store::deliveries_lock_path(const std::string& extension) const {
  return catalog_dir() + "/" + extension + ".lock";
}

std::string Store::spill_path(uint64_t lsi_id, const std::string& extension) const {
  return run_dir() + "/" + FormatId(lsi_id) + "." + extension + ".spill";
}

std::string Store::counters_path(uint64_t lsi_id, const std::string& extension) const {
  return run_dir() + "/" + FormatId(lsi_id) + "." + extension + ".counters.json";
}

std::string Store::claim_path(uint64_t n) const {
  // NAME.PID.N.tmp, the temporaries' pattern, so a dead process's claims go.
  return tmp_dir() + "/claim." + std::to_string(::getpid()) + "." + std::to_string(n) + ".tmp";
}

bool Store::ParseFileName(const std::string& name, StoreFile* kind, uint64_t* id,
                          std::string* extension) {
  auto ends_with = [&](const char* suffix) {
    size_t n = std::strlen(suffix);
    return name.size() >= n && name.compare(name.size() - n, n, suffix) == 0;
  };
  auto id_then = [&](const char* suffix, StoreFile k) {
    if (name.size() != 16 + std::strlen(suffix) || !ends_with(suffix)) return false;
    auto parsed = ParseId(name.substr(0, 16));
    if (!parsed) return false;
    *kind = k;
    *id = *parsed;
    return true;
  };
  if (id_then(".lsi", StoreFile::kManifest) || id_then(".dropped", StoreFile::kTombstone) ||
      id_then(".layer", StoreFile::kLayer) || id_then(".evicted", StoreFile::kEvicted)) {
    return true;
  }
  if (ends_with(".deliveries") && name.size() > 11) {
    *kind = StoreFile::kDeliveries;
    *id = 0;
    if (extension) *extension = name.substr(0, name.size() - 11);
    return true;
  }
  if (name.rfind("claim.", 0) == 0 && ends_with(".tmp")) {
    char* end = nullptr;
    unsigned long long pid = std::strtoull(name.c_str() + 6, &end, 10);
    if (pid == 0 || *end != '.') return false;
    *kind = StoreFile::kClaim;
    *id = pid;
    return true;
  }
  return false;
}

std::vector<uint64_t> Store::ListIds(StoreFile kind) const {
  std::vector<uint64_t> ids;
  const std::string dir = kind == StoreFile::kLayer ? layers_dir() : lsi_dir();
  if (kind != StoreFile::kLayer && kind != StoreFile::kManifest && kind != StoreFile::kTombstone) {
    return ids;
  }
  for (const auto& n : ListFileNames(dir)) {
    StoreFile found;
    uint64_t id = 0;
    if (ParseFileName(n, &found, &id) && found == kind) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

Status Store::LoadProviderKey(SecretKey* key) const {
  KeyInfo info;
  LSIFS_RETURN_IF_ERROR(ReadKeyFile(provider_key_path(), &info, key));
  if (info.kind != KeyKind::kProvider) {
    return Status::Corruption(provider_key_path() + ": not a provider key");
  }
  return Status::Ok();
}

int Store::SweepTemporaries() const {
  // Temporaries are named NAME.PID.N.tmp by AtomicFileWriter.
  int removed = 0;
  DIR* d = ::opendir(tmp_dir().c_str());
  if (d == nullptr) return 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() < 4 || n.compare(n.size() - 4, 4, ".tmp") != 0) continue;
    size_t end = n.rfind('.', n.size() - 5);  // before N
    if (end == std::string::npos) continue;
    size_t start = n.rfind('.', end - 1);  // before PID
    if (start == std::string::npos) continue;
    long pid = std::strtol(n.c_str() + start + 1, nullptr, 10);
    if (pid <= 0) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      if (::unlink((tmp_dir() + "/" + n).c_str()) == 0) ++removed;
    }
  }
  ::closedir(d);
  return removed;
}

// ---- claims ------------------------------------------------------------

Status Claim::Begin(const Store& store, std::unique_ptr<Claim>* out) {
  static std::atomic<uint64_t> claims{0};
  std::unique_ptr<Claim> claim(new Claim());
  std::string path = store.claim_path(claims.fetch_add(1));
  LSIFS_RETURN_IF_ERROR(File::CreateExclusive(path, 0600, &claim->file_));
  claim->path_ = path;
  *out = std::move(claim);
  return Status::Ok();
}

Claim::~Claim() {
  file_.Close();
  if (!path_.empty()) ::unlink(path_.c_str());
}

Status Claim::Add(uint64_t id) {
  return file_.WriteAll(AsBytes(FormatId(id) + "\n"));
}

bool Claim::LiveIds(const Store& store, std::set<uint64_t>* ids) {
  bool complete = true;
  for (const auto& n : ListFileNames(store.tmp_dir())) {
    StoreFile kind;
    uint64_t pid = 0;
    if (!Store::ParseFileName(n, &kind, &pid) || kind != StoreFile::kClaim) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) continue;
    std::string text;
    if (!ReadWholeFile(store.tmp_dir() + "/" + n, 16 << 20, &text).ok()) {
      complete = false;  // cannot tell what it claims
      continue;
    }
    for (size_t at = 0; at + 16 <= text.size(); at += 17) {
      if (auto id = ParseId(std::string_view(text).substr(at, 16))) ids->insert(*id);
    }
  }
  return complete;
}

}  // namespace lsifs
