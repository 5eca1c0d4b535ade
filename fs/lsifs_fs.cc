#include "fs/lsifs_fs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>
#include <string_view>

#include "core/lsi/manifest.h"
#include "core/util/file.h"
#include "core/util/hex.h"
#include "core/util/json.h"

namespace lsifs {
namespace {

// Content never changes under a name for long: LSIs are immutable, and the
// volume alias moves only when a newer LSI is delivered.
constexpr double kImageAttrTimeout = 3600.0;
constexpr double kDirTimeout = 1.0;
constexpr size_t kMaxReadSize = 1 << 20;

// One open control file: its text, fixed at open so reads are consistent.
struct ControlHandle {
  std::string text;
};

int ErrnoOf(const Status& s) {
  switch (s.code()) {
    case Status::Code::kNotFound:
      return ENOENT;
    case Status::Code::kPermission:
      return EACCES;
    default:
      return EIO;
  }
}

// Whether a manifest read again is the LSI that was listed: equal but for
// the key a rotation may have rekeyed it with.
bool SameLsi(const Manifest& now, Manifest listed) {
  listed.key_id = now.key_id;
  return now == listed;
}

}  // namespace

LsiFs::LsiFs(const Catalog& catalog, Origin& origin, ExtensionKeys keys, FsOptions options)
    : catalog_(catalog),
      store_(catalog.store()),
      origin_(origin),
      extension_(keys.info.name),
      keys_(std::make_shared<const ExtensionKeys>(std::move(keys))),
      options_(std::move(options)),
      mounted_at_(static_cast<int64_t>(std::time(nullptr))) {
  if (!options_.image.log) options_.image.log = options_.log;
  keys_stamp_ = KeyFilesStamp();  // of the keys just given (read by the caller)
  std::lock_guard<std::mutex> lock(catalog_mu_);
  Refresh();
}

std::shared_ptr<const ExtensionKeys> LsiFs::Keys() const {
  std::lock_guard<std::mutex> lock(keys_mu_);
  return keys_;
}

std::string LsiFs::KeyFilesStamp() const {
  std::string stamp;
  for (const std::string& path :
       {store_.keyring().PathFor(extension_), store_.keyring().NextPathFor(extension_)}) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      stamp += "-;";
      continue;
    }
    stamp += std::to_string(st.st_ino) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
             std::to_string(st.st_mtim.tv_nsec) + ";";
  }
  return stamp;
}

Status LsiFs::LoadKeys() {
  auto keys = std::make_shared<ExtensionKeys>();
  const std::string stamp = KeyFilesStamp();
  LSIFS_RETURN_IF_ERROR(store_.keyring().LoadKeys(extension_, keys.get()));
  std::string line = "keys read again: key " + FormatId(keys->info.id);
  if (keys->has_next)
    line += ", next key " + FormatId(keys->next_info.id) + " (rotation under way)";
  {
    std::lock_guard<std::mutex> lock(keys_mu_);
    keys_ = std::move(keys);
    keys_stamp_ = stamp;
  }
  Log(line);
  return Status::Ok();
}

std::shared_ptr<const ExtensionKeys> LsiFs::FreshKeys() {
  // Two stats: the key files changed (a rotation began, went on or ended)
  // exactly when their inode or time did. A file made with a key that is
  // gone for good does not make the keys be read again and again.
  bool changed;
  {
    std::lock_guard<std::mutex> lock(keys_mu_);
    changed = KeyFilesStamp() != keys_stamp_;
  }
  if (changed) (void)LoadKeys();
  return Keys();
}

template <typename Use>
Status LsiFs::WithKeys(Use use) {
  return FreshKeys()->WithEither(use);
}

Status LsiFs::ReloadKeys() {
  LSIFS_RETURN_IF_ERROR(LoadKeys());
  // Open images are pinned through the manifest file they opened, which a
  // rotation replaced: pin the new one, so that a drop still waits for them.
  // Each entry under its own lock only: pinning reads a file, and may wait
  // a moment for a drop; listings must not wait behind that.
  std::vector<Entry*> entries;
  {
    std::lock_guard<std::mutex> lock(catalog_mu_);
    for (auto& e : entries_) entries.push_back(e.get());
  }
  const auto keys = Keys();
  for (Entry* e : entries) {
    std::unique_ptr<LsiPin> stale;
    {
      std::lock_guard<std::mutex> entry_lock(e->open_mu);
      if (!e->pin) continue;
      std::unique_ptr<LsiPin> pin;
      Status s = keys->WithEither([&](const KeyInfo& info, const SecretKey& key) {
        return catalog_.Pin(e->manifest.lsi_id, info, key, &pin);
      });
      if (!s.ok() || !SameLsi(pin->manifest(), e->manifest)) {
        stale = std::move(pin);  // dropped meanwhile, or damaged: the old pin stays
      } else {
        stale = std::move(e->pin);
        e->pin = std::move(pin);
      }
    }
    if (stale) catalog_.Unpin(std::move(stale));
  }
  return Status::Ok();
}

LsiFs::~LsiFs() {
  StopBackground();
}

void LsiFs::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

// Rereads the deliveries when the catalog changed. Called with catalog_mu_
// held.
void LsiFs::Refresh() {
  auto mtime_ns = [](const std::string& dir) -> int64_t {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) return -1;
    return st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec;
  };
  // Deliveries change the catalog folder; drops change the manifests' one.
  std::pair<int64_t, int64_t> mtimes{mtime_ns(store_.catalog_dir()), mtime_ns(store_.lsi_dir())};
  if (mtimes == scanned_mtimes_) return;
  scanned_mtimes_ = mtimes;

  DeliveryView view;
  Status s;
  if (!PathExists(store_.keyring().PathFor(extension_))) {
    // lsictl key delete: nothing is delivered any more (open images keep
    // serving until closed); not a record rolled back.
    if (reported_.insert("key deleted").second) {
      Log("the key of '" + extension_ + "' was deleted: no LSI is shown any more");
    }
    view.generation = generation_;
  } else {
    s = WithKeys([&](const KeyInfo& info, const SecretKey& key) {
      return catalog_.ReadDeliveries(info, key, &view);
    });
  }
  if (s.ok() && view.generation < generation_) {
    s = Status::Corruption("the delivery record went back from generation " +
                           std::to_string(generation_) + " to " + std::to_string(view.generation) +
                           " (rolled back?)");
  }
  if (!s.ok()) {
    // What was shown stays shown: it was authentic when listed.
    if (reported_.insert(s.message()).second) Log("catalog: " + s.message() + "; ignored");
    return;
  }
  generation_ = view.generation;
  std::set<uint64_t> delivered;
  std::map<std::string, size_t> previous_alias = std::move(alias_);
  alias_.clear();
  for (const Delivery& d : view.deliveries) {
    auto known = by_id_.find(d.lsi_id);
    if (known == by_id_.end()) {
      Manifest m;
      Status ms = WithKeys([&](const KeyInfo& info, const SecretKey& key) {
        return catalog_.ReadManifest(d.lsi_id, info, key, &m);
      });
      if (!ms.ok()) {
        if (reported_.insert(FormatId(d.lsi_id)).second) {
          Log("LSI " + FormatId(d.lsi_id) + " not shown: " + ms.message());
        }
        continue;
      }
      auto e = std::make_unique<Entry>();
      e->manifest = std::move(m);
      known = by_id_.emplace(d.lsi_id, entries_.size()).first;
      entries_.push_back(std::move(e));
    }
    delivered.insert(d.lsi_id);
    if (d.alias) alias_[entries_[known->second]->manifest.volume] = known->second;
  }
  for (auto& e : entries_) {
    bool listed = delivered.count(e->manifest.lsi_id) > 0;
    if (e->listed && !listed) {
      std::string id = FormatId(e->manifest.lsi_id);
      stale_names_.emplace_back(kByIdIno, id + ".img");
      stale_names_.emplace_back(kCtlIno, id);
      stale_names_.emplace_back(kCtlIno, id + ".json");
    }
    e->listed = listed;
  }
  for (const auto& [volume, index] : previous_alias) {
    auto now = alias_.find(volume);
    if (now == alias_.end() || now->second != index)
      stale_names_.emplace_back(kRootIno, volume + ".img");
  }
}

LsiFs::Entry* LsiFs::EntryOf(fuse_ino_t ino, Kind* kind) {
  if (ino < kFirstEntryIno) return nullptr;
  size_t index = (ino - kFirstEntryIno) / 3;
  *kind = static_cast<Kind>((ino - kFirstEntryIno) % 3);
  std::lock_guard<std::mutex> lock(catalog_mu_);
  return index < entries_.size() ? entries_[index].get() : nullptr;
}

std::vector<std::pair<std::string, fuse_ino_t>> LsiFs::List(fuse_ino_t dir) {
  std::vector<std::pair<std::string, fuse_ino_t>> out;
  std::lock_guard<std::mutex> lock(catalog_mu_);
  Refresh();
  if (dir == kRootIno) {
    out.emplace_back("by-id", kByIdIno);
    out.emplace_back(".lsifs", kCtlIno);
    for (const auto& [volume, i] : alias_)
      out.emplace_back(volume + ".img", InoOf(i, Kind::kImage));
  } else if (dir == kByIdIno) {
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i]->listed) {
        out.emplace_back(FormatId(entries_[i]->manifest.lsi_id) + ".img", InoOf(i, Kind::kImage));
      }
    }
  } else if (dir == kCtlIno) {
    out.emplace_back("mount", kCtlMountIno);
    out.emplace_back("mount.json", kCtlMountJsonIno);
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (!entries_[i]->listed) continue;
      std::string id = FormatId(entries_[i]->manifest.lsi_id);
      out.emplace_back(id, InoOf(i, Kind::kStatsText));
      out.emplace_back(id + ".json", InoOf(i, Kind::kStatsJson));
    }
  }
  return out;
}

fuse_ino_t LsiFs::FindName(fuse_ino_t parent, const std::string& name) {
  std::lock_guard<std::mutex> lock(catalog_mu_);
  Refresh();
  // The entry of a listed LSI named by its id, spelled as List spells it.
  auto listed_id = [&](std::string_view hex) -> std::optional<size_t> {
    std::optional<uint64_t> id = ParseId(hex);
    if (!id || FormatId(*id) != hex) return std::nullopt;
    auto it = by_id_.find(*id);
    if (it == by_id_.end() || !entries_[it->second]->listed) return std::nullopt;
    return it->second;
  };
  const std::string_view n = name;
  auto strip = [&](std::string_view suffix) -> std::optional<std::string_view> {
    if (n.size() <= suffix.size() || n.substr(n.size() - suffix.size()) != suffix) {
      return std::nullopt;
    }
    return n.substr(0, n.size() - suffix.size());
  };
  if (parent == kRootIno) {
    if (n == "by-id") return kByIdIno;
    if (n == ".lsifs") return kCtlIno;
    if (auto volume = strip(".img")) {
      auto it = alias_.find(std::string(*volume));
      if (it != alias_.end()) return InoOf(it->second, Kind::kImage);
    }
  } else if (parent == kByIdIno) {
    if (auto id = strip(".img")) {
      if (auto i = listed_id(*id)) return InoOf(*i, Kind::kImage);
    }
  } else if (parent == kCtlIno) {
    if (n == "mount") return kCtlMountIno;
    if (n == "mount.json") return kCtlMountJsonIno;
    if (auto id = strip(".json")) {
      if (auto i = listed_id(*id)) return InoOf(*i, Kind::kStatsJson);
    } else if (auto i = listed_id(n)) {
      return InoOf(*i, Kind::kStatsText);
    }
  }
  return 0;
}

fuse_ino_t LsiFs::LookupName(fuse_ino_t parent, const std::string& name) {
  // Found directly, never by a scan of the listing: `ls -l by-id` looks up
  // every name, and a scan made that quadratic (2.4 s for 5,000 images).
  if (fuse_ino_t ino = FindName(parent, name); ino != 0) return ino;
  if (parent == kByIdIno && name.size() == 20 && name.compare(16, 4, ".img") == 0) {
    // Another extension's LSI is answered as one that does not exist; the
    // log says why, once, so that an operator can tell.
    auto id = ParseId(name.substr(0, 16));
    Manifest m;
    if (id && PeekManifest(store_.manifest_path(*id), &m).ok() && m.extension != extension_) {
      bool first;
      {
        std::lock_guard<std::mutex> lock(catalog_mu_);
        first = reported_.insert("refused " + name).second;
      }
      if (first) {
        Log("refused: LSI " + name.substr(0, 16) + " was made for extension '" + m.extension +
            "', this mount serves '" + extension_ + "'");
      }
    }
  }
  return 0;
}

bool LsiFs::FillAttr(fuse_ino_t ino, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = ino;
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
  st->st_mtime = st->st_ctime = st->st_atime = mounted_at_;
  if (ino == kRootIno || ino == kByIdIno || ino == kCtlIno) {
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2;
    return true;
  }
  if (IsMountFile(ino)) {
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    return true;
  }
  Kind kind;
  Entry* e = EntryOf(ino, &kind);
  if (e == nullptr) return false;
  st->st_nlink = 1;
  st->st_mode = S_IFREG | 0444;
  st->st_mtime = st->st_ctime = st->st_atime = e->manifest.created;
  if (kind == Kind::kImage) {
    st->st_size = static_cast<off_t>(e->manifest.volume_size);
    st->st_blksize = static_cast<blksize_t>(e->manifest.block_size);
    st->st_blocks = static_cast<blkcnt_t>((e->manifest.volume_size + 511) / 512);
  }
  // Control files report size 0 and are read with direct_io, like /proc.
  return true;
}

Status LsiFs::OpenImage(Entry& e, std::shared_ptr<LsiImage>* out) {
  std::lock_guard<std::mutex> lock(e.open_mu);
  if (stopping_) return Status::Unavailable("the mount is stopping");
  // Not delivered any more: no new open, even through a name the kernel
  // still caches (handles already open keep reading).
  if (!e.listed) return Status::NotFound("LSI " + FormatId(e.manifest.lsi_id) + " was dropped");
  if (!e.image) {
    // The pin reads the manifest again through the file it locks: what is
    // opened must be what was listed.
    // One set of keys for the manifest and the layers: during a rotation a
    // layer may be under the next key while its manifest is not yet.
    const auto keys = FreshKeys();
    std::unique_ptr<LsiPin> pin;
    Status s = keys->WithEither([&](const KeyInfo& info, const SecretKey& key) {
      return catalog_.Pin(e.manifest.lsi_id, info, key, &pin);
    });
    if (s.ok() && !SameLsi(pin->manifest(), e.manifest)) {
      s = Status::Corruption("its manifest changed after it was listed (replaced?)");
    }
    std::unique_ptr<LsiImage> img;
    if (s.ok()) s = LsiImage::Open(store_, pin->manifest(), *keys, origin_, options_.image, &img);
    if (!s.ok()) {
      Log("LSI " + FormatId(e.manifest.lsi_id) + " cannot be opened: " + s.message());
      catalog_.Unpin(std::move(pin));
      return s;
    }
    e.image = std::move(img);
    e.pin = std::move(pin);
  }
  if (!e.in_session) {
    // A restore session starts at the first open (no read is in flight).
    int handle = options_.recorder == nullptr
                     ? -1
                     : options_.recorder->Begin(extension_, e.manifest.volume, e.manifest.lsi_id,
                                                e.manifest.snapshot);
    e.image->StartSession(options_.recorder, handle);
    if (options_.successors) {
      e.image->SetSuccessors(options_.successors(extension_, e.manifest.volume));
    }
    e.in_session = true;
  }
  ++e.open_count;
  *out = e.image;
  return Status::Ok();
}

bool LsiFs::StopIfIdle(std::vector<std::string>* open_images) {
  open_images->clear();
  std::lock_guard<std::mutex> lock(catalog_mu_);
  // Every entry's lock is held until the decision is made, so that no open
  // slips in between the count and the refusal of new ones.
  std::vector<std::unique_lock<std::mutex>> held;
  for (size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = *entries_[i];
    held.emplace_back(e.open_mu);
    if (e.open_count == 0) continue;
    std::string name = "by-id/" + FormatId(e.manifest.lsi_id) + ".img";
    auto alias = alias_.find(e.manifest.volume);
    if (alias != alias_.end() && alias->second == i) name = e.manifest.volume + ".img";
    open_images->push_back(name);
  }
  if (open_images->empty()) stopping_ = true;
  return open_images->empty();
}

void LsiFs::ReleaseImage(Entry& e) {
  std::lock_guard<std::mutex> lock(e.open_mu);
  if (--e.open_count == 0) e.last_close = std::chrono::steady_clock::now();
}

void LsiFs::MaybeEndSession(Entry& e, bool force) {
  // Released after the entry's lock: an image's destructor joins its
  // background fetches, which may wait on the origin, and nothing else
  // (an open, a stop) must wait behind that.
  std::shared_ptr<LsiImage> released;
  std::unique_ptr<LsiPin> unpinned;
  std::unique_lock<std::mutex> lock(e.open_mu);
  if (!e.image || (e.open_count > 0 && !force)) return;
  bool idle = std::chrono::steady_clock::now() - e.last_close >= options_.session_idle;
  if (!force && !idle && e.listed) return;
  if (e.in_session) {
    // What the session counted stays shown until the next one starts.
    e.released_session = e.image->session_counters().Values();
    if (options_.recorder != nullptr) {
      options_.recorder->End(e.image->session_handle(), e.released_session.reads);
    }
    e.image->EndSession();
    e.in_session = false;
  }
  if (e.open_count == 0) {
    // Idle images are released, and with them their pin: a drop that
    // waited for this mount completes now.
    SaveCounters(e.manifest.lsi_id, *e.image);
    e.released_lsi = e.image->lsi_counters().Values();
    released = std::move(e.image);
    unpinned = std::move(e.pin);
  }
  lock.unlock();
  released.reset();  // the image first: its layer files close before the pin goes
  if (unpinned) catalog_.Unpin(std::move(unpinned));
}

void LsiFs::UpdateSuccessors(Entry& e) {
  if (!options_.successors) return;
  std::lock_guard<std::mutex> lock(e.open_mu);
  if (!e.image || !e.in_session) return;
  // A table built since the session began, or rebuilt after a model change.
  auto table = options_.successors(extension_, e.manifest.volume);
  if (table != e.image->successors()) e.image->SetSuccessors(std::move(table));
}

void LsiFs::EndAllSessions() {
  std::vector<Entry*> all;
  {
    std::lock_guard<std::mutex> lock(catalog_mu_);
    for (auto& e : entries_) all.push_back(e.get());
  }
  for (Entry* e : all) MaybeEndSession(*e, /*force=*/true);
}

std::string LsiFs::SessionText(Entry& e) {
  std::lock_guard<std::mutex> lock(e.open_mu);
  if (!e.in_session) return "none (starts at the next open)";
  AccessRecorder* r = options_.recorder;
  int h = e.image->session_handle();
  if (r == nullptr || !r->enabled() || h < 0) return "open, not recorded (recording is off)";
  uint32_t n = r->Number(h);
  return (n ? "#" + std::to_string(n) : std::string("(number pending)")) + " open, " +
         std::to_string(r->Events(h)) + " blocks recorded, " + std::to_string(r->Dropped(h)) +
         " dropped" + (e.open_count ? "" : ", idle");
}

void LsiFs::Metrics(MountMetrics* m) {
  *m = MountMetrics();
  m->extension = extension_;
  m->store = store_.root();
  m->mounted_at = mounted_at_;
  m->origin = options_.origin_description;
  {
    auto keys = Keys();
    m->key_id = keys->info.id;
    m->next_key_id = keys->has_next ? keys->next_info.id : 0;
  }
  {
    std::lock_guard<std::mutex> lock(catalog_mu_);
    for (const auto& e : entries_) {
      LsiMetrics l;
      l.lsi_id = e->manifest.lsi_id;
      l.volume = e->manifest.volume;
      std::shared_ptr<LsiImage> img;
      {
        std::lock_guard<std::mutex> entry_lock(e->open_mu);
        img = e->image;
        l.counters = e->released_lsi;
      }
      if (!e->listed && !img) continue;
      l.open = img != nullptr;
      l.session = SessionText(*e);
      if (img) l.counters = img->lsi_counters().Values();
      m->lsis.push_back(std::move(l));
    }
  }
  if (options_.recorder != nullptr && options_.recorder->enabled()) {
    m->recording = true;
    m->recorder = options_.recorder->Stats();
  }
  if (options_.image.cache != nullptr) {
    m->cache_capacity_bytes = options_.image.cache->capacity_bytes();
    m->cache_used_bytes = options_.image.cache->used_bytes();
  }
  if (options_.image.origin_waits != nullptr) {
    m->origin_waits = options_.image.origin_waits->Read();
  }
  if (options_.daemon_metrics) options_.daemon_metrics(m);
}

std::string LsiFs::ControlText(fuse_ino_t ino) {
  if (ino == kCtlMountJsonIno) {
    MountMetrics m;
    Metrics(&m);
    return RenderMountJson(m);
  }
  if (ino == kCtlMountIno) {
    MountMetrics m;
    Metrics(&m);
    return RenderStatusText(m);
  }
  Kind kind;
  Entry* e = EntryOf(ino, &kind);
  if (e == nullptr) return {};
  std::shared_ptr<LsiImage> img;
  {
    std::lock_guard<std::mutex> lock(e->open_mu);
    img = e->image;
  }
  CounterValues lsi, session;
  std::pair<uint64_t, uint64_t> local_base{0, 0};
  if (img) {
    lsi = img->lsi_counters().Values();
    session = img->session_counters().Values();
    local_base = img->LocalBaseBlocks();
  } else {
    std::lock_guard<std::mutex> lock(e->open_mu);
    lsi = e->released_lsi;  // what the last session left, until the next open
    session = e->released_session;
  }
  const Manifest& m = e->manifest;
  std::string session_text = SessionText(*e);
  if (kind == Kind::kStatsJson) {
    JsonWriter j;
    j.BeginObject()
        .Field("lsi", FormatId(m.lsi_id))
        .Field("volume", m.volume)
        .Field("snapshot", FormatId(m.snapshot))
        .Field("extension", m.extension)
        .Field("layers", static_cast<uint64_t>(m.layers.size()))
        .Field("open", img != nullptr)
        .Field("session", session_text)
        .Field("local_base_blocks", local_base.first)
        .Field("base_blocks", local_base.second);
    j.Key("lsi_counters");
    std::string out = j.str() + lsi.ToJson() + ",\"session_counters\":" + session.ToJson() + "}";
    return out + "\n";
  }
  std::string out = "lsi:               " + FormatId(m.lsi_id) +
                    "\nvolume:            " + m.volume +
                    "\nsnapshot:          " + FormatId(m.snapshot) +
                    "\nlayers:            " + std::to_string(m.layers.size()) +
                    "\nstate:             " + (img ? "open" : "closed") +
                    "\nlocal base blocks: " + std::to_string(local_base.first) + " of " +
                    std::to_string(local_base.second) + " (fetched, or hydrated)" +
                    "\nsession:           " + session_text + "\n";
  out += "\n" + CounterValues::Table(session, lsi);
  return out;
}

void LsiFs::SaveCounters(uint64_t lsi_id, LsiImage& image) {
  std::string json = image.lsi_counters().Values().ToJson() + "\n";
  // Not fsynced: counters are advisory, and a rename keeps them whole.
  std::string path = store_.counters_path(lsi_id, extension_);
  std::string tmp = path + ".tmp";
  File f;
  if (File::CreateExclusive(tmp, 0600, &f).ok() && f.WriteAll(AsBytes(json)).ok()) {
    ::rename(tmp.c_str(), path.c_str());
  } else {
    ::unlink(tmp.c_str());
  }
}

void LsiFs::SaveCounters() {
  std::vector<std::pair<uint64_t, std::shared_ptr<LsiImage>>> open;
  {
    std::lock_guard<std::mutex> lock(catalog_mu_);
    for (auto& e : entries_) {
      std::lock_guard<std::mutex> l(e->open_mu);
      if (e->image) open.emplace_back(e->manifest.lsi_id, e->image);
    }
  }
  for (const auto& [id, img] : open) SaveCounters(id, *img);
}

void LsiFs::StartBackground(fuse_session* session) {
  session_ = session;
  background_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(bg_mu_);
    for (uint64_t tick = 1; !bg_stop_; ++tick) {
      bg_cv_.wait_for(lock, std::chrono::milliseconds(250));
      lock.unlock();
      std::vector<Entry*> all;
      std::vector<std::pair<fuse_ino_t, std::string>> stale;
      {
        std::lock_guard<std::mutex> l(catalog_mu_);
        // Once a second whatever the folders' times say: two changes within
        // one timestamp tick must not go unseen.
        if (tick % 4 == 0) scanned_mtimes_ = {-1, -1};
        Refresh();  // notices dropped LSIs, whose sessions end now
        for (auto& e : entries_) all.push_back(e.get());
        stale.swap(stale_names_);
      }
      for (const auto& [parent, name] : stale) {
        // ENOENT: the kernel had not cached it.
        if (session_ != nullptr) {
          fuse_lowlevel_notify_inval_entry(session_, parent, name.c_str(), name.size());
        }
      }
      for (Entry* e : all) {
        MaybeEndSession(*e, false);
        UpdateSuccessors(*e);
      }
      if (tick % 4 == 0) SaveCounters();
      lock.lock();
    }
  });
}

void LsiFs::StopBackground() {
  {
    std::lock_guard<std::mutex> lock(bg_mu_);
    bg_stop_ = true;
  }
  bg_cv_.notify_all();
  if (background_.joinable()) background_.join();
}

// ---- FUSE operations -------------------------------------------------------

void LsiFs::OpInit(void* /*userdata*/, fuse_conn_info* conn) {
  // Many requests in flight: loop devices and VMs issue async direct I/O.
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  conn->want &=
      ~static_cast<unsigned>(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
}

void LsiFs::OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  LsiFs* self = Self(req);
  fuse_ino_t ino = self->LookupName(parent, name);
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  if (ino == 0 || !self->FillAttr(ino, &e.attr)) {
    // Cache the miss briefly only: a delivery may make the name appear.
    e.ino = 0;
    e.entry_timeout = 0.5;
    fuse_reply_entry(req, &e);
    return;
  }
  e.ino = ino;
  e.generation = 1;
  Kind kind;
  bool image = self->EntryOf(ino, &kind) != nullptr && kind == Kind::kImage;
  e.attr_timeout = image ? kImageAttrTimeout : kDirTimeout;
  // The volume alias moves to newer LSIs: revalidate root names quickly.
  e.entry_timeout = (parent == kByIdIno) ? kImageAttrTimeout : kDirTimeout;
  fuse_reply_entry(req, &e);
}

void LsiFs::OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st;
  if (!Self(req)->FillAttr(ino, &st)) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  Kind kind;
  bool image = Self(req)->EntryOf(ino, &kind) != nullptr && kind == Kind::kImage;
  fuse_reply_attr(req, &st, image ? kImageAttrTimeout : kDirTimeout);
}

void LsiFs::OpSetattr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) {
  fuse_reply_err(req, EROFS);
}

void LsiFs::OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino != kRootIno && ino != kByIdIno && ino != kCtlIno) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  fi->cache_readdir = 0;
  fuse_reply_open(req, fi);
}

void LsiFs::OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  LsiFs* self = Self(req);
  auto names = self->List(ino);
  names.insert(names.begin(), {{".", ino}, {"..", kRootIno}});
  std::string buf;
  for (size_t i = static_cast<size_t>(off); i < names.size(); ++i) {
    struct stat st;
    std::memset(&st, 0, sizeof st);
    st.st_ino = names[i].second;
    self->FillAttr(names[i].second, &st);
    size_t need = fuse_add_direntry(req, nullptr, 0, names[i].first.c_str(), nullptr, 0);
    if (buf.size() + need > size) break;
    size_t at = buf.size();
    buf.resize(at + need);
    fuse_add_direntry(req, buf.data() + at, need, names[i].first.c_str(), &st,
                      static_cast<off_t>(i + 1));
  }
  fuse_reply_buf(req, buf.data(), buf.size());
}

void LsiFs::OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  LsiFs* self = Self(req);
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
    fuse_reply_err(req, EROFS);
    return;
  }
  if (IsMountFile(ino)) {
    fi->fh = reinterpret_cast<uint64_t>(new ControlHandle{self->ControlText(ino)});
    fi->direct_io = 1;
    fuse_reply_open(req, fi);
    return;
  }
  Kind kind;
  Entry* e = self->EntryOf(ino, &kind);
  if (e == nullptr) {
    fuse_reply_err(req, ino < kFirstEntryIno ? EISDIR : ENOENT);
    return;
  }
  if (kind != Kind::kImage) {
    fi->fh = reinterpret_cast<uint64_t>(new ControlHandle{self->ControlText(ino)});
    fi->direct_io = 1;
    fuse_reply_open(req, fi);
    return;
  }
  std::shared_ptr<LsiImage> img;
  Status s = self->OpenImage(*e, &img);
  if (!s.ok()) {
    fuse_reply_err(req, ErrnoOf(s));
    return;
  }
  // The handle is the image itself: read() needs no lookup and no lock.
  fi->fh = reinterpret_cast<uint64_t>(img.get());
  fi->keep_cache = 1;  // immutable content
  // An interrupted open gets no release from the kernel: release it here.
  if (fuse_reply_open(req, fi) != 0) self->ReleaseImage(*e);
}

void LsiFs::OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Kind kind = Kind::kImage;
  if (IsMountFile(ino) || (ino >= kFirstEntryIno && (ino - kFirstEntryIno) % 3 != 0)) {
    kind = Kind::kStatsText;
  }
  if (kind != Kind::kImage) {
    const std::string& text = reinterpret_cast<ControlHandle*>(fi->fh)->text;
    size_t at = std::min(static_cast<size_t>(off), text.size());
    fuse_reply_buf(req, text.data() + at, std::min(size, text.size() - at));
    return;
  }
  auto* img = reinterpret_cast<LsiImage*>(fi->fh);
  // One reply buffer per worker thread, reused for every request.
  thread_local std::unique_ptr<uint8_t[]> buffer(new uint8_t[kMaxReadSize]);
  size = std::min(size, kMaxReadSize);
  size_t done = 0;
  Status s = img->Read(static_cast<uint64_t>(off), MutableByteSpan(buffer.get(), size), &done);
  if (!s.ok()) {
    fuse_reply_err(req, EIO);
    return;
  }
  fuse_reply_buf(req, reinterpret_cast<const char*>(buffer.get()), done);
}

void LsiFs::OpRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  LsiFs* self = Self(req);
  Kind kind = Kind::kImage;
  Entry* e = self->EntryOf(ino, &kind);
  if (IsMountFile(ino) || (e != nullptr && kind != Kind::kImage)) {
    delete reinterpret_cast<ControlHandle*>(fi->fh);
  } else if (e != nullptr) {
    self->ReleaseImage(*e);
  }
  fuse_reply_err(req, 0);
}

void LsiFs::OpStatfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs st;
  std::memset(&st, 0, sizeof st);
  st.f_bsize = 4096;
  st.f_frsize = 4096;
  st.f_namemax = 255;
  st.f_flag = ST_RDONLY;
  fuse_reply_statfs(req, &st);
}

const fuse_lowlevel_ops& LsiFs::Ops() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o;
    std::memset(&o, 0, sizeof o);
    o.init = OpInit;
    o.lookup = OpLookup;
    o.getattr = OpGetattr;
    o.setattr = OpSetattr;
    o.opendir = OpOpendir;
    o.readdir = OpReaddir;
    o.open = OpOpen;
    o.read = OpRead;
    o.release = OpRelease;
    o.statfs = OpStatfs;
    return o;
  }();
  return ops;
}

}  // namespace lsifs
