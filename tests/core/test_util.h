// Helpers shared by the unit tests: temporary folders, images, stores.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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
// The origin's keys of a store, from its provider key.
std::unique_ptr<OriginKeys> OriginKeysOf(const Store& store);

}  // namespace lsifs::testing
