#include "core/assembler/assemble.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "core/lsi/layer.h"
#include "core/util/file.h"
#include "core/util/hex.h"

namespace lsifs {

Status ListLsis(const Store& store, std::vector<Manifest>* out,
                std::vector<std::string>* problems) {
  out->clear();
  DIR* d = ::opendir(store.lsi_dir().c_str());
  if (d == nullptr) return Status::FromErrno(store.lsi_dir(), errno);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() == 16 + 4 && n.compare(16, 4, ".lsi") == 0) names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    Manifest m;
    Status s = PeekManifest(store.lsi_dir() + "/" + n, &m);
    if (s.ok() && FormatId(m.lsi_id) + ".lsi" != n) {
      s = Status::Corruption("manifest " + n + " names another LSI");
    }
    if (!s.ok()) {
      if (problems) problems->push_back(s.message());
      continue;
    }
    out->push_back(std::move(m));
  }
  std::sort(out->begin(), out->end(), [](const Manifest& a, const Manifest& b) {
    if (a.created != b.created) return a.created < b.created;
    return a.lsi_id < b.lsi_id;
  });
  return Status::Ok();
}

Status AssembleLsi(const Store& store, OriginSnapshot& base, const KeyInfo& key_info,
                   const SecretKey& key, const std::vector<std::vector<uint64_t>>& layers,
                   const AssembleOptions& options, Manifest* out) {
  const SnapshotInfo& snap = base.info();
  Manifest m;
  m.lsi_id = RandomU64NonZero();
  m.volume = snap.volume;
  m.snapshot = snap.id;
  m.volume_size = snap.size;
  m.block_size = snap.block_size;
  m.created = static_cast<int64_t>(std::time(nullptr));
  m.expires = options.expires;

  std::vector<std::string> written;
  auto fail = [&](Status s) {
    for (const auto& p : written) ::unlink(p.c_str());
    return s;
  };
  const size_t batch = std::max<size_t>(1, options.blocks_per_fetch);
  Bytes buf(batch * snap.block_size);
  std::vector<uint8_t*> outs(batch);
  for (size_t i = 0; i < batch; ++i) outs[i] = buf.data() + i * snap.block_size;

  uint64_t total = 0, done = 0;
  for (const auto& blocks : layers) total += blocks.size();
  for (const auto& blocks : layers) {
    for (uint64_t b : blocks) {
      if (!std::binary_search(base.present().begin(), base.present().end(), b)) {
        return fail(Status::InvalidArgument("block " + std::to_string(b) +
                                            " is not present in snapshot " + FormatId(snap.id)));
      }
    }
    LayerHeader h;
    h.layer_id = RandomU64NonZero();
    h.volume = snap.volume;
    h.snapshot = snap.id;
    h.block_size = snap.block_size;
    LayerWriter w;
    std::string path = LayerPath(store, h.layer_id);
    Status s = w.Open(store.tmp_dir(), path, h, key_info, key);
    for (size_t at = 0; s.ok() && at < blocks.size(); at += batch) {
      size_t n = std::min(batch, blocks.size() - at);
      s = base.Fetch(std::span<const uint64_t>(blocks.data() + at, n),
                     std::span<uint8_t* const>(outs.data(), n));
      for (size_t i = 0; s.ok() && i < n; ++i) {
        s = w.Add(blocks[at + i], ByteSpan(outs[i], snap.block_size));
      }
      done += n;
      if (options.progress) options.progress(done, total);
    }
    if (s.ok()) s = w.Commit();
    if (!s.ok()) return fail(s);
    written.push_back(path);
    m.layers.push_back({h.layer_id, blocks});
  }
  Status s = WriteManifest(store.tmp_dir(), LsiPath(store, m.lsi_id), m, key_info, key);
  if (!s.ok()) return fail(s);
  m.extension = key_info.name;
  m.key_id = key_info.id;
  for (auto& l : m.layers) std::sort(l.blocks.begin(), l.blocks.end());
  *out = std::move(m);
  return Status::Ok();
}

Status DropLsi(const Store& store, uint64_t lsi_id) {
  std::string path = LsiPath(store, lsi_id);
  Manifest m;
  LSIFS_RETURN_IF_ERROR(PeekManifest(path, &m).WithContext("LSI " + FormatId(lsi_id)));
  if (::unlink(path.c_str()) != 0) return Status::FromErrno(path, errno);
  LSIFS_RETURN_IF_ERROR(SyncDirectory(store.lsi_dir()));
  for (const auto& l : m.layers) ::unlink(LayerPath(store, l.layer_id).c_str());
  ::unlink(
      (store.root() + "/run/" + FormatId(lsi_id) + "." + m.extension + ".counters.json").c_str());
  return Status::Ok();
}

namespace {

// The volume's snapshots, oldest first; NotFound (saying what to do) if none.
Status ListVolumeSnapshots(const Store& store, const OriginKeys& keys, const std::string& volume,
                           std::vector<SnapshotInfo>* snaps) {
  LSIFS_RETURN_IF_ERROR(ListSnapshots(store, keys, volume, snaps));
  if (snaps->empty()) {
    return Status::NotFound("volume '" + volume +
                            "' has no snapshots; import one with: lsictl import " + volume +
                            " IMAGE");
  }
  return Status::Ok();
}

}  // namespace

Status PreassembleFixed(const Store& store, Origin& origin, const OriginKeys& keys,
                        const KeyInfo& key_info, const SecretKey& key, const std::string& volume,
                        const std::string& strategy, const AssembleOptions& options,
                        Manifest* out) {
  if (strategy != "full" && strategy != "none") {
    return Status::InvalidArgument("unknown strategy '" + strategy + "' (use full or none)");
  }
  std::vector<SnapshotInfo> snaps;
  LSIFS_RETURN_IF_ERROR(ListVolumeSnapshots(store, keys, volume, &snaps));
  std::unique_ptr<OriginSnapshot> base;
  LSIFS_RETURN_IF_ERROR(origin.OpenSnapshot(volume, snaps.back().id, &base));
  std::vector<std::vector<uint64_t>> layers;
  if (strategy == "full") layers.push_back(base->present());
  return AssembleLsi(store, *base, key_info, key, layers, options, out);
}

Status Restore(const Store& store, Origin& origin, const OriginKeys& keys, const KeyInfo& key_info,
               const SecretKey& key, const std::string& volume, uint64_t snapshot, Manifest* out,
               bool* reused) {
  std::vector<SnapshotInfo> snaps;
  LSIFS_RETURN_IF_ERROR(ListVolumeSnapshots(store, keys, volume, &snaps));
  if (snapshot == 0) {
    snapshot = snaps.back().id;
  } else if (std::none_of(snaps.begin(), snaps.end(),
                          [&](const SnapshotInfo& s) { return s.id == snapshot; })) {
    return Status::NotFound("volume '" + volume + "' has no snapshot " + FormatId(snapshot) +
                            " (see: lsictl snapshots " + volume + ")");
  }
  std::vector<Manifest> lsis;
  LSIFS_RETURN_IF_ERROR(ListLsis(store, &lsis));
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  for (auto it = lsis.rbegin(); it != lsis.rend(); ++it) {
    if (it->extension == key_info.name && it->key_id == key_info.id && it->volume == volume &&
        it->snapshot == snapshot && (it->expires == 0 || it->expires > now)) {
      // Authenticate before handing it out.
      LSIFS_RETURN_IF_ERROR(ReadManifest(LsiPath(store, it->lsi_id), key_info, key, out));
      *reused = true;
      return Status::Ok();
    }
  }
  std::unique_ptr<OriginSnapshot> base;
  LSIFS_RETURN_IF_ERROR(origin.OpenSnapshot(volume, snapshot, &base));
  *reused = false;
  return AssembleLsi(store, *base, key_info, key, {}, AssembleOptions(), out);
}

}  // namespace lsifs
