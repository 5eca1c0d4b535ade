// Helpers shared by the unit tests: temporary folders, images, stores.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/catalog/catalog.h"
#include "core/origin/origin.h"
#include "core/origin/snapshot.h"
#include "core/store/store.h"
#include "core/util/encoding.h"

namespace lsifs::testing {

// A fresh folder under $TMPDIR, removed with everything in it on scope exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void RemoveTree(const std::string& path);
Bytes ReadFileBytes(const std::string& path);
void WriteFileBytes(const std::string& path, ByteSpan data);
// Deterministic pseudo-random bytes.
Bytes PseudoRandom(size_t n, uint64_t seed);
// Runs a shell command; returns its exit status.
int RunShell(const std::string& command);
// A sorted listing of every file under `root` with its size and mtime, to
// check that a failed operation left a tree unchanged.
std::vector<std::string> TreeListing(const std::string& root);

// A store in `dir`/store with the given block size.
std::unique_ptr<Store> MakeStore(const TempDir& dir, uint32_t block_size = 64 * 1024);
// An origin that counts what crosses it: blocks and requests.
class CountingOrigin : public Origin {
 public:
  explicit CountingOrigin(Origin& inner) : inner_(inner) {}
  Status OpenSnapshot(const std::string& volume, uint64_t id,
                      std::unique_ptr<OriginSnapshot>* out) override {
    std::unique_ptr<OriginSnapshot> snap;
    LSIFS_RETURN_IF_ERROR(inner_.OpenSnapshot(volume, id, &snap));
    *out = std::make_unique<Counted>(std::move(snap), this);
    return Status::Ok();
  }
  std::atomic<uint64_t> blocks{0};
  std::atomic<uint64_t> requests{0};

 private:
  class Counted : public OriginSnapshot {
   public:
    Counted(std::unique_ptr<OriginSnapshot> inner, CountingOrigin* counts)
        : inner_(std::move(inner)), counts_(counts) {}
    const SnapshotInfo& info() const override { return inner_->info(); }
    const std::vector<uint64_t>& present() const override { return inner_->present(); }
    Status Fetch(std::span<const uint64_t> blocks, std::span<uint8_t* const> outs) override {
      counts_->blocks += blocks.size();
      ++counts_->requests;
      return inner_->Fetch(blocks, outs);
    }

   private:
    std::unique_ptr<OriginSnapshot> inner_;
    CountingOrigin* counts_;
  };
  Origin& inner_;
};

// The origin's keys of a store, from its provider key.
std::unique_ptr<OriginKeys> OriginKeysOf(const Store& store);
// One extension key as the keys a reader holds (no rotation under way).
ExtensionKeys KeysOf(const KeyInfo& info, const SecretKey& key);

// What most core tests start from: a store of 4 KiB blocks, its origin
// (counted), its catalog, and the key of extension "site-a". Failures to
// set it up throw.
class StoreTest : public ::testing::Test {
 public:
  static constexpr uint32_t kBlock = 4096;

 protected:
  StoreTest();
  // Writes `image` and imports it as a new snapshot of `volume`; its id.
  uint64_t ImportBytes(const std::string& volume, const Bytes& image);

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<OriginKeys> keys_;
  std::unique_ptr<LocalOrigin> local_;
  std::unique_ptr<CountingOrigin> origin_;
  std::unique_ptr<Catalog> catalog_;
  KeyInfo info_;
  SecretKey key_;
};

}  // namespace lsifs::testing
