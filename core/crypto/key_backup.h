// Backups of a store's provider key: losing provider.key loses every
// snapshot, so it can be exported wrapped under a passphrase and imported
// into the store again (lsictl key export-provider / import-provider).
//
// A backup is a small JSON document (format in man/lsi.5):
//
//   {"format": "lsifs-provider-backup", "version": 1,
//    "key_id": "<16 hex>",
//    "kdf": {"name": "scrypt", "n": 65536, "r": 8, "p": 1, "salt": "<hex>"},
//    "sealed": "<hex: nonce | AES-256-GCM(provider key) | tag>"}
//
// The wrapping key is scrypt(passphrase, salt); the sealed record's
// associated data binds it to the format and the key id, so a backup whose
// id was edited does not open.
#pragma once

#include <cstdint>
#include <string>

#include "core/crypto/aead.h"
#include "core/crypto/keyfile.h"
#include "core/util/status.h"

namespace lsifs {

struct ScryptCost {
  uint64_t n = 1 << 16;  // 64 MiB of memory with r = 8, about a quarter second
  uint64_t r = 8;
  uint64_t p = 1;
};

// The backup of `key` (whose facts are `info`) under `passphrase`.
Status ExportProviderKey(const KeyInfo& info, const SecretKey& key, const std::string& passphrase,
                         const ScryptCost& cost, std::string* backup);
// Opens a backup. Permission when the passphrase is wrong (or the backup
// was altered: the two cannot be told apart); Corruption when it is not a
// backup lsifs can read.
Status ImportProviderKey(const std::string& backup, const std::string& passphrase, KeyInfo* info,
                         SecretKey* key);

}  // namespace lsifs
