// Delta layers: immutable files of pre-fetched blocks for one extension
// (format in man/lsi.5). Each layer has its own random data key, wrapped by
// the extension key; each block is a sealed record bound to (layer, volume,
// snapshot, block number); the index of block numbers is sealed too, so an
// entry deleted, added or moved is detected. Records appear in the order the
// writer added them (expected first access), not in block order.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/crypto/aead.h"
#include "core/crypto/keyfile.h"
#include "core/store/store.h"
#include "core/util/encoding.h"
#include "core/util/file.h"
#include "core/util/status.h"

namespace lsifs {

struct LayerHeader {
  uint64_t layer_id = 0;
  std::string volume;
  uint64_t snapshot = 0;  // the base snapshot the blocks belong to
  uint32_t block_size = 0;
  std::string extension;
  uint64_t key_id = 0;  // the extension key that wraps the data key
  uint64_t block_count = 0;
};

class LayerWriter {
 public:
  // Starts a layer in `tmp_dir`, to be renamed to `path` on Commit().
  // header.block_count is filled in by the writer.
  Status Open(const std::string& tmp_dir, const std::string& path, const LayerHeader& header,
              const KeyInfo& key_info, const SecretKey& extension_key);
  // Adds one block (block_size bytes of plaintext); each block at most once.
  Status Add(uint64_t block, ByteSpan plaintext);
  // The same in two steps, so that several threads can seal while one
  // writes: Seal fills `record` (record_size() bytes) with `aead` (one per
  // thread) and may run concurrently; AddSealed appends such records, for
  // `blocks` in order.
  size_t record_size() const { return header_.block_size + kSealOverhead; }
  Status Seal(Aead& aead, uint64_t block, ByteSpan plaintext, MutableByteSpan record) const;
  Status AddSealed(std::span<const uint64_t> blocks, ByteSpan records);
  Status Commit();
  const LayerHeader& header() const { return header_; }

 private:
  AtomicFileWriter out_;
  LayerHeader header_;
  const SecretKey* extension_key_ = nullptr;
  SecretKey data_key_;
  Aead aead_;
  Bytes record_;
  std::vector<uint64_t> blocks_;
  uint64_t header_size_ = 0;
};

class LayerReader {
 public:
  // Opens and verifies a layer: header, wrapped key, size, sealed index.
  // Permission (naming both keys) when the layer belongs to another key.
  static Status Open(const std::string& path, const KeyInfo& key_info,
                     const SecretKey& extension_key, std::unique_ptr<LayerReader>* out);

  const LayerHeader& header() const { return header_; }
  const std::string& path() const { return path_; }
  // The layer's blocks in record order (slot i holds blocks()[i]).
  const std::vector<uint64_t>& blocks() const { return blocks_; }
  uint64_t record_size() const { return header_.block_size + kSealOverhead; }
  uint64_t RecordOffset(uint64_t slot) const { return header_size_ + slot * record_size(); }

  // Reads and opens the record in `slot`, which must hold `block`; `record`
  // is scratch of record_size() bytes; `out` receives block_size bytes.
  // Thread-safe.
  Status ReadBlock(uint64_t slot, uint64_t block, Aead& aead, MutableByteSpan record,
                   MutableByteSpan out) const;

 private:
  Status OpenRecord(uint64_t block, Aead& aead, ByteSpan record, MutableByteSpan out) const;

  friend Status RewrapLayer(const std::string&, const std::string&, const KeyInfo&,
                            const SecretKey&, const KeyInfo&, const SecretKey&);

  std::string path_;
  File file_;
  LayerHeader header_;
  uint64_t header_size_ = 0;
  SecretKey data_key_;
  std::vector<uint64_t> blocks_;
};

// Checks, without a key, that the layer file at `path` is exactly as large
// as a layer of `blocks` blocks of `block_size` bytes is: one truncated,
// extended or swapped for another layer's file is found this way (for
// listings); a damaged record needs the key (lsictl verify). NotFound when
// the file is missing.
Status CheckLayerFile(const std::string& path, uint64_t blocks, uint32_t block_size);

// Rewraps a layer's data key under a new extension key (key rotation): a new
// header, the records and index copied byte for byte, renamed over the old
// file. The data is never decrypted or re-encrypted.
Status RewrapLayer(const std::string& tmp_dir, const std::string& path, const KeyInfo& old_info,
                   const SecretKey& old_key, const KeyInfo& new_info, const SecretKey& new_key);

}  // namespace lsifs
