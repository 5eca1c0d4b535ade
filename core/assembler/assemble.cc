#include "core/assembler/assemble.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/lsi/layer.h"
#include "core/origin/link.h"
#include "core/origin/snapshot.h"
#include "core/util/file.h"
#include "core/util/hex.h"

namespace lsifs {

namespace {

// The assembly's origin requests in flight: one thread per place in the
// ring, started once per assembly (a thread per 64 KiB request cost more
// than sealing the request's blocks).
class Fetchers {
 public:
  explicit Fetchers(size_t n) : slots_(n) {
    for (auto& slot : slots_) slot.thread = std::thread([&slot] { Loop(slot); });
  }
  ~Fetchers() {
    for (auto& slot : slots_) {
      {
        std::lock_guard<std::mutex> lock(slot.mu);
        slot.stop = true;
      }
      slot.cv.notify_all();
      slot.thread.join();
    }
  }
  Fetchers(const Fetchers&) = delete;
  Fetchers& operator=(const Fetchers&) = delete;

  // Runs `job` on the thread of place `i`, which must be idle.
  void Start(size_t i, std::function<Status()> job) {
    Slot& slot = slots_[i];
    {
      std::lock_guard<std::mutex> lock(slot.mu);
      slot.job = std::move(job);
      slot.busy = true;
    }
    slot.cv.notify_all();
  }
  // The result of the job of place `i`, once it has finished; Ok if idle.
  Status Wait(size_t i) {
    Slot& slot = slots_[i];
    std::unique_lock<std::mutex> lock(slot.mu);
    slot.cv.wait(lock, [&] { return !slot.busy; });
    Status s = std::move(slot.result);
    slot.result = Status::Ok();
    return s;
  }

 private:
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;  // a job was given, or finished, or stop
    std::function<Status()> job;
    bool busy = false;
    bool stop = false;
    Status result = Status::Ok();
    std::thread thread;
  };
  static void Loop(Slot& slot) {
    std::unique_lock<std::mutex> lock(slot.mu);
    for (;;) {
      slot.cv.wait(lock, [&] { return slot.busy || slot.stop; });
      if (!slot.busy) return;
      std::function<Status()> job = std::move(slot.job);
      lock.unlock();
      Status s = job();
      lock.lock();
      slot.result = std::move(s);
      slot.busy = false;
      slot.cv.notify_all();
    }
  }

  std::vector<Slot> slots_;
};

}  // namespace

Status AssembleLsi(const Catalog& catalog, OriginSnapshot& base, const KeyInfo& key_info,
                   const SecretKey& key, const std::vector<std::vector<uint64_t>>& layers,
                   const AssembleOptions& options, Manifest* out, AssembleStats* stats) {
  AssembleStats ignored;
  if (stats == nullptr) stats = &ignored;
  *stats = AssembleStats();
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
  m.priority = static_cast<uint8_t>(options.priority);

  // The layers' ids are claimed before their files exist (Catalog's sweep).
  std::unique_ptr<Claim> claim;
  LSIFS_RETURN_IF_ERROR(Claim::Begin(catalog.store(), &claim));
  std::vector<std::string> written;
  auto fail = [&](Status s) {
    for (const auto& p : written) ::unlink(p.c_str());
    return s;
  };
  auto cancelled = [&] { return options.cancel != nullptr && options.cancel->load(); };
  // Small requests (a demand read waits behind at most one), several in
  // flight (to fill the link), each sealed on its own thread once its
  // blocks are in; the records are written in order.
  const size_t batch = options.blocks_per_fetch != 0
                           ? options.blocks_per_fetch
                           : std::max<size_t>(1, kAssemblyRequestBytes / snap.block_size);
  const size_t window = std::max<size_t>(1, options.fetch_window);
  const size_t record_size = snap.block_size + kSealOverhead;
  struct Batch {
    Bytes buf, sealed;
    std::vector<uint8_t*> outs, fetch_outs;
    std::vector<uint64_t> to_fetch;
    size_t at = 0, n = 0;
    Aead aead;  // the batch's thread seals with it
  };
  std::vector<Batch> ring(window);
  Fetchers fetchers(window);
  for (auto& r : ring) {
    r.buf.resize(batch * snap.block_size);
    r.sealed.resize(batch * record_size);
    for (size_t i = 0; i < batch; ++i) r.outs.push_back(r.buf.data() + i * snap.block_size);
  }

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
    Status claimed = claim->Add(h.layer_id);
    if (!claimed.ok()) return fail(claimed);
    h.volume = snap.volume;
    h.snapshot = snap.id;
    h.block_size = snap.block_size;
    LayerWriter w;
    std::string path = store.layer_path(h.layer_id);
    Status s = w.Open(store.tmp_dir(), path, h, key_info, key);
    const size_t batches = (blocks.size() + batch - 1) / batch;
    size_t launched = 0;
    // Batch k: what a local copy holds is read here, the rest is fetched in
    // one request on the batch's thread, which then seals them all.
    auto launch = [&](size_t k) {
      Batch& r = ring[k % window];
      r.at = k * batch;
      r.n = std::min(batch, blocks.size() - r.at);
      r.to_fetch.clear();
      r.fetch_outs.clear();
      for (size_t i = 0; i < r.n; ++i) {
        if (options.local && options.local(blocks[r.at + i], r.outs[i])) {
          ++stats->local_blocks;
        } else {
          r.to_fetch.push_back(blocks[r.at + i]);
          r.fetch_outs.push_back(r.outs[i]);
        }
      }
      if (!r.to_fetch.empty()) {
        stats->fetched_blocks += r.to_fetch.size();
        ++stats->origin_requests;
      }
      fetchers.Start(k % window, [&base, &r, &w, &blocks, &snap, record_size] {
        if (!r.to_fetch.empty()) LSIFS_RETURN_IF_ERROR(base.Fetch(r.to_fetch, r.fetch_outs));
        for (size_t i = 0; i < r.n; ++i) {
          LSIFS_RETURN_IF_ERROR(
              w.Seal(r.aead, blocks[r.at + i], ByteSpan(r.outs[i], snap.block_size),
                     MutableByteSpan(r.sealed.data() + i * record_size, record_size)));
        }
        return Status::Ok();
      });
    };
    for (size_t k = 0; s.ok() && k < batches; ++k) {
      while (s.ok() && launched < batches && launched < k + window) {
        if (cancelled()) {
          s = Status::Cancelled("assembly cancelled; nothing was kept");
        } else {
          launch(launched++);
        }
      }
      if (!s.ok()) break;
      Batch& r = ring[k % window];
      s = fetchers.Wait(k % window);
      if (s.ok()) {
        s = w.AddSealed(std::span<const uint64_t>(blocks.data() + r.at, r.n),
                        ByteSpan(r.sealed.data(), r.n * record_size));
      }
      done += r.n;
      if (s.ok() && options.progress) options.progress(done, total);
    }
    // Nothing may still write into the ring when it goes.
    for (size_t i = 0; i < window; ++i) (void)fetchers.Wait(i);
    if (s.ok()) s = w.Commit();
    if (!s.ok()) return fail(s);
    written.push_back(path);
    m.layers.push_back({h.layer_id, blocks});
  }
  Status s = catalog.Publish(m, key_info, key);
  if (!s.ok()) return fail(s);
  m.extension = key_info.name;
  m.key_id = key_info.id;
  for (auto& l : m.layers) std::sort(l.blocks.begin(), l.blocks.end());
  *out = std::move(m);
  return Status::Ok();
}

namespace {

// The volume's snapshots, oldest first; NotFound (saying what to do) if none.
// A damaged snapshot file fails only a request that needs it: "latest" is
// unknown while one of the volume's files cannot be read (it may be the
// newest), but a snapshot named by id is still served.
Status ListVolumeSnapshots(const Store& store, const OriginKeys& keys, const std::string& volume,
                           bool latest, std::vector<SnapshotInfo>* snaps) {
  std::vector<std::string> damaged;
  LSIFS_RETURN_IF_ERROR(ListSnapshots(store, keys, volume, snaps, &damaged));
  if (latest && !damaged.empty()) {
    return Status::Corruption("the latest snapshot of volume '" + volume +
                              "' is not known: " + damaged[0] +
                              " (restore a snapshot by id with --snapshot, or see lsictl verify)");
  }
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
  (void)catalog.Evict(context, &report, std::span<const uint64_t>(&lsi_id, 1));
}

}  // namespace

const char* PriorityName(Priority priority) {
  switch (priority) {
    case Priority::kHigh:
      return "high";
    case Priority::kNormal:
      return "normal";
    case Priority::kLow:
      return "low";
  }
  return "?";
}

Status ParsePriority(const std::string& text, Priority* out) {
  for (Priority p : {Priority::kHigh, Priority::kNormal, Priority::kLow}) {
    if (text == PriorityName(p)) {
      *out = p;
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("unknown priority '" + text + "' (use high, normal or low)");
}

namespace {

// The blocks of a target snapshot that this extension's earlier layers of
// the volume already hold unchanged (the origin's keyed digests agree):
// they are re-sealed here instead of crossing the link again. Nothing is
// taken on trust: a layer must be the one its manifest names, for the
// snapshot and geometry it names, and every block read is checked against
// the target's keyed digest before it is used (a swapped or stale layer
// can only cost a fetch, never put other bytes under a block).
class LocalCopies {
 public:
  explicit LocalCopies(const OriginKeys& keys) : mac_(keys.digest) {}

  Status Find(const Catalog& catalog, const OriginKeys& keys, const KeyInfo& key_info,
              const SecretKey& key, const CatalogContext& context, const SnapshotBlocks& target,
              const std::vector<uint64_t>& wanted) {
    std::vector<CatalogEntry> all;
    LSIFS_RETURN_IF_ERROR(catalog.List(context, &all));
    std::map<uint64_t, std::unique_ptr<SnapshotBlocks>> maps;
    const std::string& volume = target.info().volume;
    block_size_ = target.info().block_size;
    for (const auto& e : all) {
      const Manifest& peek = e.manifest;
      if (peek.extension != key_info.name || peek.key_id != key_info.id || peek.volume != volume ||
          peek.layers.empty() || e.state == LsiState::kUnreadable ||
          e.state == LsiState::kDropped || peek.block_size != block_size_) {
        continue;
      }
      Manifest m;
      if (!catalog.ReadManifest(e.lsi_id, key_info, key, &m).ok()) continue;
      auto& map = maps[m.snapshot];
      if (!map && !SnapshotBlocks::Open(catalog.store(), keys, volume, m.snapshot, &map).ok()) {
        continue;
      }
      for (const auto& ml : m.layers) {
        std::unique_ptr<LayerReader> reader;
        if (!LayerReader::Open(catalog.store().layer_path(ml.layer_id), key_info, key, &reader)
                 .ok()) {
          continue;
        }
        const LayerHeader& h = reader->header();
        std::vector<uint64_t> sorted = reader->blocks();
        std::sort(sorted.begin(), sorted.end());
        if (h.layer_id != ml.layer_id || h.volume != volume || h.snapshot != m.snapshot ||
            h.block_size != block_size_ || sorted != ml.blocks) {
          continue;  // not the layer its manifest names
        }
        const auto& blocks = reader->blocks();
        bool used = false;
        for (uint64_t slot = 0; slot < blocks.size(); ++slot) {
          uint64_t b = blocks[slot];
          if (where_.count(b) || !std::binary_search(wanted.begin(), wanted.end(), b)) continue;
          const BlockLocation* now = target.Find(b);
          const BlockLocation* then = map->Find(b);
          if (now == nullptr || then == nullptr || now->digest != then->digest) continue;
          where_[b] = {layers_.size(), slot, now->digest};
          used = true;
        }
        if (used) layers_.push_back(std::move(reader));
      }
    }
    return Status::Ok();
  }

  // A block that fails to read or to match here is fetched instead.
  bool Read(uint64_t block, uint8_t* out) {
    auto it = where_.find(block);
    if (it == where_.end()) return false;
    const LayerReader& layer = *layers_[it->second.layer];
    record_.resize(layer.record_size());
    MutableByteSpan plain(out, block_size_);
    if (!layer.ReadBlock(it->second.slot, block, aead_, record_, plain).ok()) return false;
    mac_.Reset();
    mac_.Update(plain);
    auto digest = mac_.Final();
    return EqualConstantTime(ByteSpan(digest.data(), kDigestSize), it->second.digest);
  }

  size_t size() const { return where_.size(); }

 private:
  struct Where {
    size_t layer;
    uint64_t slot;
    BlockDigest digest;  // the target snapshot's
  };
  std::vector<std::unique_ptr<LayerReader>> layers_;
  std::unordered_map<uint64_t, Where> where_;
  uint32_t block_size_ = 0;
  Aead aead_;
  Mac mac_;
  Bytes record_;
};

}  // namespace

Status PreAssembleSnapshot(const Catalog& catalog, Origin& origin, const OriginKeys& keys,
                           const KeyInfo& key_info, const SecretKey& key,
                           const LearnedModels& models, const CatalogContext& context,
                           const PreassembleRequest& request,
                           const std::function<void(uint64_t, uint64_t)>& progress,
                           PreassembleResult* out) {
  *out = PreassembleResult();
  const std::string& volume = request.volume;
  if (request.strategy != kPredictedStrategy && request.strategy != "full" &&
      request.strategy != "none" && request.strategy != "replay") {
    return Status::InvalidArgument("unknown strategy '" + request.strategy +
                                   "' (use predicted, or the baselines full, none, replay)");
  }
  // 1. A fresh LSI in the catalog is the answer.
  std::vector<SnapshotInfo> snaps;
  LSIFS_RETURN_IF_ERROR(
      ListVolumeSnapshots(catalog.store(), keys, volume, request.snapshot == 0, &snaps));
  uint64_t snapshot = request.snapshot != 0 ? request.snapshot : snaps.back().id;
  if (std::none_of(snaps.begin(), snaps.end(),
                   [&](const SnapshotInfo& s) { return s.id == snapshot; })) {
    return Status::NotFound("volume '" + volume + "' has no snapshot " + FormatId(snapshot) +
                            " (see: lsictl snapshots " + volume + ")");
  }
  // A budget asks for a plan of its own: no reuse then.
  if (request.strategy == kPredictedStrategy && request.budget_bytes == 0 &&
      catalog.FindFresh(key_info, key, volume, snapshot, context, &out->manifest).ok()) {
    out->reused = true;
    return Status::Ok();
  }
  // 2. The base snapshot's metadata: geometry and present blocks.
  std::unique_ptr<SnapshotBlocks> map;
  LSIFS_RETURN_IF_ERROR(SnapshotBlocks::Open(catalog.store(), keys, volume, snapshot, &map));
  std::vector<uint64_t> present;
  present.reserve(map->map().size());
  for (const auto& loc : map->map()) present.push_back(loc.block);
  // 3. Rank the blocks from what was learned.
  std::vector<uint64_t> blocks;
  if (request.strategy == kPredictedStrategy) {
    PlanOptions plan_options;
    plan_options.budget_bytes = request.budget_bytes;
    out->plan = PlanBlocks(models.own, models.all, models.params, present, map->info().block_size,
                           plan_options);
    for (const auto& b : out->plan.blocks) blocks.push_back(b.block);
  } else if (request.strategy == "full") {
    blocks = present;
  } else if (request.strategy == "replay") {
    std::unordered_set<uint64_t> seen;
    for (uint64_t b : models.last_session) {
      if (std::binary_search(present.begin(), present.end(), b) && seen.insert(b).second) {
        blocks.push_back(b);
      }
    }
  }
  // 4. What is held locally is not fetched again.
  std::vector<uint64_t> wanted = blocks;
  std::sort(wanted.begin(), wanted.end());
  LocalCopies local(keys);
  if (!wanted.empty()) {
    LSIFS_RETURN_IF_ERROR(local.Find(catalog, keys, key_info, key, context, *map, wanted));
  }
  // 5-6. Seal, write the layer and the manifest; publish as assembled.
  std::unique_ptr<OriginSnapshot> base;
  LSIFS_RETURN_IF_ERROR(origin.OpenSnapshot(volume, snapshot, &base));
  AssembleOptions options;
  options.strategy = request.strategy;
  options.model_sessions = ModelSessions(context, key_info.name, volume);
  options.priority = request.priority;
  // 7. Its TTL from the pattern of the extension's restores.
  options.ttl = catalog.TtlFor(key_info, key, volume);
  if (progress) {
    // Reported in bytes, as a progress bar shows them.
    const uint64_t bs = map->info().block_size;
    options.progress = [&progress, bs](uint64_t done, uint64_t total) {
      progress(done * bs, total * bs);
    };
  }
  options.cancel = request.cancel;
  options.fetch_window = request.fetch_window;
  options.blocks_per_fetch =
      request.request_bytes == 0
          ? 0
          : std::max<uint64_t>(1, request.request_bytes / map->info().block_size);
  if (local.size() > 0) {
    options.local = [&](uint64_t block, uint8_t* dst) { return local.Read(block, dst); };
  }
  std::vector<std::vector<uint64_t>> layers;
  if (!blocks.empty()) layers.push_back(std::move(blocks));
  LSIFS_RETURN_IF_ERROR(
      AssembleLsi(catalog, *base, key_info, key, layers, options, &out->manifest, &out->stats));
  EvictAfterPublish(catalog, context, out->manifest.lsi_id);
  return Status::Ok();
}

Status Restore(const Catalog& catalog, const KeyInfo& key_info, const SecretKey& key,
               const std::string& volume, uint64_t snapshot, const AssembleFn& assemble,
               PreassembleResult* out) {
  PreassembleRequest request;
  request.volume = volume;
  request.snapshot = snapshot;
  request.priority = Priority::kHigh;
  // A fresh LSI may be dropped between finding and delivering it: then a
  // new one is made.
  for (int attempt = 0;; ++attempt) {
    LSIFS_RETURN_IF_ERROR(assemble(request, out));
    // Pinned while it is delivered: no eviction or drop can take it between.
    std::unique_ptr<LsiPin> pin;
    Status s = catalog.Pin(out->manifest.lsi_id, key_info, key, &pin);
    if (s.ok()) {
      s = catalog.Deliver(out->manifest.lsi_id, key_info, key, /*alias=*/snapshot == 0,
                          static_cast<int64_t>(std::time(nullptr)));
    }
    catalog.Unpin(std::move(pin));
    if (s.ok() || !s.IsNotFound() || attempt == 1) return s;
  }
}

}  // namespace lsifs
