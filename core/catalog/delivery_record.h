// The delivery record of one extension (STORE/catalog/EXT.deliveries): what
// restores delivered to it, which LSI is each volume's <volume>.img, and the
// restore history TTLs are computed from. Internal to core/catalog.
//
// Layout (little-endian; documented in man/lsi.5):
//
//   magic "LSIFSDLV" | version u32 = 1 | extension str16 | key_id u64 |
//   generation u64 | volumes u32 |
//     volume str16 | alias_lsi u64 (0: none) | restores u32 |
//     last_restore i64 (unix s) | mean_interval_s u64 (seconds, decayed) |
//   entries u32 |
//     lsi u64 | volume str16 | first_delivered i64 | last_delivered i64 |
//     deliveries u32 |
//   mac[32]  HMAC-SHA256 of all before it, under a key derived from the
//            extension key ("lsifs delivery record key v1")
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/crypto/aead.h"
#include "core/crypto/keyfile.h"
#include "core/util/status.h"

namespace lsifs {

struct VolumeDeliveries {
  std::string volume;
  uint64_t alias_lsi = 0;
  uint32_t restores = 0;
  int64_t last_restore = 0;
  uint64_t mean_interval_s = 0;
};

struct DeliveryEntry {
  uint64_t lsi_id = 0;
  std::string volume;
  int64_t first_delivered = 0;
  int64_t last_delivered = 0;
  uint32_t deliveries = 0;
};

struct DeliveryRecord {
  std::string extension;
  uint64_t key_id = 0;
  uint64_t generation = 0;
  std::vector<VolumeDeliveries> volumes;
  std::vector<DeliveryEntry> entries;

  VolumeDeliveries* FindVolume(const std::string& volume);
  const VolumeDeliveries* FindVolume(const std::string& volume) const;
  // Notes one restore of `volume` at `now` (the decayed interval moves a
  // third of the way toward the latest gap).
  void NoteRestore(const std::string& volume, int64_t now);
};

// The generation a record written after one of `generation` gets. They
// grow with the clock as well as by one, so that a record started anew
// still counts as newer than any a mount has seen.
uint64_t NextGeneration(uint64_t generation);

inline constexpr size_t kMaxDeliveryRecordSize = 64u << 20;

Bytes EncodeDeliveryRecord(const DeliveryRecord& record, const SecretKey& extension_key);
// Parses and authenticates; Permission when it belongs to another key.
// Without a key (null), parses only: for listings and eviction, never for
// what a mount shows.
Status DecodeDeliveryRecord(const std::string& path, ByteSpan data, const KeyInfo* key_info,
                            const SecretKey* extension_key, DeliveryRecord* out);
// Reads the record at `path` the same way; an absent file is an empty
// record (of `key_info`'s extension when given).
Status ReadDeliveryRecord(const std::string& path, const KeyInfo* key_info,
                          const SecretKey* extension_key, DeliveryRecord* out);

}  // namespace lsifs
