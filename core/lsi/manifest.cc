#include "core/lsi/manifest.h"

#include <algorithm>
#include <cstring>

#include "core/util/encoding.h"
#include "core/util/file.h"
#include "core/util/hex.h"
#include "core/util/names.h"

namespace lsifs {
namespace {

constexpr char kMagic[8] = {'L', 'S', 'I', 'F', 'S', 'M', 'A', 'N'};
// Version 2 added the strategy and the model's session count, version 3
// the priority, version 4 the head: the layer table (each layer's id and
// block count) and a MAC of its own before the block lists, so that a file's
// size follows from its authenticated head and a listing reads the head
// only. Versions 1 to 3 are still read (as "", 0 and normal), bounded by
// their own geometry.
constexpr uint32_t kVersion = 4;
constexpr uint32_t kMaxLayers = 4096;
constexpr size_t kMaxStrategy = 64;
// The longest head: fixed fields, three strings, the layer table, its MAC.
constexpr size_t kMaxHeadSize = 12 + 8 + (2 + kMaxNameLength) + 8 + (2 + kMaxNameLength) + 8 + 8 +
                                4 + 8 + 8 + (2 + kMaxStrategy) + 4 + 1 + 4 + kMaxLayers * 16 +
                                kMacSize;
// A volume of more than 2^50 bytes (1 PiB) is not one a manifest describes.
constexpr uint64_t kMaxVolumeSize = uint64_t{1} << 50;

SecretKey ManifestKey(const SecretKey& extension_key) {
  return DeriveKey(extension_key, "lsifs manifest key v1");
}
SecretKey HeadKey(const SecretKey& extension_key) {
  return DeriveKey(extension_key, "lsifs manifest head key v4");
}

Status Corrupt(const std::string& path, const std::string& why) {
  return Status::Corruption("manifest " + path + ": " + why);
}

uint64_t BlockCount(const Manifest& m) {
  return (m.volume_size + m.block_size - 1) / m.block_size;
}

// The fields every version has up to the layer count (which is not read).
Status ParseFields(const std::string& path, ByteReader& r, uint32_t version, Manifest* m) {
  m->lsi_id = r.GetU64();
  m->extension = r.GetString16();
  m->key_id = r.GetU64();
  m->volume = r.GetString16();
  m->snapshot = r.GetU64();
  m->volume_size = r.GetU64();
  m->block_size = r.GetU32();
  m->created = static_cast<int64_t>(r.GetU64());
  m->expires = static_cast<int64_t>(r.GetU64());
  m->strategy.clear();
  m->model_sessions = 0;
  m->priority = 1;
  if (version >= 2) {
    m->strategy = r.GetString16();
    m->model_sessions = r.GetU32();
  }
  if (version >= 3) m->priority = r.GetU8();
  if (!r.ok()) return Corrupt(path, "truncated head");
  // Checked before anything they say is used, in an error message or as a
  // bound: names become file names and log text.
  if (!ValidateName("volume", m->volume).ok() || !ValidateName("extension", m->extension).ok() ||
      (!m->strategy.empty() && !ValidateName("strategy", m->strategy).ok())) {
    return Corrupt(path, "bad volume, extension or strategy name");
  }
  if (!IsValidBlockSize(m->block_size) || m->volume_size == 0 || m->volume_size > kMaxVolumeSize) {
    return Corrupt(path, "impossible geometry (volume size " + std::to_string(m->volume_size) +
                             ", block size " + std::to_string(m->block_size) + ")");
  }
  return Status::Ok();
}

// One layer's block list: ascending, within the volume.
Status ParseBlocks(const std::string& path, ByteReader& r, uint64_t block_count, ManifestLayer* l) {
  if (l->listed > r.remaining() / 8) return Corrupt(path, "truncated block list");
  l->blocks.resize(l->listed);
  for (auto& b : l->blocks) b = r.GetU64();
  for (size_t i = 0; i < l->blocks.size(); ++i) {
    if (l->blocks[i] >= block_count) return Corrupt(path, "a block past the end of the volume");
    if (i > 0 && l->blocks[i] <= l->blocks[i - 1]) {
      return Corrupt(path, "layer block list out of order");
    }
  }
  return Status::Ok();
}

Bytes EncodeHead(const Manifest& m) {
  ByteWriter w;
  w.PutBytes(AsBytes(std::string_view(kMagic, 8)));
  w.PutU32(kVersion);
  w.PutU64(m.lsi_id);
  w.PutString16(m.extension);
  w.PutU64(m.key_id);
  w.PutString16(m.volume);
  w.PutU64(m.snapshot);
  w.PutU64(m.volume_size);
  w.PutU32(m.block_size);
  w.PutU64(static_cast<uint64_t>(m.created));
  w.PutU64(static_cast<uint64_t>(m.expires));
  w.PutString16(m.strategy);
  w.PutU32(m.model_sessions);
  w.PutU8(m.priority);
  w.PutU32(static_cast<uint32_t>(m.layers.size()));
  for (const auto& l : m.layers) {
    w.PutU64(l.layer_id);
    w.PutU64(l.blocks.size());
  }
  return std::move(w.bytes());
}

// Which extension and key a manifest was made for must be the reader's.
Status CheckOwner(const Manifest& m, const KeyInfo& key_info) {
  if (m.extension == key_info.name && m.key_id == key_info.id) return Status::Ok();
  KeyInfo owner;
  owner.name = m.extension;
  owner.id = m.key_id;
  return Status::Permission("LSI " + FormatId(m.lsi_id) + " was made for " + DescribeKey(owner) +
                            ", not for " + DescribeKey(key_info) + "; refusing to use it");
}

Status AuthenticationFailed(const std::string& path, const KeyInfo& key_info) {
  return Corrupt(path, "authentication failed (corrupt, or the key of " + DescribeKey(key_info) +
                           " is not the one it was made with)");
}

// A manifest of version 1 to 3: the layers' block lists come between their
// ids, so the whole file is read; its size is bounded first by what its own
// geometry can need.
Status LoadLegacy(const File& f, const std::string& path, uint64_t size, ByteReader& head,
                  uint32_t version, const KeyInfo* key_info, const SecretKey* key, Manifest* m) {
  LSIFS_RETURN_IF_ERROR(ParseFields(path, head, version, m));
  const uint64_t layers = head.GetU32();
  if (!head.ok() || layers > kMaxLayers) return Corrupt(path, "truncated or malformed");
  const uint64_t bound = head.position() + layers * (16 + BlockCount(*m) * 8) + kMacSize;
  if (size > bound) return Corrupt(path, "larger than its geometry allows");
  std::string data;
  LSIFS_RETURN_IF_ERROR(ReadWholeFile(f, path, static_cast<size_t>(size), &data));
  ByteReader r(AsBytes(data));
  r.GetBytes(head.position());
  m->layers.resize(layers);
  for (auto& l : m->layers) {
    l.layer_id = r.GetU64();
    l.listed = r.GetU64();
    if (!r.ok()) return Corrupt(path, "truncated layer list");
    LSIFS_RETURN_IF_ERROR(ParseBlocks(path, r, BlockCount(*m), &l));
  }
  const size_t body = r.position();
  r.GetBytes(kMacSize);
  if (!r.ok()) return Corrupt(path, "truncated");
  if (r.remaining() != 0) return Corrupt(path, "trailing bytes");
  if (key == nullptr) return Status::Ok();
  LSIFS_RETURN_IF_ERROR(CheckOwner(*m, *key_info));
  auto expected = ComputeMac(ManifestKey(*key), AsBytes(data).first(body));
  if (!EqualConstantTime(expected, AsBytes(data).subspan(body))) {
    return AuthenticationFailed(path, *key_info);
  }
  return Status::Ok();
}

// Reads the manifest in `f`. With a key, the head is authenticated before
// anything else is read, and the whole file after; without one (a peek),
// nothing is authenticated, and `whole` false reads the head only.
Status Load(const File& f, const std::string& path, const KeyInfo* key_info, const SecretKey* key,
            bool whole, Manifest* m) {
  *m = Manifest();
  uint64_t size = 0;
  LSIFS_RETURN_IF_ERROR(f.Size(&size).WithContext(path));
  Bytes prefix(static_cast<size_t>(std::min<uint64_t>(size, kMaxHeadSize)));
  LSIFS_RETURN_IF_ERROR(f.PreadExact(0, prefix).WithContext(path));
  ByteReader r(prefix);
  ByteSpan magic = r.GetBytes(8);
  if (!r.ok() || std::memcmp(magic.data(), kMagic, 8) != 0) {
    return Corrupt(path, "not an LSI manifest");
  }
  const uint32_t version = r.GetU32();
  if (version < 1 || version > kVersion) {
    return UnsupportedVersion("manifest " + path, version, 1, kVersion);
  }
  if (version < 4) return LoadLegacy(f, path, size, r, version, key_info, key, m);

  LSIFS_RETURN_IF_ERROR(ParseFields(path, r, version, m));
  const uint32_t layers = r.GetU32();
  if (!r.ok() || layers > kMaxLayers) return Corrupt(path, "truncated or malformed head");
  m->layers.resize(layers);
  uint64_t listed = 0;
  for (auto& l : m->layers) {
    l.layer_id = r.GetU64();
    l.listed = r.GetU64();
    if (!r.ok()) return Corrupt(path, "truncated layer table");
    if (l.listed > BlockCount(*m)) return Corrupt(path, "a layer lists more blocks than exist");
    listed += l.listed;
  }
  const size_t head_end = r.position();
  ByteSpan head_mac = r.GetBytes(kMacSize);
  if (!r.ok()) return Corrupt(path, "truncated head");
  if (key != nullptr) {
    LSIFS_RETURN_IF_ERROR(CheckOwner(*m, *key_info));
    auto expected = ComputeMac(HeadKey(*key), ByteSpan(prefix).first(head_end));
    if (!EqualConstantTime(expected, head_mac)) return AuthenticationFailed(path, *key_info);
  }
  const uint64_t expected_size = head_end + kMacSize + listed * 8 + kMacSize;
  if (size != expected_size) {
    return Corrupt(path, std::to_string(size) + " bytes where its head says " +
                             std::to_string(expected_size) + " (truncated or extended)");
  }
  if (key == nullptr && !whole) return Status::Ok();

  std::string data;
  LSIFS_RETURN_IF_ERROR(ReadWholeFile(f, path, static_cast<size_t>(size), &data));
  ByteReader body(AsBytes(data));
  body.GetBytes(head_end + kMacSize);
  for (auto& l : m->layers) LSIFS_RETURN_IF_ERROR(ParseBlocks(path, body, BlockCount(*m), &l));
  const size_t body_end = body.position();
  if (key == nullptr) return Status::Ok();
  auto expected = ComputeMac(ManifestKey(*key), AsBytes(data).first(body_end));
  if (!EqualConstantTime(expected, AsBytes(data).subspan(body_end))) {
    return AuthenticationFailed(path, *key_info);
  }
  return Status::Ok();
}

}  // namespace

uint64_t Manifest::delta_blocks() const {
  uint64_t n = 0;
  for (const auto& l : layers) n += std::max<uint64_t>(l.listed, l.blocks.size());
  return n;
}

Status WriteManifest(const std::string& tmp_dir, const std::string& path, Manifest manifest,
                     const KeyInfo& key_info, const SecretKey& extension_key, bool replace) {
  manifest.extension = key_info.name;
  manifest.key_id = key_info.id;
  LSIFS_RETURN_IF_ERROR(ValidateName("volume", manifest.volume));
  if (!manifest.strategy.empty())
    LSIFS_RETURN_IF_ERROR(ValidateName("strategy", manifest.strategy));
  if (manifest.layers.size() > kMaxLayers) return Status::InvalidArgument("too many layers");
  for (auto& l : manifest.layers) {
    std::sort(l.blocks.begin(), l.blocks.end());
    l.listed = l.blocks.size();
  }
  Bytes data = EncodeHead(manifest);
  auto head_mac = ComputeMac(HeadKey(extension_key), data);
  data.insert(data.end(), head_mac.begin(), head_mac.end());
  ByteWriter blocks;
  for (const auto& l : manifest.layers) {
    for (uint64_t b : l.blocks) blocks.PutU64(b);
  }
  data.insert(data.end(), blocks.bytes().begin(), blocks.bytes().end());
  auto mac = ComputeMac(ManifestKey(extension_key), data);
  data.insert(data.end(), mac.begin(), mac.end());
  return WriteFileAtomically(tmp_dir, path, data, 0644, replace);
}

Status PeekManifest(const std::string& path, Manifest* manifest, ManifestPart part) {
  File f;
  LSIFS_RETURN_IF_ERROR(File::OpenRead(path, &f));
  return Load(f, path, nullptr, nullptr, part == ManifestPart::kWhole, manifest);
}

Status ReadManifest(const std::string& path, const KeyInfo& key_info,
                    const SecretKey& extension_key, Manifest* manifest) {
  File f;
  LSIFS_RETURN_IF_ERROR(File::OpenRead(path, &f));
  return ReadManifest(f, path, key_info, extension_key, manifest);
}

Status ReadManifest(const File& file, const std::string& path, const KeyInfo& key_info,
                    const SecretKey& extension_key, Manifest* manifest) {
  return Load(file, path, &key_info, &extension_key, /*whole=*/true, manifest);
}

}  // namespace lsifs
