#include "core/lsi/layer.h"

#include <algorithm>
#include <cstring>

#include "core/util/hex.h"
#include "core/util/names.h"

namespace lsifs {
namespace {

constexpr char kMagic[8] = {'L', 'S', 'I', 'F', 'S', 'L', 'Y', 'R'};
constexpr char kEndMagic[8] = {'L', 'S', 'I', 'F', 'S', 'E', 'N', 'D'};
constexpr uint32_t kVersion = 1;
constexpr size_t kWrappedKeySize = kKeySize + kSealOverhead;
constexpr size_t kMaxHeaderSize =
    8 + 4 + 4 + 8 + (2 + kMaxNameLength) * 2 + 8 + 4 + 8 + 8 + kWrappedKeySize;
constexpr size_t kEndSize = 8;

// The header without the wrapped key; it is the AAD of the key wrap, which
// therefore authenticates every header field.
Bytes EncodeHeaderFields(const LayerHeader& h) {
  ByteWriter w;
  w.PutBytes(AsBytes(std::string_view(kMagic, 8)));
  w.PutU32(kVersion);
  w.PutU32(0);  // header size, patched below
  w.PutU64(h.layer_id);
  w.PutString16(h.volume);
  w.PutU64(h.snapshot);
  w.PutU32(h.block_size);
  w.PutString16(h.extension);
  w.PutU64(h.key_id);
  w.PutU64(h.block_count);
  EncodeFixed32(w.bytes().data() + 12, static_cast<uint32_t>(w.size() + kWrappedKeySize));
  return std::move(w.bytes());
}

// The extension key is only ever used through derived keys: one for
// wrapping layer keys, another for manifests.
SecretKey WrapKey(const SecretKey& extension_key) {
  return DeriveKey(extension_key, "lsifs layer key wrap v1");
}

Bytes EncodeHeader(const LayerHeader& h, const SecretKey& extension_key,
                   const SecretKey& data_key) {
  Bytes header = EncodeHeaderFields(h);
  size_t fields = header.size();
  header.resize(fields + kWrappedKeySize);
  Aead aead;
  (void)aead.Seal(WrapKey(extension_key), ByteSpan(header.data(), fields), data_key.span(),
                  MutableByteSpan(header.data() + fields, kWrappedKeySize));
  return header;
}

Bytes IndexAad(const LayerHeader& h) {
  ByteWriter w;
  w.PutBytes(AsBytes("lsifs layer index v1"));
  w.PutU64(h.layer_id);
  w.PutU64(h.block_count);
  return std::move(w.bytes());
}

size_t BlockAad(const LayerHeader& h, uint64_t block, std::array<uint8_t, 160>* aad) {
  static constexpr char kLabel[] = "lsifs layer block v1";
  uint8_t* p = aad->data();
  std::memcpy(p, kLabel, sizeof kLabel - 1);
  p += sizeof kLabel - 1;
  EncodeFixed64(p, h.layer_id);
  p += 8;
  size_t n = std::min(h.volume.size(), kMaxNameLength);
  p[0] = static_cast<uint8_t>(n);
  p[1] = static_cast<uint8_t>(n >> 8);
  std::memcpy(p + 2, h.volume.data(), n);
  p += 2 + n;
  EncodeFixed64(p, h.snapshot);
  EncodeFixed64(p + 8, block);
  p += 16;
  return static_cast<size_t>(p - aad->data());
}

uint64_t IndexSize(uint64_t count) {
  return kSealOverhead + 8 * count;
}

}  // namespace

Status LayerWriter::Open(const std::string& tmp_dir, const std::string& path,
                         const LayerHeader& header, const KeyInfo& key_info,
                         const SecretKey& extension_key) {
  LSIFS_RETURN_IF_ERROR(ValidateName("volume", header.volume));
  LSIFS_RETURN_IF_ERROR(ValidateName("extension", key_info.name));
  if (header.block_size == 0) return Status::InvalidArgument("layer block size is zero");
  header_ = header;
  header_.extension = key_info.name;
  header_.key_id = key_info.id;
  header_.block_count = 0;
  extension_key_ = &extension_key;
  data_key_ = SecretKey::Random();
  record_.resize(header_.block_size + kSealOverhead);
  blocks_.clear();
  header_size_ = EncodeHeaderFields(header_).size() + kWrappedKeySize;
  LSIFS_RETURN_IF_ERROR(out_.Open(tmp_dir, path, 0644));
  // The header depends on the block count; it is written last, in place.
  return out_.Write(Bytes(header_size_, 0));
}

Status LayerWriter::Seal(Aead& aead, uint64_t block, ByteSpan plaintext,
                         MutableByteSpan record) const {
  if (plaintext.size() != header_.block_size || record.size() != record_size()) {
    return Status::InvalidArgument("layer block of the wrong size");
  }
  std::array<uint8_t, 160> aad;
  size_t aad_len = BlockAad(header_, block, &aad);
  return aead.Seal(data_key_, ByteSpan(aad.data(), aad_len), plaintext, record);
}

Status LayerWriter::AddSealed(std::span<const uint64_t> blocks, ByteSpan records) {
  if (records.size() != blocks.size() * record_size()) {
    return Status::InvalidArgument("sealed records do not match their blocks");
  }
  blocks_.insert(blocks_.end(), blocks.begin(), blocks.end());
  return out_.Write(records);
}

Status LayerWriter::Add(uint64_t block, ByteSpan plaintext) {
  LSIFS_RETURN_IF_ERROR(Seal(aead_, block, plaintext, record_));
  return AddSealed(std::span<const uint64_t>(&block, 1), record_);
}

Status LayerWriter::Commit() {
  std::vector<uint64_t> sorted = blocks_;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return Status::InvalidArgument("a block was added to the layer twice");
  }
  header_.block_count = blocks_.size();
  Bytes index_plain(8 * blocks_.size());
  for (size_t i = 0; i < blocks_.size(); ++i) EncodeFixed64(&index_plain[8 * i], blocks_[i]);
  Bytes index(IndexSize(blocks_.size()));
  LSIFS_RETURN_IF_ERROR(aead_.Seal(data_key_, IndexAad(header_), index_plain, index));
  LSIFS_RETURN_IF_ERROR(out_.Write(index));
  LSIFS_RETURN_IF_ERROR(out_.Write(AsBytes(std::string_view(kEndMagic, 8))));
  Bytes header = EncodeHeader(header_, *extension_key_, data_key_);
  LSIFS_RETURN_IF_ERROR(out_.file().PwriteAll(0, header));
  return out_.Commit();
}

Status CheckLayerFile(const std::string& path, uint64_t blocks, uint32_t block_size) {
  File f;
  LSIFS_RETURN_IF_ERROR(File::OpenRead(path, &f));
  uint64_t size = 0;
  LSIFS_RETURN_IF_ERROR(f.Size(&size).WithContext(path));
  uint8_t head[16];
  if (size < sizeof head || !f.PreadExact(0, MutableByteSpan(head, sizeof head)).ok() ||
      std::memcmp(head, kMagic, 8) != 0) {
    return Status::Corruption("layer " + path + ": not an lsifs layer");
  }
  const uint64_t expected = DecodeFixed32(head + 12) + blocks * (block_size + kSealOverhead) +
                            IndexSize(blocks) + kEndSize;
  if (size != expected) {
    return Status::Corruption("layer " + path + ": " + std::to_string(size) + " bytes where " +
                              std::to_string(blocks) + " blocks take " + std::to_string(expected) +
                              " (truncated, extended or swapped)");
  }
  return Status::Ok();
}

Status LayerReader::Open(const std::string& path, const KeyInfo& key_info,
                         const SecretKey& extension_key, std::unique_ptr<LayerReader>* out) {
  auto r = std::unique_ptr<LayerReader>(new LayerReader());
  r->path_ = path;
  auto corrupt = [&](const std::string& why) {
    return Status::Corruption("layer " + path + ": " + why);
  };
  LSIFS_RETURN_IF_ERROR(File::OpenRead(path, &r->file_));
  uint64_t file_size = 0;
  LSIFS_RETURN_IF_ERROR(r->file_.Size(&file_size));
  uint8_t head[kMaxHeaderSize];
  size_t head_len = static_cast<size_t>(std::min<uint64_t>(sizeof head, file_size));
  LSIFS_RETURN_IF_ERROR(r->file_.PreadExact(0, MutableByteSpan(head, head_len)).WithContext(path));
  if (head_len < 16 || std::memcmp(head, kMagic, 8) != 0) return corrupt("not an lsifs layer");
  ByteReader br(ByteSpan(head, head_len));
  br.GetBytes(8);
  uint32_t version = br.GetU32();
  if (version != kVersion) return UnsupportedVersion("layer " + path, version, 1, kVersion);
  uint32_t header_size = br.GetU32();
  LayerHeader& h = r->header_;
  h.layer_id = br.GetU64();
  h.volume = br.GetString16();
  h.snapshot = br.GetU64();
  h.block_size = br.GetU32();
  h.extension = br.GetString16();
  h.key_id = br.GetU64();
  h.block_count = br.GetU64();
  size_t fields_size = br.position();
  ByteSpan wrapped = br.GetBytes(kWrappedKeySize);
  if (!br.ok() || br.position() != header_size) return corrupt("truncated or malformed header");
  // Not authenticated yet: checked before a message below quotes them.
  if (!ValidateName("volume", h.volume).ok() || !ValidateName("extension", h.extension).ok()) {
    return corrupt("bad volume or extension name in its header");
  }

  if (h.key_id != key_info.id || h.extension != key_info.name) {
    KeyInfo owner;
    owner.kind = KeyKind::kExtension;
    owner.name = h.extension;
    owner.id = h.key_id;
    return Status::Permission("layer " + FormatId(h.layer_id) + " is encrypted for " +
                              DescribeKey(owner) + ", not for " + DescribeKey(key_info) +
                              "; refusing to read it");
  }
  {
    Aead aead;
    Status s = aead.Open(WrapKey(extension_key), ByteSpan(head, fields_size), wrapped,
                         MutableByteSpan(r->data_key_.mutable_data(), kKeySize));
    if (!s.ok()) {
      return corrupt("header failed authentication (corrupt, or the key file of " +
                     DescribeKey(key_info) + " holds another key)");
    }
  }
  if (!IsValidBlockSize(h.block_size)) return corrupt("bad block size");
  uint64_t record_size = h.block_size + kSealOverhead;
  if (h.block_count > file_size / (record_size + 8)) return corrupt("truncated or extended");
  uint64_t expected =
      header_size + h.block_count * record_size + IndexSize(h.block_count) + kEndSize;
  if (expected != file_size) return corrupt("truncated or extended");
  r->header_size_ = header_size;

  uint64_t index_offset = header_size + h.block_count * record_size;
  Bytes index(IndexSize(h.block_count) + kEndSize);
  LSIFS_RETURN_IF_ERROR(r->file_.PreadExact(index_offset, index).WithContext(path));
  if (std::memcmp(index.data() + index.size() - kEndSize, kEndMagic, kEndSize) != 0) {
    return corrupt("no end marker");
  }
  Bytes plain(8 * h.block_count);
  Aead aead;
  if (!aead.Open(r->data_key_, IndexAad(h), ByteSpan(index.data(), index.size() - kEndSize), plain)
           .ok()) {
    return corrupt("index failed authentication");
  }
  r->blocks_.resize(h.block_count);
  for (size_t i = 0; i < r->blocks_.size(); ++i) r->blocks_[i] = DecodeFixed64(&plain[8 * i]);
  std::vector<uint64_t> sorted = r->blocks_;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return corrupt("index names a block twice");
  }
  *out = std::move(r);
  return Status::Ok();
}

Status LayerReader::ReadBlock(uint64_t slot, uint64_t block, Aead& aead, MutableByteSpan record,
                              MutableByteSpan out) const {
  if (slot >= blocks_.size() || blocks_[slot] != block) {
    return Status::InvalidArgument("layer slot does not hold that block");
  }
  LSIFS_RETURN_IF_ERROR(file_.PreadExact(RecordOffset(slot), record));
  return OpenRecord(block, aead, record, out);
}

Status LayerReader::OpenRecord(uint64_t block, Aead& aead, ByteSpan record,
                               MutableByteSpan out) const {
  std::array<uint8_t, 160> aad;
  size_t aad_len = BlockAad(header_, block, &aad);
  if (!aead.Open(data_key_, ByteSpan(aad.data(), aad_len), record, out).ok()) {
    return Status::Corruption("layer " + FormatId(header_.layer_id) + " block " +
                              std::to_string(block) + ": authentication failed");
  }
  return Status::Ok();
}

Status RewrapLayer(const std::string& tmp_dir, const std::string& path, const KeyInfo& old_info,
                   const SecretKey& old_key, const KeyInfo& new_info, const SecretKey& new_key) {
  std::unique_ptr<LayerReader> reader;
  LSIFS_RETURN_IF_ERROR(LayerReader::Open(path, old_info, old_key, &reader));
  LayerHeader h = reader->header();
  h.extension = new_info.name;
  h.key_id = new_info.id;
  Bytes header = EncodeHeader(h, new_key, reader->data_key_);

  AtomicFileWriter out;
  LSIFS_RETURN_IF_ERROR(out.Open(tmp_dir, path, 0644));
  LSIFS_RETURN_IF_ERROR(out.Write(header));
  uint64_t size = 0;
  LSIFS_RETURN_IF_ERROR(reader->file_.Size(&size));
  Bytes chunk(1 << 20);
  for (uint64_t off = reader->header_size_; off < size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), size - off));
    LSIFS_RETURN_IF_ERROR(reader->file_.PreadExact(off, MutableByteSpan(chunk.data(), n)));
    LSIFS_RETURN_IF_ERROR(out.Write(ByteSpan(chunk.data(), n)));
    off += n;
  }
  return out.Commit(/*replace=*/true);
}

}  // namespace lsifs
