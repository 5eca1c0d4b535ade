// What the fuzz targets share: the parsers under test read files, so each
// input is written to a memory file and read back through its /proc path;
// keys come from the previous-format store in tests/data (its files are the
// seeds), extracted once per process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/crypto/keyfile.h"
#include "core/origin/snapshot.h"
#include "core/store/store.h"

namespace lsifs::fuzz {

// A memory file holding exactly `data`; path() reads it like a regular file.
class MemoryFile {
 public:
  MemoryFile();
  ~MemoryFile();
  void Set(const uint8_t* data, size_t size);
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// The previous-format store, extracted once: its extension "site" and its
// origin keys.
struct Fixture {
  std::unique_ptr<Store> store;
  KeyInfo site_info;
  SecretKey site_key;
  std::unique_ptr<OriginKeys> origin_keys;
};
const Fixture& TheFixture();

}  // namespace lsifs::fuzz
