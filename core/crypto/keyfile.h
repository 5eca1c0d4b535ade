// Key files: the provider key of a store and one key per extension, each in
// its own small text file (format in man/lsi.5), created mode 0600 and
// refused when group or others may read it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/crypto/aead.h"
#include "core/util/status.h"

namespace lsifs {

enum class KeyKind { kProvider, kExtension };

struct KeyInfo {
  KeyKind kind = KeyKind::kExtension;
  std::string name;  // the extension's name, or "provider"
  uint64_t id = 0;   // random, never reused; names the key in layers and messages
  std::string path;
};

// Describes the key for messages: "extension key 'site-a' (id 0123...)".
std::string DescribeKey(const KeyInfo& info);

Status WriteKeyFile(const std::string& tmp_dir, const std::string& path, const KeyInfo& info,
                    const SecretKey& key);
// Reads a key file. Permission when the file is group/world accessible (the
// message says how to fix it); Corruption when it is not a valid key file.
Status ReadKeyFile(const std::string& path, KeyInfo* info, SecretKey* key);

// The extension keys of a store: one file per extension in `dir`.
class Keyring {
 public:
  Keyring(std::string dir, std::string tmp_dir)
      : dir_(std::move(dir)), tmp_dir_(std::move(tmp_dir)) {}

  // Creates a new random key for `extension`; kExists if it already has one.
  Status Create(const std::string& extension, KeyInfo* info) const;
  // kNotFound (saying how to create it) when the extension has no key.
  Status Load(const std::string& extension, KeyInfo* info, SecretKey* key) const;
  // Every key's public facts, sorted by name; never the key bytes.
  // A key file that cannot be used fails the listing, unless `unusable` is
  // given: then it is left out and described there, so that one bad file
  // does not hide the others.
  Status List(std::vector<KeyInfo>* keys, std::vector<std::string>* unusable = nullptr) const;

  std::string PathFor(const std::string& extension) const {
    return dir_ + "/" + extension + ".key";
  }

 private:
  std::string dir_;
  std::string tmp_dir_;
};

}  // namespace lsifs
