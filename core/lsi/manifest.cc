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
// the priority; older manifests are still read (as "", 0 and normal).
constexpr uint32_t kVersion = 3;
constexpr uint32_t kMaxLayers = 4096;

Bytes EncodeBody(const Manifest& m) {
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
    for (uint64_t b : l.blocks) w.PutU64(b);
  }
  return std::move(w.bytes());
}

SecretKey ManifestKey(const SecretKey& extension_key) {
  return DeriveKey(extension_key, "lsifs manifest key v1");
}

// Parses the body; `body_size` receives where the MAC starts.
Status Parse(const std::string& path, const std::string& data, Manifest* m, size_t* body_size) {
  auto corrupt = [&](const std::string& why) {
    return Status::Corruption("manifest " + path + ": " + why);
  };
  ByteReader r(AsBytes(data));
  ByteSpan magic = r.GetBytes(8);
  if (!r.ok() || std::memcmp(magic.data(), kMagic, 8) != 0) return corrupt("not an LSI manifest");
  uint32_t version = r.GetU32();
  if (version < 1 || version > kVersion) {
    return corrupt("unsupported version " + std::to_string(version) +
                   " (this lsifs reads versions 1 to 3)");
  }
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
  uint32_t layers = r.GetU32();
  if (!r.ok() || layers > kMaxLayers) return corrupt("truncated or malformed");
  m->layers.resize(layers);
  for (auto& l : m->layers) {
    l.layer_id = r.GetU64();
    uint64_t count = r.GetU64();
    if (!r.ok() || count > r.remaining() / 8) return corrupt("truncated or malformed layer list");
    l.blocks.resize(count);
    for (auto& b : l.blocks) b = r.GetU64();
    for (size_t i = 1; i < l.blocks.size(); ++i) {
      if (l.blocks[i] <= l.blocks[i - 1]) return corrupt("layer block list out of order");
    }
  }
  *body_size = r.position();
  r.GetBytes(kMacSize);
  if (!r.ok()) return corrupt("truncated");
  if (r.remaining() != 0) return corrupt("trailing bytes");
  if (!ValidateName("volume", m->volume).ok() || !ValidateName("extension", m->extension).ok()) {
    return corrupt("bad volume or extension name");
  }
  return Status::Ok();
}

}  // namespace

uint64_t Manifest::delta_blocks() const {
  uint64_t n = 0;
  for (const auto& l : layers) n += l.blocks.size();
  return n;
}

Status WriteManifest(const std::string& tmp_dir, const std::string& path, Manifest manifest,
                     const KeyInfo& key_info, const SecretKey& extension_key) {
  manifest.extension = key_info.name;
  manifest.key_id = key_info.id;
  LSIFS_RETURN_IF_ERROR(ValidateName("volume", manifest.volume));
  if (manifest.layers.size() > kMaxLayers) return Status::InvalidArgument("too many layers");
  for (auto& l : manifest.layers) std::sort(l.blocks.begin(), l.blocks.end());
  Bytes data = EncodeBody(manifest);
  auto mac = ComputeMac(ManifestKey(extension_key), data);
  data.insert(data.end(), mac.begin(), mac.end());
  return WriteFileAtomically(tmp_dir, path, data, 0644, /*replace=*/false);
}

Status PeekManifest(const std::string& path, Manifest* manifest) {
  std::string data;
  LSIFS_RETURN_IF_ERROR(ReadWholeFile(path, kMaxManifestSize, &data));
  size_t body = 0;
  return Parse(path, data, manifest, &body);
}

Status ReadManifest(const std::string& path, const KeyInfo& key_info,
                    const SecretKey& extension_key, Manifest* manifest) {
  std::string data;
  LSIFS_RETURN_IF_ERROR(ReadWholeFile(path, kMaxManifestSize, &data));
  return DecodeManifest(path, data, key_info, extension_key, manifest);
}

Status DecodeManifest(const std::string& path, const std::string& data, const KeyInfo& key_info,
                      const SecretKey& extension_key, Manifest* manifest) {
  size_t body = 0;
  LSIFS_RETURN_IF_ERROR(Parse(path, data, manifest, &body));
  if (manifest->extension != key_info.name || manifest->key_id != key_info.id) {
    KeyInfo owner;
    owner.name = manifest->extension;
    owner.id = manifest->key_id;
    return Status::Permission("LSI " + FormatId(manifest->lsi_id) + " was made for " +
                              DescribeKey(owner) + ", not for " + DescribeKey(key_info) +
                              "; refusing to use it");
  }
  auto expected = ComputeMac(ManifestKey(extension_key), AsBytes(data).first(body));
  if (!EqualConstantTime(expected, AsBytes(data).subspan(body))) {
    return Status::Corruption("manifest " + path +
                              ": authentication failed (corrupt, or the key of " +
                              DescribeKey(key_info) + " is not the one it was made with)");
  }
  return Status::Ok();
}

}  // namespace lsifs
