#include "core/assembler/assemble.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <memory>

#include "core/lsi/layer.h"
#include "core/util/file.h"
#include "core/util/hex.h"

namespace lsifs {

Status AssembleLsi(const Catalog& catalog, OriginSnapshot& base, const KeyInfo& key_info,
                   const SecretKey& key, const std::vector<std::vector<uint64_t>>& layers,
                   const AssembleOptions& options, Manifest* out) {
  const Store& store = catalog.store();
  const SnapshotInfo& snap = base.info();
  Manifest m;
  m.lsi_id = RandomU64NonZero();
  m.volume = snap.volume;
  m.snapshot = snap.id;
  m.volume_size = snap.size;
  m.block_size = snap.block_size;
  m.created = static_cast<int64_t>(std::time(nullptr));
  m.expires = options.ttl > 0 ? m.created + options.ttl : 0;
  m.strategy = options.strategy;
  m.model_sessions = options.model_sessions;

  std::unique_ptr<AssemblyClaim> claim;
  LSIFS_RETURN_IF_ERROR(catalog.BeginAssembly(&claim));
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
    Status claimed = claim->NewLayer(&h.layer_id);
    if (!claimed.ok()) return fail(claimed);
    h.volume = snap.volume;
    h.snapshot = snap.id;
    h.block_size = snap.block_size;
    LayerWriter w;
    std::string path = store.layer_path(h.layer_id);
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
  Status s = catalog.Publish(*claim, m, key_info, key);
  if (!s.ok()) return fail(s);
  m.extension = key_info.name;
  m.key_id = key_info.id;
  for (auto& l : m.layers) std::sort(l.blocks.begin(), l.blocks.end());
  *out = std::move(m);
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

uint32_t ModelSessions(const CatalogContext& context, const std::string& extension,
                       const std::string& volume) {
  auto it = context.model_sessions.find({extension, volume});
  return it == context.model_sessions.end() ? 0 : it->second;
}

// Eviction after a publish: the new LSI is never its victim. A failure to
// evict does not undo the publish; `lsictl gc` reports it.
void EvictAfterPublish(const Catalog& catalog, const CatalogContext& context, uint64_t lsi_id) {
  EvictionReport report;
  (void)catalog.Evict(context, &report, lsi_id);
}

}  // namespace

Status PreassembleFixed(const Catalog& catalog, Origin& origin, const OriginKeys& keys,
                        const KeyInfo& key_info, const SecretKey& key, const std::string& volume,
                        const std::string& strategy, const CatalogContext& context,
                        AssembleOptions options, Manifest* out) {
  if (strategy != "full" && strategy != "none") {
    return Status::InvalidArgument("unknown strategy '" + strategy + "' (use full or none)");
  }
  std::vector<SnapshotInfo> snaps;
  LSIFS_RETURN_IF_ERROR(ListVolumeSnapshots(catalog.store(), keys, volume, &snaps));
  std::unique_ptr<OriginSnapshot> base;
  LSIFS_RETURN_IF_ERROR(origin.OpenSnapshot(volume, snaps.back().id, &base));
  std::vector<std::vector<uint64_t>> layers;
  if (strategy == "full") layers.push_back(base->present());
  options.strategy = strategy;
  options.model_sessions = ModelSessions(context, key_info.name, volume);
  options.ttl = catalog.TtlFor(key_info, key, volume);
  LSIFS_RETURN_IF_ERROR(AssembleLsi(catalog, *base, key_info, key, layers, options, out));
  EvictAfterPublish(catalog, context, out->lsi_id);
  return Status::Ok();
}

Status Restore(const Catalog& catalog, Origin& origin, const OriginKeys& keys,
               const KeyInfo& key_info, const SecretKey& key, const std::string& volume,
               uint64_t snapshot, const CatalogContext& context, Manifest* out, bool* reused) {
  std::vector<SnapshotInfo> snaps;
  LSIFS_RETURN_IF_ERROR(ListVolumeSnapshots(catalog.store(), keys, volume, &snaps));
  const bool alias = snapshot == 0;
  if (snapshot == 0) {
    snapshot = snaps.back().id;
  } else if (std::none_of(snaps.begin(), snaps.end(),
                          [&](const SnapshotInfo& s) { return s.id == snapshot; })) {
    return Status::NotFound("volume '" + volume + "' has no snapshot " + FormatId(snapshot) +
                            " (see: lsictl snapshots " + volume + ")");
  }
  // A fresh LSI may be dropped between finding and delivering it: then a
  // new one is made.
  for (int attempt = 0;; ++attempt) {
    Status found = catalog.FindFresh(key_info, key, volume, snapshot, context, out);
    *reused = found.ok();
    if (!found.ok()) {
      if (!found.IsNotFound()) return found;
      std::unique_ptr<OriginSnapshot> base;
      LSIFS_RETURN_IF_ERROR(origin.OpenSnapshot(volume, snapshot, &base));
      AssembleOptions options;
      options.strategy = "none";
      options.model_sessions = ModelSessions(context, key_info.name, volume);
      options.ttl = catalog.TtlFor(key_info, key, volume);
      LSIFS_RETURN_IF_ERROR(AssembleLsi(catalog, *base, key_info, key, {}, options, out));
      EvictAfterPublish(catalog, context, out->lsi_id);
    }
    Status s = catalog.Deliver(out->lsi_id, key_info, key, alias,
                               static_cast<int64_t>(std::time(nullptr)));
    if (s.ok() || !s.IsNotFound() || attempt == 1) return s;
  }
}

}  // namespace lsifs
