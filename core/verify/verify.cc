#include "core/verify/verify.h"

#include <algorithm>

#include "core/crypto/aead.h"
#include "core/lsi/layer.h"
#include "core/lsi/manifest.h"
#include "core/util/file.h"
#include "core/util/hex.h"

namespace lsifs {
namespace {

// More damaged blocks than this are counted, not listed one by one.
constexpr size_t kListedBlockProblems = 10;

class Checker {
 public:
  Checker(const Store& store, const OriginKeys& keys, const VerifyProgress& progress)
      : store_(store), keys_(keys), progress_(progress) {}

  void Snapshot(const std::string& volume, uint64_t id, VerifyResult* r) {
    r->kind = VerifyResult::Kind::kSnapshot;
    r->id = id;
    r->volume = volume;
    std::unique_ptr<SnapshotBlocks> snap;
    Status s = SnapshotBlocks::Open(store_, keys_, volume, id, &snap);
    if (!s.ok()) {
      r->problems.push_back(s.message());
      return;
    }
    const uint32_t bs = snap->info().block_size;
    Bytes record(bs + kSealOverhead), plain(bs);
    Aead aead;
    size_t bad = 0;
    for (const BlockLocation& loc : snap->map()) {
      Status b = snap->ReadBlock(loc, aead, record, plain);
      ++r->blocks_checked;
      Tick();
      if (!b.ok() && bad++ < kListedBlockProblems) {
        r->problems.push_back(b.message());
      }
    }
    CountRest(bad, r);
  }

  void Lsi(uint64_t id, VerifyResult* r) {
    r->kind = VerifyResult::Kind::kLsi;
    r->id = id;
    const std::string path = store_.manifest_path(id);
    Manifest head;
    Status s = PeekManifest(path, &head);
    if (!s.ok()) {
      r->problems.push_back(s.message());
      return;
    }
    r->volume = head.volume;
    ExtensionKeys keys;
    s = store_.keyring().LoadKeys(head.extension, &keys);
    if (!s.ok()) {
      r->problems.push_back("no key of the store opens it: " + s.message());
      return;
    }
    Manifest m;
    s = keys.WithEither([&](const KeyInfo& info, const SecretKey& key) {
      return ReadManifest(path, info, key, &m);
    });
    if (!s.ok()) {
      r->problems.push_back(s.message());
      return;
    }
    if (m.lsi_id != id) r->problems.push_back("its manifest names another LSI");
    SnapshotInfo base;
    s = ReadSnapshotInfo(store_.snapshot_map_path(m.volume, m.snapshot), keys_, &base);
    if (!s.ok()) r->problems.push_back("its base snapshot: " + s.message());
    size_t bad = 0;
    for (const ManifestLayer& ml : m.layers) {
      std::unique_ptr<LayerReader> layer;
      const std::string name = "layer " + FormatId(ml.layer_id);
      s = keys.WithEither([&](const KeyInfo& info, const SecretKey& key) {
        return LayerReader::Open(store_.layer_path(ml.layer_id), info, key, &layer);
      });
      if (!s.ok()) {
        r->problems.push_back(name + ": " + s.message());
        continue;
      }
      const LayerHeader& h = layer->header();
      std::vector<uint64_t> sorted = layer->blocks();
      std::sort(sorted.begin(), sorted.end());
      if (h.layer_id != ml.layer_id || h.volume != m.volume || h.snapshot != m.snapshot ||
          h.block_size != m.block_size || sorted != ml.blocks) {
        r->problems.push_back(name + ": does not hold what the manifest lists (swapped?)");
        continue;
      }
      Bytes record(layer->record_size()), plain(h.block_size);
      Aead aead;
      for (size_t slot = 0; slot < layer->blocks().size(); ++slot) {
        Status b = layer->ReadBlock(slot, layer->blocks()[slot], aead, record, plain);
        ++r->blocks_checked;
        Tick();
        if (!b.ok() && bad++ < kListedBlockProblems) {
          r->problems.push_back(b.message());
        }
      }
    }
    CountRest(bad, r);
  }

  void SetTotal(uint64_t total) { total_ = total; }

 private:
  void Tick() {
    if (progress_ && (++done_ % 256 == 0 || done_ == total_)) progress_(done_, total_);
  }
  static void CountRest(size_t bad, VerifyResult* r) {
    if (bad > kListedBlockProblems) {
      r->problems.push_back("and " + std::to_string(bad - kListedBlockProblems) +
                            " more damaged blocks");
    }
  }

  const Store& store_;
  const OriginKeys& keys_;
  const VerifyProgress& progress_;
  uint64_t done_ = 0, total_ = 0;
};

}  // namespace

Status Verify(const Store& store, const OriginKeys& keys, const std::string& target,
              const VerifyProgress& progress, std::vector<VerifyResult>* out) {
  out->clear();
  // Every snapshot file, the damaged ones too: they are what is looked for.
  struct SnapshotRef {
    std::string volume;
    uint64_t id;
  };
  std::vector<SnapshotRef> snapshots;
  for (const auto& volume : ListFileNames(store.snapshots_dir())) {
    for (const auto& n : ListFileNames(store.volume_dir(volume))) {
      auto id = ParseId(n.substr(0, 16));
      if (id && n.size() == 21 && n.compare(16, 5, ".snap") == 0)
        snapshots.push_back({volume, *id});
    }
  }
  std::vector<uint64_t> lsis = store.ListIds(StoreFile::kManifest);
  if (!target.empty()) {
    auto id = ParseId(target);
    if (!id) {
      return Status::InvalidArgument("'" + target +
                                     "' is not a valid id (16 hex digits, not all zeros)");
    }
    std::erase_if(snapshots, [&](const SnapshotRef& s) { return s.id != *id; });
    std::erase_if(lsis, [&](uint64_t l) { return l != *id; });
    if (snapshots.empty() && lsis.empty()) {
      return Status::NotFound("no snapshot or LSI has id " + target +
                              " (see: lsictl snapshots, lsictl lsi list)");
    }
  }
  // The total for the progress bar: what the listings say there is.
  uint64_t total = 0;
  for (const auto& s : snapshots) {
    SnapshotInfo info;
    if (ReadSnapshotInfo(store.snapshot_map_path(s.volume, s.id), keys, &info).ok()) {
      total += info.present_blocks;
    }
  }
  for (uint64_t id : lsis) {
    Manifest m;
    if (PeekManifest(store.manifest_path(id), &m).ok()) total += m.delta_blocks();
  }
  Checker check(store, keys, progress);
  check.SetTotal(total);
  for (const auto& s : snapshots) {
    out->emplace_back();
    check.Snapshot(s.volume, s.id, &out->back());
  }
  for (uint64_t id : lsis) {
    out->emplace_back();
    check.Lsi(id, &out->back());
  }
  return Status::Ok();
}

}  // namespace lsifs
