#include "core/catalog/delivery_record.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/util/encoding.h"
#include "core/util/file.h"
#include "core/util/names.h"

namespace lsifs {
namespace {

constexpr char kMagic[8] = {'L', 'S', 'I', 'F', 'S', 'D', 'L', 'V'};
constexpr uint32_t kVersion = 1;

SecretKey RecordKey(const SecretKey& extension_key) {
  return DeriveKey(extension_key, "lsifs delivery record key v1");
}

}  // namespace

VolumeDeliveries* DeliveryRecord::FindVolume(const std::string& volume) {
  for (auto& v : volumes) {
    if (v.volume == volume) return &v;
  }
  return nullptr;
}

const VolumeDeliveries* DeliveryRecord::FindVolume(const std::string& volume) const {
  return const_cast<DeliveryRecord*>(this)->FindVolume(volume);
}

void DeliveryRecord::NoteRestore(const std::string& volume, int64_t now) {
  VolumeDeliveries* v = FindVolume(volume);
  if (v == nullptr) {
    volumes.push_back({volume, 0, 0, 0, 0});
    v = &volumes.back();
  }
  if (v->restores > 0 && now > v->last_restore) {
    uint64_t gap = static_cast<uint64_t>(now - v->last_restore);
    v->mean_interval_s = v->mean_interval_s == 0 ? gap : (2 * v->mean_interval_s + gap) / 3;
  }
  ++v->restores;
  v->last_restore = now;
}

Bytes EncodeDeliveryRecord(const DeliveryRecord& r, const SecretKey& extension_key) {
  ByteWriter w;
  w.PutBytes(AsBytes(std::string_view(kMagic, 8)));
  w.PutU32(kVersion);
  w.PutString16(r.extension);
  w.PutU64(r.key_id);
  w.PutU64(r.generation);
  w.PutU32(static_cast<uint32_t>(r.volumes.size()));
  for (const auto& v : r.volumes) {
    w.PutString16(v.volume);
    w.PutU64(v.alias_lsi);
    w.PutU32(v.restores);
    w.PutU64(static_cast<uint64_t>(v.last_restore));
    w.PutU64(v.mean_interval_s);
  }
  w.PutU32(static_cast<uint32_t>(r.entries.size()));
  for (const auto& e : r.entries) {
    w.PutU64(e.lsi_id);
    w.PutString16(e.volume);
    w.PutU64(static_cast<uint64_t>(e.first_delivered));
    w.PutU64(static_cast<uint64_t>(e.last_delivered));
    w.PutU32(e.deliveries);
  }
  Bytes data = std::move(w.bytes());
  auto mac = ComputeMac(RecordKey(extension_key), data);
  data.insert(data.end(), mac.begin(), mac.end());
  return data;
}

Status DecodeDeliveryRecord(const std::string& path, ByteSpan data, const KeyInfo* key_info,
                            const SecretKey* extension_key, DeliveryRecord* out) {
  auto corrupt = [&](const std::string& why) {
    return Status::Corruption("delivery record " + path + ": " + why);
  };
  if (data.size() < 8 + kMacSize || std::memcmp(data.data(), kMagic, 8) != 0) {
    return corrupt("not a delivery record");
  }
  ByteSpan body = data.first(data.size() - kMacSize);
  ByteReader r(body);
  r.GetBytes(8);
  uint32_t version = r.GetU32();
  DeliveryRecord rec;
  rec.extension = r.GetString16();
  rec.key_id = r.GetU64();
  if (!r.ok()) return corrupt("truncated");
  if (version != kVersion)
    return UnsupportedVersion("delivery record " + path, version, 1, kVersion);
  // Quoted in the message below before anything is authenticated.
  if (!ValidateName("extension", rec.extension).ok()) return corrupt("bad extension name");
  if (key_info != nullptr) {
    if (rec.extension != key_info->name || rec.key_id != key_info->id) {
      KeyInfo owner;
      owner.name = rec.extension;
      owner.id = rec.key_id;
      return Status::Permission("delivery record " + path + " belongs to " + DescribeKey(owner) +
                                ", not " + DescribeKey(*key_info));
    }
    // Authenticated before any other field is trusted.
    auto mac = ComputeMac(RecordKey(*extension_key), body);
    if (!EqualConstantTime(mac, data.subspan(body.size()))) {
      return corrupt("authentication failed (tampered with, or not made with " +
                     DescribeKey(*key_info) + ")");
    }
  }
  rec.generation = r.GetU64();
  uint32_t volumes = r.GetU32();
  if (!r.ok() || volumes > r.remaining() / 30) return corrupt("malformed volume list");
  rec.volumes.resize(volumes);
  for (auto& v : rec.volumes) {
    v.volume = r.GetString16();
    v.alias_lsi = r.GetU64();
    v.restores = r.GetU32();
    v.last_restore = static_cast<int64_t>(r.GetU64());
    v.mean_interval_s = r.GetU64();
  }
  uint32_t entries = r.GetU32();
  if (!r.ok() || entries > r.remaining() / 30) return corrupt("malformed delivery list");
  rec.entries.resize(entries);
  for (auto& e : rec.entries) {
    e.lsi_id = r.GetU64();
    e.volume = r.GetString16();
    e.first_delivered = static_cast<int64_t>(r.GetU64());
    e.last_delivered = static_cast<int64_t>(r.GetU64());
    e.deliveries = r.GetU32();
  }
  if (!r.ok()) return corrupt("truncated");
  if (r.remaining() != 0) return corrupt("trailing bytes");
  for (const auto& v : rec.volumes) {
    if (!ValidateName("volume", v.volume).ok()) return corrupt("bad volume name");
  }
  for (const auto& e : rec.entries) {
    if (!ValidateName("volume", e.volume).ok()) return corrupt("bad volume name");
  }
  *out = std::move(rec);
  return Status::Ok();
}

Status ReadDeliveryRecord(const std::string& path, const KeyInfo* key_info,
                          const SecretKey* extension_key, DeliveryRecord* out) {
  std::string data;
  Status s = ReadWholeFile(path, kMaxDeliveryRecordSize, &data);
  if (s.IsNotFound()) {
    *out = DeliveryRecord();
    if (key_info != nullptr) {
      out->extension = key_info->name;
      out->key_id = key_info->id;
    }
    return Status::Ok();
  }
  LSIFS_RETURN_IF_ERROR(s);
  return DecodeDeliveryRecord(path, AsBytes(data), key_info, extension_key, out);
}

uint64_t NextGeneration(uint64_t generation) {
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return std::max<uint64_t>(generation + 1, static_cast<uint64_t>(now_us));
}

}  // namespace lsifs
