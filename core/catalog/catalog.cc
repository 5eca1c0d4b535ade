#include "core/catalog/catalog.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <thread>
#include <unordered_map>

#include "core/catalog/delivery_record.h"
#include "core/catalog/record_lock.h"
#include "core/lsi/layer.h"
#include "core/util/hex.h"

namespace lsifs {
namespace {

constexpr int64_t kMinTtl = 3600;
constexpr int64_t kMaxTtl = 7 * 86400;
constexpr int64_t kDefaultTtl = 86400;

int64_t FileMtime(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_mtime) : 0;
}

uint64_t FreeBytes(const std::string& dir) {
  struct statvfs fs;
  if (::statvfs(dir.c_str(), &fs) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

// Pins are open-file-description read locks on the manifest: a mount holds
// one per open image; a drop takes the write lock, which it gets only when
// no pin is held. A listing asks whether a pin is held without taking any
// lock (F_OFD_GETLK), so it can never make a drop think the LSI is in use.
// Like flock, the lock goes with the last descriptor (a killed process's
// pins vanish).
bool TryLock(int fd, short type) {
  struct flock l {};
  l.l_type = type;
  l.l_whence = SEEK_SET;
  return ::fcntl(fd, F_OFD_SETLK, &l) == 0;
}

bool Pinned(int fd) {
  struct flock l {};
  l.l_type = F_WRLCK;
  l.l_whence = SEEK_SET;
  return ::fcntl(fd, F_OFD_GETLK, &l) == 0 && l.l_type == F_RDLCK;
}

// Why an LSI is not fresh for a restore of its own snapshot; empty if fresh.
std::string Staleness(const Manifest& m, const CatalogContext& c, uint64_t wanted_snapshot) {
  if (m.snapshot != wanted_snapshot) {
    return "snapshot " + FormatId(wanted_snapshot) + " is newer";
  }
  if (c.models_known) {
    auto it = c.model_sessions.find({m.extension, m.volume});
    uint32_t now = it == c.model_sessions.end() ? 0 : it->second;
    if (now > m.model_sessions) {
      return std::to_string(now - m.model_sessions) + " session(s) learned since it was planned";
    }
    auto relearned = c.relearned_at.find({m.extension, m.volume});
    if (now < m.model_sessions ||
        (relearned != c.relearned_at.end() && m.created <= relearned->second)) {
      return "what it was planned from was forgotten since (lsictl access forget or reset)";
    }
  }
  return {};
}

bool Expired(const Manifest& m, const CatalogContext& c) {
  return m.expires != 0 && m.expires <= c.now;
}

// Eviction order: what nobody can use first, the current images last.
int EvictionRank(const CatalogEntry& e, std::string* why) {
  if (e.state == LsiState::kUnreadable) {
    *why = "unreadable";
    return 0;
  }
  if (e.state == LsiState::kExpired || e.state == LsiState::kStale) {
    *why = e.state == LsiState::kExpired ? "expired" : "stale";
    return 1;
  }
  if (e.superseded) {
    *why = "superseded";
    return 2;
  }
  if (e.state == LsiState::kAssembled) {
    *why = "assembled, least recently used";
    return 3;
  }
  if (!e.alias) {
    *why = "delivered by id, least recently used";
    return 4;
  }
  *why = "current image, least recently used";
  return 5;
}

}  // namespace

const char* LsiStateName(LsiState state) {
  switch (state) {
    case LsiState::kAssembled:
      return "assembled";
    case LsiState::kDelivered:
      return "delivered";
    case LsiState::kExpired:
      return "expired";
    case LsiState::kStale:
      return "stale";
    case LsiState::kDropped:
      return "dropped";
    case LsiState::kUnreadable:
      return "unreadable";
  }
  return "?";
}

// ---- opening and sweeping ----------------------------------------------

Status Catalog::Open(const Store& store, std::unique_ptr<Catalog>* out) {
  std::unique_ptr<Catalog> c(new Catalog(store));
  for (const std::string& dir : {store.lsi_dir(), store.layers_dir(), store.catalog_dir()}) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) return Status::FromErrno(dir, errno);
  }
  c->Sweep();
  *out = std::move(c);
  return Status::Ok();
}

void Catalog::Sweep() const {
  // Drops a crash interrupted, and drops that waited for their last user.
  for (uint64_t id : store_.ListIds(StoreFile::kTombstone)) {
    uint64_t bytes = 0;
    FinishDrop(id, &bytes);
  }
  // Layers no manifest references and no live assembly claims. The order
  // matters: a layer listed here was claimed before it was created, and its
  // claim is removed only after its manifest is published, so reading the
  // claims and then the manifests cannot miss it.
  const std::vector<uint64_t> layers = store_.ListIds(StoreFile::kLayer);
  // Layers and snapshot data files are swept only when every claim and
  // manifest could be read; the rest of the sweep goes on regardless.
  std::set<uint64_t> keep;
  bool sweep_claimed = Claim::LiveIds(store_, &keep);
  std::set<uint64_t> manifests;
  for (uint64_t id : store_.ListIds(StoreFile::kManifest)) {
    manifests.insert(id);
    Manifest m;
    Status s = PeekManifest(store_.manifest_path(id), &m);
    if (s.IsNotFound()) continue;  // dropped meanwhile: its layers are leftovers now
    // A manifest that cannot be read now (damaged, a newer format, out of
    // descriptors) may still name layers: sweep no layer this time.
    if (!s.ok()) {
      sweep_claimed = false;
      continue;
    }
    for (const auto& l : m.layers) keep.insert(l.layer_id);
  }
  for (uint64_t id : layers) {
    if (sweep_claimed && !keep.count(id)) ::unlink(store_.layer_path(id).c_str());
  }
  // A snapshot data file without its map: an import died between its two
  // renames (the map is the commit), and no live import claims it.
  for (const auto& volume : ListFileNames(store_.snapshots_dir())) {
    if (!sweep_claimed) break;
    for (const auto& n : ListFileNames(store_.volume_dir(volume))) {
      auto id = ParseId(n.substr(0, 16));
      if (!id || n.size() != 21 || n.compare(16, 5, ".data") != 0 || keep.count(*id)) continue;
      if (!PathExists(store_.snapshot_map_path(volume, *id)) &&
          !PathExists(store_.snapshot_kept_path(volume, *id))) {
        ::unlink(store_.snapshot_data_path(volume, *id).c_str());
      }
    }
  }
  // Counters and local block copies of LSIs that are gone.
  for (const auto& n : ListFileNames(store_.run_dir())) {
    auto id = ParseId(n.substr(0, 16));
    if (id && n.size() > 17 && n[16] == '.' && !manifests.count(*id) &&
        !PathExists(store_.manifest_path(*id))) {
      ::unlink((store_.run_dir() + "/" + n).c_str());
    }
  }
}

// ---- listing -----------------------------------------------------------

uint64_t Catalog::LsiBytes(const Manifest& m) const {
  uint64_t bytes = FileBytes(store_.manifest_path(m.lsi_id));
  for (const auto& l : m.layers) bytes += FileBytes(store_.layer_path(l.layer_id));
  return bytes;
}

bool Catalog::InUse(uint64_t lsi_id) const {
  int fd = ::open(store_.manifest_path(lsi_id).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool busy = Pinned(fd);
  ::close(fd);
  return busy;
}

Status Catalog::List(const CatalogContext& context, std::vector<CatalogEntry>* out) const {
  out->clear();
  std::set<uint64_t> tombstones;
  std::vector<uint64_t> ids;
  for (const auto& n : ListFileNames(store_.lsi_dir())) {
    StoreFile kind;
    uint64_t id = 0;
    if (!Store::ParseFileName(n, &kind, &id)) continue;
    if (kind == StoreFile::kManifest) ids.push_back(id);
    if (kind == StoreFile::kTombstone) tombstones.insert(id);
  }
  // What was delivered, by extension (unauthenticated: a listing).
  std::map<std::string, DeliveryRecord> records;
  for (const auto& n : ListFileNames(store_.catalog_dir())) {
    StoreFile kind;
    uint64_t unused = 0;
    std::string ext;
    if (!Store::ParseFileName(n, &kind, &unused, &ext) || kind != StoreFile::kDeliveries) continue;
    DeliveryRecord r;
    if (ReadDeliveryRecord(store_.deliveries_path(ext), nullptr, nullptr, &r).ok()) {
      records[ext] = std::move(r);
    }
  }
  // By extension, each delivered LSI's last delivery (the last entry of an
  // LSI wins), looked up once per LSI rather than by a scan of the record.
  std::map<std::string, std::unordered_map<uint64_t, int64_t>> delivered_at;
  for (const auto& [ext, r] : records) {
    auto& when = delivered_at[ext];
    when.reserve(r.entries.size());
    for (const auto& d : r.entries) when[d.lsi_id] = d.last_delivered;
  }
  std::vector<KeyInfo> keys;
  // Each extension's key, and the next one while a rotation is unfinished.
  std::map<std::string, std::set<uint64_t>> key_ids;
  std::vector<std::string> unusable;  // their LSIs show as unreadable
  if (store_.keyring().List(&keys, &unusable).ok()) {
    for (const auto& k : keys) {
      key_ids[k.name].insert(k.id);
      ExtensionKeys both;
      if (store_.keyring().RotationPending(k.name) &&
          store_.keyring().LoadKeys(k.name, &both).ok() && both.has_next) {
        key_ids[k.name].insert(both.next_info.id);
      }
    }
  }

  for (uint64_t id : ids) {
    CatalogEntry e;
    e.lsi_id = id;
    Status s = PeekManifest(store_.manifest_path(id), &e.manifest);
    if (!s.ok()) {
      e.state = LsiState::kUnreadable;
      e.reason = s.message();
      e.manifest = Manifest();
      e.manifest.lsi_id = id;
      e.bytes = FileBytes(store_.manifest_path(id));
      e.in_use = InUse(id);
      out->push_back(std::move(e));
      continue;
    }
    const Manifest& m = e.manifest;
    if (m.lsi_id != id) {
      e.state = LsiState::kUnreadable;
      e.reason = "its manifest names another LSI (" + FormatId(m.lsi_id) + ")";
    }
    // Sizes on disk, and the first layer missing or not of the size the
    // manifest's block count makes it (a damaged record: lsictl verify).
    e.bytes = FileBytes(store_.manifest_path(id));
    std::string layer_problem;
    for (const auto& l : m.layers) {
      const std::string path = store_.layer_path(l.layer_id);
      e.bytes += FileBytes(path);
      if (!layer_problem.empty()) continue;
      Status ls = CheckLayerFile(path, l.listed, m.block_size);
      if (ls.IsNotFound()) {
        layer_problem = "layer " + FormatId(l.layer_id) + " is missing";
      } else if (!ls.ok()) {
        layer_problem = ls.message();
      }
    }
    e.in_use = InUse(id);
    e.last_used = std::max(m.created, FileMtime(store_.counters_path(id, m.extension)));
    auto key = key_ids.find(m.extension);
    const bool key_known = key != key_ids.end() && key->second.count(m.key_id) > 0;
    if (auto r = records.find(m.extension);
        r != records.end() && key != key_ids.end() && key->second.count(r->second.key_id)) {
      const auto& when = delivered_at[m.extension];
      if (auto d = when.find(id); d != when.end()) e.delivered = d->second;
      const VolumeDeliveries* v = r->second.FindVolume(m.volume);
      e.alias = e.delivered != 0 && v != nullptr && v->alias_lsi == id;
    }
    e.last_used = std::max(e.last_used, e.delivered);
    if (e.state == LsiState::kUnreadable) {
      // named above
    } else if (!key_known) {
      e.state = LsiState::kUnreadable;
      e.reason = key == key_ids.end()
                     ? "the store has no key of extension '" + m.extension + "'"
                     : "the key of extension '" + m.extension + "' is not the one it was made with";
    } else if (tombstones.count(id)) {
      e.state = LsiState::kDropped;
      e.reason = "dropped; removed when its last user releases it";
    } else if (!layer_problem.empty()) {
      e.state = LsiState::kUnreadable;
      e.reason = layer_problem;
    } else if (!PathExists(store_.snapshot_map_path(m.volume, m.snapshot))) {
      e.state = LsiState::kUnreadable;
      e.reason = "its base snapshot " + FormatId(m.snapshot) + " is gone";
    }
    if (e.state != LsiState::kUnreadable && e.state != LsiState::kDropped) {
      auto latest = context.latest_snapshot.find(m.volume);
      uint64_t wanted = latest == context.latest_snapshot.end() ? m.snapshot : latest->second;
      std::string stale = Staleness(m, context, wanted);
      if (e.delivered != 0) {
        e.state = LsiState::kDelivered;
        e.reason = stale;
      } else if (!stale.empty()) {
        e.state = LsiState::kStale;
        e.reason = stale;
      } else if (Expired(m, context)) {
        e.state = LsiState::kExpired;
        e.reason = "its TTL ran out";
      } else {
        e.state = LsiState::kAssembled;
      }
    }
    out->push_back(std::move(e));
  }
  // Superseded: a delivered LSI that is not its volume's image while a later
  // one of the same (extension, volume) was delivered; an assembled one
  // while a newer fresh one of the same (extension, volume) exists.
  // Strictly later: times are in seconds, and a tie proves nothing. One pass
  // finds each (extension, volume)'s latest delivery and newest creation,
  // a second compares each LSI with them (comparing every pair of LSIs was
  // quadratic in the catalog's size).
  struct Latest {
    int64_t delivered = INT64_MIN;  // of its delivered LSIs
    int64_t created = INT64_MIN;    // of its assembled and delivered LSIs
  };
  std::map<std::pair<std::string, std::string>, Latest> latest;
  for (const auto& o : *out) {
    if (o.state != LsiState::kDelivered && o.state != LsiState::kAssembled) continue;
    Latest& l = latest[{o.manifest.extension, o.manifest.volume}];
    if (o.state == LsiState::kDelivered) l.delivered = std::max(l.delivered, o.delivered);
    l.created = std::max(l.created, o.manifest.created);
  }
  for (auto& e : *out) {
    if (e.state != LsiState::kDelivered && e.state != LsiState::kAssembled) continue;
    if (e.alias) continue;
    const Latest& l = latest[{e.manifest.extension, e.manifest.volume}];
    e.superseded = e.state == LsiState::kDelivered ? l.delivered > e.delivered
                                                   : l.created > e.manifest.created;
  }
  std::sort(out->begin(), out->end(), [](const CatalogEntry& a, const CatalogEntry& b) {
    return std::tie(a.manifest.created, a.lsi_id) < std::tie(b.manifest.created, b.lsi_id);
  });
  return Status::Ok();
}

Status Catalog::Find(uint64_t lsi_id, const CatalogContext& context, CatalogEntry* out) const {
  std::vector<CatalogEntry> all;
  LSIFS_RETURN_IF_ERROR(List(context, &all));
  for (auto& e : all) {
    if (e.lsi_id == lsi_id) {
      *out = std::move(e);
      return Status::Ok();
    }
  }
  return Status::NotFound("no LSI " + FormatId(lsi_id) + " in this store (see: lsictl lsi list)");
}

// ---- assembly and restore ----------------------------------------------

Status Catalog::Publish(const Manifest& manifest, const KeyInfo& key_info,
                        const SecretKey& key) const {
  for (const auto& l : manifest.layers) {
    if (!PathExists(store_.layer_path(l.layer_id))) {
      return Status::InvalidArgument("publishing LSI " + FormatId(manifest.lsi_id) + ": layer " +
                                     FormatId(l.layer_id) + " is not written");
    }
  }
  // Under the record's lock, with the key still the extension's: a key
  // rotation finishes under the same lock, so an LSI is never published
  // under a key that has just been retired.
  RecordLock lock;
  LSIFS_RETURN_IF_ERROR(lock.Acquire(store_.deliveries_lock_path(key_info.name)));
  LSIFS_RETURN_IF_ERROR(CheckKeyInForce(key_info));
  return WriteManifest(store_.tmp_dir(), store_.manifest_path(manifest.lsi_id), manifest, key_info,
                       key);
}

Status Catalog::CheckKeyInForce(const KeyInfo& key_info) const {
  KeyInfo now;
  SecretKey unused;
  LSIFS_RETURN_IF_ERROR(store_.keyring().Load(key_info.name, &now, &unused));
  if (now.id != key_info.id) {
    return Status::Unavailable("the key of extension '" + key_info.name +
                               "' was rotated meanwhile (lsictl key rotate); try again");
  }
  return Status::Ok();
}

VolumeDeliveries Catalog::RestoreHistory(const KeyInfo& key_info, const SecretKey& key,
                                         const std::string& volume) const {
  DeliveryRecord r;
  if (ReadDeliveryRecord(store_.deliveries_path(key_info.name), &key_info, &key, &r).ok()) {
    if (const VolumeDeliveries* v = r.FindVolume(volume)) return *v;
  }
  return VolumeDeliveries();
}

int64_t Catalog::TtlFor(const KeyInfo& key_info, const SecretKey& key,
                        const std::string& volume) const {
  VolumeDeliveries v = RestoreHistory(key_info, key, volume);
  if (v.restores < 2 || v.mean_interval_s == 0) return kDefaultTtl;
  return std::clamp(static_cast<int64_t>(2 * v.mean_interval_s), kMinTtl, kMaxTtl);
}

uint32_t Catalog::Restores(const KeyInfo& key_info, const SecretKey& key,
                           const std::string& volume) const {
  return RestoreHistory(key_info, key, volume).restores;
}

Status Catalog::FindFresh(const KeyInfo& key_info, const SecretKey& key, const std::string& volume,
                          uint64_t snapshot, const CatalogContext& context, Manifest* out) const {
  std::vector<CatalogEntry> all;
  LSIFS_RETURN_IF_ERROR(List(context, &all));
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const Manifest& m = it->manifest;
    if (it->state != LsiState::kAssembled && it->state != LsiState::kDelivered) continue;
    // Baselines (full, none, replay) are made to be measured, not reused.
    if (it->manifest.strategy != kPredictedStrategy) continue;
    if (m.extension != key_info.name || m.key_id != key_info.id || m.volume != volume) continue;
    if (!Staleness(m, context, snapshot).empty() || Expired(m, context)) continue;
    // Authenticated before it is handed out.
    if (ReadManifest(it->lsi_id, key_info, key, out).ok()) return Status::Ok();
  }
  return Status::NotFound("no fresh LSI of '" + volume + "' for extension '" + key_info.name + "'");
}

Status Catalog::Deliver(uint64_t lsi_id, const KeyInfo& key_info, const SecretKey& key, bool alias,
                        int64_t now) const {
  RecordLock lock;
  LSIFS_RETURN_IF_ERROR(lock.Acquire(store_.deliveries_lock_path(key_info.name)));
  LSIFS_RETURN_IF_ERROR(CheckKeyInForce(key_info));
  Manifest m;
  LSIFS_RETURN_IF_ERROR(ReadManifest(lsi_id, key_info, key, &m));
  if (PathExists(store_.tombstone_path(lsi_id))) {
    return Status::NotFound("LSI " + FormatId(lsi_id) + " is being dropped");
  }
  const std::string path = store_.deliveries_path(key_info.name);
  DeliveryRecord r;
  Status s = ReadDeliveryRecord(path, &key_info, &key, &r);
  if (s.IsPermission() && store_.keyring().RotationPending(key_info.name)) {
    return Status::Unavailable("a key rotation of '" + key_info.name +
                               "' was interrupted; finish it with: lsictl key rotate " +
                               key_info.name);
  }
  if (!s.ok()) {
    return s.WithContext("cannot deliver to '" + key_info.name + "' (move " + path +
                         " aside to start a new record: running mounts keep what they show and "
                         "show the next restore)");
  }
  // Forget deliveries of LSIs that are gone.
  auto gone = [&](uint64_t id) {
    return id != lsi_id &&
           (!PathExists(store_.manifest_path(id)) || PathExists(store_.tombstone_path(id)));
  };
  std::erase_if(r.entries, [&](const DeliveryEntry& e) { return gone(e.lsi_id); });
  for (auto& v : r.volumes) {
    if (v.alias_lsi != 0 && gone(v.alias_lsi)) v.alias_lsi = 0;
  }
  auto entry = std::find_if(r.entries.begin(), r.entries.end(),
                            [&](const DeliveryEntry& e) { return e.lsi_id == lsi_id; });
  if (entry == r.entries.end()) {
    r.entries.push_back({lsi_id, m.volume, now, now, 0});
    entry = r.entries.end() - 1;
  }
  entry->last_delivered = now;
  ++entry->deliveries;
  r.NoteRestore(m.volume, now);
  if (alias) r.FindVolume(m.volume)->alias_lsi = lsi_id;
  r.generation = NextGeneration(r.generation);
  Bytes data = EncodeDeliveryRecord(r, key);
  return WriteFileAtomically(store_.tmp_dir(), path, data, 0644, /*replace=*/true);
}

// ---- removal -----------------------------------------------------------

bool Catalog::FinishDrop(uint64_t lsi_id, uint64_t* bytes) const {
  *bytes = 0;
  const std::string path = store_.manifest_path(lsi_id);
  // Opened for writing only because a write lock needs it; never written.
  File f(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!f.is_open()) {
    // The manifest is gone: a crash came after its removal; the sweep takes
    // the layers it left.
    if (errno == ENOENT) ::unlink(store_.tombstone_path(lsi_id).c_str());
    return errno == ENOENT;
  }
  if (!TryLock(f.fd(), F_WRLCK)) return false;  // a mount holds it (or another drop runs)
  Manifest m;
  bool known = PeekManifest(path, &m).ok();
  if (known) *bytes = LsiBytes(m);
  if (::unlink(path.c_str()) != 0) return false;
  (void)SyncDirectory(store_.lsi_dir());
  if (known) {
    for (const auto& l : m.layers) ::unlink(store_.layer_path(l.layer_id).c_str());
    ::unlink(store_.counters_path(lsi_id, m.extension).c_str());
    ::unlink(store_.spill_path(lsi_id, m.extension).c_str());
  }
  ::unlink(store_.tombstone_path(lsi_id).c_str());
  return true;
}

Status Catalog::Drop(uint64_t lsi_id, DropResult* result, bool force) const {
  *result = DropResult();
  const std::string path = store_.manifest_path(lsi_id);
  if (!PathExists(path)) {
    ::unlink(store_.tombstone_path(lsi_id).c_str());
    return Status::NotFound("no LSI " + FormatId(lsi_id) + " in this store (see: lsictl lsi list)");
  }
  Manifest head;
  Status readable = PeekManifest(path, &head);
  if (!readable.ok() && !readable.IsNotFound() && !force) {
    return Status::InvalidArgument(
        "LSI " + FormatId(lsi_id) + " cannot be read (" + readable.message() +
        "): which layers are its cannot be told; drop it anyway, and its layers with the next "
        "sweep, with: lsictl lsi drop --force " +
        FormatId(lsi_id));
  }
  // The tombstone first: from here on the drop completes whatever happens.
  const std::string tomb = store_.tombstone_path(lsi_id);
  if (!PathExists(tomb)) {
    Status s = WriteFileAtomically(store_.tmp_dir(), tomb, AsBytes(std::string_view("dropped\n")),
                                   0644, /*replace=*/true);
    LSIFS_RETURN_IF_ERROR(s);
  }
  result->deferred = !FinishDrop(lsi_id, &result->bytes);
  if (!readable.ok() && !result->deferred) {
    // Its layers are now named by no manifest: the sweep takes them.
    const uint64_t before = DirBytes(store_.layers_dir());
    Sweep();
    const uint64_t after = DirBytes(store_.layers_dir());
    result->bytes += before > after ? before - after : 0;
  }
  return Status::Ok();
}

Status Catalog::Evict(const CatalogContext& context, EvictionReport* report,
                      std::span<const uint64_t> keep) const {
  *report = EvictionReport();
  store_.CurrentCaps(&report->cap, &report->floor);
  std::vector<CatalogEntry> all;
  LSIFS_RETURN_IF_ERROR(List(context, &all));
  uint64_t total = 0;
  for (const auto& e : all) total += e.bytes;
  uint64_t free = FreeBytes(store_.root());
  report->bytes_before = total;
  report->free_before = free;
  struct Candidate {
    int rank;
    int64_t last_used;
    const CatalogEntry* entry;
    std::string why;
  };
  std::vector<Candidate> order;
  for (const auto& e : all) {
    if (e.in_use || e.state == LsiState::kDropped ||
        std::find(keep.begin(), keep.end(), e.lsi_id) != keep.end()) {
      continue;
    }
    Candidate c{0, e.last_used, &e, {}};
    c.rank = EvictionRank(e, &c.why);
    order.push_back(std::move(c));
  }
  std::sort(order.begin(), order.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(a.rank, a.last_used, a.entry->lsi_id) <
           std::tie(b.rank, b.last_used, b.entry->lsi_id);
  });
  auto satisfied = [&] { return total <= report->cap && free >= report->floor; };
  for (const auto& c : order) {
    if (satisfied()) break;
    DropResult r;
    Status s = Drop(c.entry->lsi_id, &r);
    if (!s.ok()) continue;
    report->dropped.push_back({c.entry->lsi_id, c.entry->bytes, c.why, r.deferred});
    if (!r.deferred) {
      total -= std::min(total, c.entry->bytes);
      free = FreeBytes(store_.root());
    }
  }
  report->bytes_after = total;
  report->free_after = free;
  report->satisfied = satisfied();
  return Status::Ok();
}

// ---- mounts ------------------------------------------------------------

Status Catalog::ReadDeliveries(const KeyInfo& key_info, const SecretKey& key,
                               DeliveryView* out) const {
  DeliveryRecord r;
  LSIFS_RETURN_IF_ERROR(
      ReadDeliveryRecord(store_.deliveries_path(key_info.name), &key_info, &key, &r));
  out->generation = r.generation;
  out->deliveries.clear();
  for (const auto& e : r.entries) {
    if (!PathExists(store_.manifest_path(e.lsi_id)) ||
        PathExists(store_.tombstone_path(e.lsi_id))) {
      continue;
    }
    const VolumeDeliveries* v = r.FindVolume(e.volume);
    out->deliveries.push_back({e.lsi_id, e.volume, v != nullptr && v->alias_lsi == e.lsi_id});
  }
  return Status::Ok();
}

Status Catalog::ReadManifest(uint64_t lsi_id, const KeyInfo& key_info, const SecretKey& key,
                             Manifest* out) const {
  const std::string path = store_.manifest_path(lsi_id);
  LSIFS_RETURN_IF_ERROR(lsifs::ReadManifest(path, key_info, key, out));
  if (out->lsi_id != lsi_id) {
    return Status::Corruption("manifest " + path + " names another LSI (" + FormatId(out->lsi_id) +
                              ")");
  }
  return Status::Ok();
}

Status Catalog::Pin(uint64_t lsi_id, const KeyInfo& key_info, const SecretKey& key,
                    std::unique_ptr<LsiPin>* out) const {
  const std::string path = store_.manifest_path(lsi_id);
  auto pin = std::make_unique<LsiPin>();
  LSIFS_RETURN_IF_ERROR(File::OpenRead(path, &pin->file_));
  // A drop holds the lock only while it unlinks a few files.
  for (int tries = 0; !TryLock(pin->file_.fd(), F_RDLCK); ++tries) {
    if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
      return Status::FromErrno("lock " + path, errno);
    }
    if (tries == 500) return Status::Unavailable("LSI " + FormatId(lsi_id) + " is busy");
    std::this_thread::sleep_for(std::chrono::milliseconds(4));
  }
  struct stat st;
  if (::fstat(pin->file_.fd(), &st) != 0) return Status::FromErrno(path, errno);
  if (st.st_nlink == 0 || PathExists(store_.tombstone_path(lsi_id))) {
    return Status::NotFound("LSI " + FormatId(lsi_id) + " was dropped");
  }
  LSIFS_RETURN_IF_ERROR(lsifs::ReadManifest(pin->file_, path, key_info, key, &pin->manifest_));
  if (pin->manifest_.lsi_id != lsi_id) {
    return Status::Corruption("manifest " + path + " names another LSI (" +
                              FormatId(pin->manifest_.lsi_id) + ")");
  }
  *out = std::move(pin);
  return Status::Ok();
}

void Catalog::Unpin(std::unique_ptr<LsiPin> pin) const {
  if (!pin) return;
  uint64_t id = pin->manifest_.lsi_id;
  pin.reset();
  if (PathExists(store_.tombstone_path(id))) {
    uint64_t bytes = 0;
    FinishDrop(id, &bytes);
  }
}

}  // namespace lsifs
