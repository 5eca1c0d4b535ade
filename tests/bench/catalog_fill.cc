// B7 (BENCHMARKS.md): fills a store's catalog with many LSIs, fast, so that
// scale_bench.sh can time catalog operations (lsictl lsi list, restore,
// mounting lsifs) on 10^3 and 10^4 LSIs.
//
//   catalog_fill STORE -e EXT -v VOLUME --count N [--layer-blocks K]
//                [--deliver-every D] [--spread SECONDS]
//
// Each LSI is made by the assembler's own AssembleLsi (a delta layer of K
// present blocks of VOLUME's latest snapshot, sealed for EXT, published
// through Catalog::Publish like any LSI), labelled strategy "replay" (or
// "none" when K is 0): a baseline, which a restore never reuses, so that
// `lsictl restore` on the filled store always takes the same path. Why not
// `lsictl preassemble` N times: every preassemble lists the whole catalog
// (eviction after publishing), so filling 10^4 that way takes hours.
//
// Every D-th LSI is delivered to EXT (the last one as VOLUME.img). The
// delivery record is written once, with the record's own encoder and under
// its lock, instead of by N calls of Catalog::Deliver: each of those
// rewrites the whole record and checks every earlier entry's files, which
// is what a restore costs on a big catalog (timed by scale_bench.sh), not
// what filling one should.
//
// --spread S: creation (and delivery) times S seconds apart, the newest now,
// as if the LSIs had been made over N*S seconds; 0 (default): as made, a
// burst within a few seconds. The TTL is a week from creation.
//
// Prints one JSON line: {"lsis": N, "delivered": M, "seconds": T}.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "core/assembler/assemble.h"
#include "core/catalog/catalog.h"
#include "core/catalog/delivery_record.h"
#include "core/catalog/record_lock.h"
#include "core/lsi/manifest.h"
#include "core/origin/origin.h"
#include "core/origin/snapshot.h"
#include "core/store/store.h"
#include "core/util/file.h"

using namespace lsifs;

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "catalog_fill: %s\n", what.c_str());
  std::exit(1);
}

void Check(const Status& s, const std::string& doing) {
  if (!s.ok()) Die(doing + ": " + s.message());
}

uint64_t Number(const char* text, const char* name) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') Die(std::string(name) + " must be a number");
  return v;
}

constexpr int64_t kTtl = 7 * 86400;

}  // namespace

int main(int argc, char** argv) {
  std::string store_path, extension, volume;
  uint64_t count = 0, layer_blocks = 4, deliver_every = 2, spread = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "-e") {
      extension = next();
    } else if (a == "-v") {
      volume = next();
    } else if (a == "--count") {
      count = Number(next(), "--count");
    } else if (a == "--layer-blocks") {
      layer_blocks = Number(next(), "--layer-blocks");
    } else if (a == "--deliver-every") {
      deliver_every = Number(next(), "--deliver-every");
    } else if (a == "--spread") {
      spread = Number(next(), "--spread");
    } else if (!a.empty() && a[0] != '-' && store_path.empty()) {
      store_path = a;
    } else {
      Die("unknown argument " + a +
          " (usage: catalog_fill STORE -e EXT -v VOLUME --count N [--layer-blocks K] "
          "[--deliver-every D] [--spread SECONDS])");
    }
  }
  if (store_path.empty() || extension.empty() || volume.empty() || count == 0) {
    Die("usage: catalog_fill STORE -e EXT -v VOLUME --count N [--layer-blocks K] "
        "[--deliver-every D] [--spread SECONDS]");
  }
  const auto started = std::chrono::steady_clock::now();

  std::unique_ptr<Store> store;
  Check(Store::Open(store_path, &store), "opening the store");
  KeyInfo info;
  SecretKey key;
  Check(store->keyring().Load(extension, &info, &key), "loading the key of " + extension);
  SecretKey provider;
  Check(store->LoadProviderKey(&provider), "loading the provider key");
  const OriginKeys origin_keys = OriginKeys::Derive(provider);
  std::unique_ptr<Catalog> catalog;
  Check(Catalog::Open(*store, &catalog), "opening the catalog");
  std::vector<SnapshotInfo> snaps;
  Check(ListSnapshots(*store, origin_keys, volume, &snaps), "listing the snapshots");
  if (snaps.empty()) Die("volume '" + volume + "' has no snapshot");
  LocalOrigin origin(*store, origin_keys);
  std::unique_ptr<OriginSnapshot> base;
  Check(origin.OpenSnapshot(volume, snaps.back().id, &base), "opening the latest snapshot");
  const std::vector<uint64_t>& present = base->present();
  if (layer_blocks > present.size()) Die("--layer-blocks is more than the present blocks");

  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  AssembleOptions options;
  options.strategy = layer_blocks > 0 ? "replay" : "none";
  options.ttl = kTtl;
  std::vector<std::pair<uint64_t, int64_t>> delivered;  // LSI, delivery time
  for (uint64_t i = 0; i < count; ++i) {
    // A different window of the present blocks for each LSI's layer.
    std::vector<std::vector<uint64_t>> layers;
    if (layer_blocks > 0) {
      std::vector<uint64_t> blocks;
      const size_t from = static_cast<size_t>((i * layer_blocks) % present.size());
      for (uint64_t k = 0; k < layer_blocks; ++k)
        blocks.push_back(present[(from + k) % present.size()]);
      std::sort(blocks.begin(), blocks.end());
      blocks.erase(std::unique(blocks.begin(), blocks.end()), blocks.end());
      layers.push_back(std::move(blocks));
    }
    Manifest m;
    Check(AssembleLsi(*catalog, *base, info, key, layers, options, &m), "assembling an LSI");
    int64_t created = m.created;
    if (spread > 0) {
      // Rewritten through the same authenticated writer, as a key rotation
      // rewrites a manifest.
      created = now - static_cast<int64_t>((count - 1 - i) * spread);
      m.created = created;
      m.expires = created + kTtl;
      Check(WriteManifest(store->tmp_dir(), store->manifest_path(m.lsi_id), m, info, key,
                          /*replace=*/true),
            "rewriting a manifest's times");
    }
    if (deliver_every > 0 && (i + 1) % deliver_every == 0)
      delivered.emplace_back(m.lsi_id, created);
    if ((i + 1) % 1000 == 0) {
      std::fprintf(stderr, "catalog_fill: %llu of %llu LSIs\n",
                   static_cast<unsigned long long>(i + 1), static_cast<unsigned long long>(count));
    }
  }

  if (!delivered.empty()) {
    RecordLock lock;
    Check(lock.Acquire(store->deliveries_lock_path(info.name)), "locking the delivery record");
    const std::string path = store->deliveries_path(info.name);
    DeliveryRecord r;
    Check(ReadDeliveryRecord(path, &info, &key, &r), "reading the delivery record");
    for (const auto& [id, t] : delivered) {
      const int64_t when = spread > 0 ? t : now;
      r.entries.push_back({id, volume, when, when, 1});
      r.NoteRestore(volume, when);
    }
    r.FindVolume(volume)->alias_lsi = delivered.back().first;
    r.generation = NextGeneration(r.generation);
    Bytes data = EncodeDeliveryRecord(r, key);
    Check(WriteFileAtomically(store->tmp_dir(), path, data, 0644, /*replace=*/true),
          "writing the delivery record");
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("{\"lsis\": %llu, \"delivered\": %zu, \"seconds\": %.3f}\n",
              static_cast<unsigned long long>(count), delivered.size(), seconds);
  return 0;
}
