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

// The checks a file holding a secret passes before it is read: no
// permission for group or others, owned by this user (or root), in a folder
// that others cannot write to. Permission otherwise, naming the file as
// `what` ("key file") and the command that fixes it.
Status CheckSecretFile(const std::string& path, const std::string& what);

Status WriteKeyFile(const std::string& tmp_dir, const std::string& path, const KeyInfo& info,
                    const SecretKey& key);
// Reads a key file. Permission when the file is group/world accessible (the
// message says how to fix it); Corruption when it is not a valid key file.
Status ReadKeyFile(const std::string& path, KeyInfo* info, SecretKey* key);

// What a reader of one extension's files holds: its key and, while a
// rotation is under way or was interrupted (lsictl key rotate), the next
// one. A file made with either is read; files are always written with the
// key (the rotation rekeys what was written meanwhile before it finishes).
struct ExtensionKeys {
  KeyInfo info;
  SecretKey key;
  bool has_next = false;
  KeyInfo next_info;
  SecretKey next_key;

  // Calls `use` with the key, then, when the file turned out to be made
  // with another key (Permission), with the next one.
  template <typename Use>
  Status WithEither(Use use) const {
    Status s = use(info, key);
    if (s.code() == Status::Code::kPermission && has_next) {
      Status with_next = use(next_info, next_key);
      if (with_next.code() != Status::Code::kPermission) return with_next;
    }
    return s;
  }
};

// The extension keys of a store: one file per extension in `dir`.
class Keyring {
 public:
  Keyring(std::string dir, std::string tmp_dir)
      : dir_(std::move(dir)), tmp_dir_(std::move(tmp_dir)) {}

  // Creates a new random key for `extension`; kExists if it already has one.
  Status Create(const std::string& extension, KeyInfo* info) const;
  // kNotFound (saying how to create it) when the extension has no key.
  Status Load(const std::string& extension, KeyInfo* info, SecretKey* key) const;
  // The key and, while a rotation is unfinished, the next one.
  Status LoadKeys(const std::string& extension, ExtensionKeys* keys) const;

  // Key rotation (cryptsetup's luksChangeKey): the next key is made (or,
  // when an interrupted rotation left one, read back) while the key stays
  // in force; FinishRotation puts it in the key's place, once nothing is
  // left under the old one. `resumed` says the next key was already there.
  Status BeginRotation(const std::string& extension, KeyInfo* next_info, SecretKey* next_key,
                       bool* resumed) const;
  // Puts the next key in place; refused unless it is `next_id` (another
  // rotation's next key must never take the place of this one's).
  Status FinishRotation(const std::string& extension, uint64_t next_id) const;
  // Removes the extension's key (and an unfinished rotation's next key).
  Status Remove(const std::string& extension) const;

  // Every key's public facts, sorted by name; never the key bytes.
  // A key file that cannot be used fails the listing, unless `unusable` is
  // given: then it is left out and described there, so that one bad file
  // does not hide the others.
  Status List(std::vector<KeyInfo>* keys, std::vector<std::string>* unusable = nullptr) const;

  std::string PathFor(const std::string& extension) const {
    return dir_ + "/" + extension + ".key";
  }
  // Not a *.key name: a listing never takes it for an extension's key.
  std::string NextPathFor(const std::string& extension) const {
    return dir_ + "/" + extension + ".key.next";
  }
  bool RotationPending(const std::string& extension) const;
  // Held for a whole rotation: two at once would each retire the other's key.
  std::string RotationLockPathFor(const std::string& extension) const {
    return dir_ + "/" + extension + ".rotation.lock";
  }

 private:
  std::string dir_;
  std::string tmp_dir_;
};

}  // namespace lsifs
