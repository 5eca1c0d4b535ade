#include "core/region/region.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <boost/json.hpp>

#include "core/lsi/manifest.h"
#include "core/origin/snapshot.h"
#include "core/util/hex.h"
#include "core/util/json.h"

namespace lsifs {
namespace {

constexpr auto kKeyReload = std::chrono::seconds(2);

// One "no such LSI" for LSIs that do not exist and for other extensions'.
Status NoSuchLsi(uint64_t lsi) {
  return Status::NotFound("no LSI " + FormatId(lsi) + " for this extension");
}

// Keeps the entries of a JSON array whose "extension" is `extension`.
Status FilterByExtension(const std::string& json, const std::string& extension, std::string* out) {
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  if (ec || !v.is_array()) return Status::IOError("the service's listing is not a JSON array");
  boost::json::array kept;
  for (auto& item : v.as_array()) {
    const boost::json::value* e =
        item.is_object() ? item.as_object().if_contains("extension") : nullptr;
    if (e != nullptr && e->is_string() && e->as_string() == extension) kept.push_back(item);
  }
  *out = boost::json::serialize(kept);
  return Status::Ok();
}

void SnapshotFields(JsonWriter& j, const SnapshotInfo& s) {
  j.Field("volume", s.volume).Field("id", FormatId(s.id)).Key("parent");
  if (s.parent != 0) {
    j.String(FormatId(s.parent));
  } else {
    j.Null();
  }
  j.Field("size", s.size)
      .Field("block_size", s.block_size)
      .Field("created_us", s.created_us)
      .Field("present_blocks", s.present_blocks);
}

}  // namespace

RegionService::RegionService(const ServiceEnv& env, SuccessorCache& successors)
    : env_(env), successors_(successors), origin_(*env.store, *env.keys) {}

void RegionService::Serve(const PeerIdentity& peer, const RegionRequest& request,
                          RegionReply* reply) {
  *reply = RegionReply();
  Status s = Route(peer, request, reply);
  if (!s.ok()) ErrorReply(s, reply);
}

Status RegionService::Route(const PeerIdentity& peer, const RegionRequest& r, RegionReply* reply) {
  const std::string& ext = peer.extension;
  switch (r.route) {
    case RegionRoute::kStore:
      return StoreFacts(reply);
    case RegionRoute::kDeliveries:
      return Deliveries(ext, reply);
    case RegionRoute::kVolumes:
      return Volumes(reply);
    case RegionRoute::kSnapshot:
      return SnapshotFacts(r, reply);
    case RegionRoute::kPresent:
      return Present(r, reply);
    case RegionRoute::kBlocks:
      return Blocks(ext, r, reply);
    case RegionRoute::kRestore:
      return ServeRequest(env_,
                          {"restore", ext, r.volume, r.snapshot == 0 ? "-" : FormatId(r.snapshot)},
                          &reply->body);
    case RegionRoute::kPreassemble:
      return ServeRequest(
          env_,
          {"preassemble", ext, r.volume, r.strategy.empty() ? kPredictedStrategy : r.strategy,
           r.priority, std::to_string(r.budget), r.explain ? "1" : "0"},
          &reply->body);
    case RegionRoute::kAssemblies:
      return Assemblies(ext, reply);
    case RegionRoute::kAssemblyCancel:
      return CancelAssembly(ext, r.assembly, reply);
    case RegionRoute::kLsis:
      return Lsis(ext, reply);
    case RegionRoute::kLsi:
      return Lsi(ext, r.lsi, reply);
    case RegionRoute::kManifest:
      return Manifest(ext, r, reply);
    case RegionRoute::kLayer:
      return Layer(ext, r, reply);
    case RegionRoute::kSuccessors:
      return Successors(ext, r.volume, reply);
    case RegionRoute::kUpload:
      return Upload(ext, r, reply);
  }
  return Status::NotFound("no such resource");
}

Status RegionService::StoreFacts(RegionReply* reply) {
  JsonWriter j;
  j.BeginObject()
      .Field("store_id", FormatId(env_.store->config().store_id))
      .Field("block_size", env_.store->block_size())
      .EndObject();
  reply->body = j.str();
  return Status::Ok();
}

Status RegionService::Deliveries(const std::string& extension, RegionReply* reply) {
  std::string bytes;
  Status s = ReadWholeFile(env_.store->deliveries_path(extension), 64ull << 20, &bytes);
  if (s.IsNotFound()) return Status::NotFound("nothing was delivered to this extension yet");
  LSIFS_RETURN_IF_ERROR(s);
  reply->content_type = "application/octet-stream";
  reply->body = std::move(bytes);
  return Status::Ok();
}

Status RegionService::Volumes(RegionReply* reply) {
  std::vector<SnapshotInfo> snaps;
  LSIFS_RETURN_IF_ERROR(ListSnapshots(*env_.store, *env_.keys, "", &snaps));
  std::map<std::string, std::vector<const SnapshotInfo*>> by_volume;
  for (const auto& s : snaps) by_volume[s.volume].push_back(&s);
  JsonWriter j;
  j.BeginArray();
  for (const auto& [volume, list] : by_volume) {
    j.BeginObject().Field("volume", volume).Key("snapshots").BeginArray();
    for (const SnapshotInfo* s : list) {
      j.BeginObject();
      SnapshotFields(j, *s);
      j.EndObject();
    }
    j.EndArray().EndObject();
  }
  j.EndArray();
  reply->body = j.str();
  return Status::Ok();
}

Status RegionService::ResolveSnapshot(const std::string& volume, uint64_t id, uint64_t* out) const {
  if (id != 0) {
    *out = id;
    return Status::Ok();
  }
  std::vector<SnapshotInfo> snaps;
  LSIFS_RETURN_IF_ERROR(ListSnapshots(*env_.store, *env_.keys, volume, &snaps));
  if (snaps.empty()) return Status::NotFound("volume '" + volume + "' has no snapshots");
  *out = snaps.back().id;
  return Status::Ok();
}

Status RegionService::OpenSnapshot(const std::string& volume, uint64_t id,
                                   std::shared_ptr<OriginSnapshot>* out) {
  LSIFS_RETURN_IF_ERROR(ResolveSnapshot(volume, id, &id));
  const auto key = std::make_pair(volume, id);
  {
    std::lock_guard<std::mutex> lock(snapshots_mu_);
    for (auto it = snapshots_.begin(); it != snapshots_.end(); ++it) {
      if (it->first == key) {
        snapshots_.splice(snapshots_.begin(), snapshots_, it);
        *out = it->second;
        return Status::Ok();
      }
    }
  }
  // Opened outside the lock: a large map takes a while to read.
  std::unique_ptr<OriginSnapshot> opened;
  LSIFS_RETURN_IF_ERROR(origin_.OpenSnapshot(volume, id, &opened));
  std::shared_ptr<OriginSnapshot> shared = std::move(opened);
  std::lock_guard<std::mutex> lock(snapshots_mu_);
  snapshots_.emplace_front(key, shared);
  if (snapshots_.size() > kOpenSnapshots) snapshots_.pop_back();
  *out = std::move(shared);
  return Status::Ok();
}

Status RegionService::SnapshotFacts(const RegionRequest& r, RegionReply* reply) {
  std::shared_ptr<OriginSnapshot> snap;
  LSIFS_RETURN_IF_ERROR(OpenSnapshot(r.volume, r.snapshot, &snap));
  JsonWriter j;
  j.BeginObject();
  SnapshotFields(j, snap->info());
  j.EndObject();
  reply->body = j.str();
  return Status::Ok();
}

Status RegionService::Present(const RegionRequest& r, RegionReply* reply) {
  std::shared_ptr<OriginSnapshot> snap;
  LSIFS_RETURN_IF_ERROR(OpenSnapshot(r.volume, r.snapshot, &snap));
  reply->content_type = "application/octet-stream";
  reply->body = EncodeBlockList(snap->present());
  return Status::Ok();
}

Status RegionService::TransportKey(const std::string& extension,
                                   std::shared_ptr<const SecretKey>* out) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(keys_mu_);
    auto it = keys_.find(extension);
    if (it != keys_.end() && now - it->second.loaded < kKeyReload) {
      *out = it->second.key;
      return Status::Ok();
    }
  }
  KeyInfo info;
  SecretKey key;
  Status s = env_.store->keyring().Load(extension, &info, &key);
  if (s.IsNotFound()) {
    return Status::Permission("extension '" + extension +
                              "' has no key at the region: its certificate serves nothing");
  }
  LSIFS_RETURN_IF_ERROR(s);
  auto transport = std::make_shared<const SecretKey>(RegionTransportKey(key));
  std::lock_guard<std::mutex> lock(keys_mu_);
  keys_[extension] = CachedKey{transport, now};
  *out = std::move(transport);
  return Status::Ok();
}

Status RegionService::Blocks(const std::string& extension, const RegionRequest& r,
                             RegionReply* reply) {
  std::shared_ptr<const SecretKey> key;
  LSIFS_RETURN_IF_ERROR(TransportKey(extension, &key));
  std::shared_ptr<OriginSnapshot> snap;
  LSIFS_RETURN_IF_ERROR(OpenSnapshot(r.volume, r.snapshot, &snap));
  const SnapshotInfo& info = snap->info();
  const size_t bs = info.block_size, record = bs + kSealOverhead;
  if (r.blocks.size() * record > kMaxBatchBytes) {
    return Status::InvalidArgument("a batch of " + std::to_string(r.blocks.size()) + " blocks of " +
                                   std::to_string(bs) + " bytes is over " +
                                   std::to_string(kMaxBatchBytes) + " bytes: send fewer");
  }
  const std::vector<uint64_t>& present = snap->present();
  for (uint64_t b : r.blocks) {
    if (!std::binary_search(present.begin(), present.end(), b)) {
      return Status::InvalidArgument("block " + std::to_string(b) + " is not present in snapshot " +
                                     FormatId(info.id) + " of '" + info.volume +
                                     "' (absent blocks read as zeros)");
    }
  }
  // Plaintext lives only in this thread's buffer, wiped when done.
  thread_local Bytes plain;
  thread_local Aead aead;
  plain.resize(r.blocks.size() * bs);
  std::vector<uint8_t*> outs(r.blocks.size());
  for (size_t i = 0; i < outs.size(); ++i) outs[i] = plain.data() + i * bs;
  Status fetched = snap->Fetch(r.blocks, outs);
  reply->body.resize(r.blocks.size() * record);
  uint8_t* sealed = reinterpret_cast<uint8_t*>(reply->body.data());
  for (size_t i = 0; fetched.ok() && i < r.blocks.size(); ++i) {
    const std::string aad = RegionBlockAad(extension, info.volume, info.id, r.blocks[i]);
    fetched = aead.Seal(*key, AsBytes(aad), ByteSpan(outs[i], bs),
                        MutableByteSpan(sealed + i * record, record));
  }
  OPENSSL_cleanse(plain.data(), plain.size());
  LSIFS_RETURN_IF_ERROR(fetched);
  reply->content_type = "application/octet-stream";
  return Status::Ok();
}

Status RegionService::Lsis(const std::string& extension, RegionReply* reply) {
  std::string all;
  LSIFS_RETURN_IF_ERROR(ServeRequest(env_, {"lsi-list"}, &all));
  return FilterByExtension(all, extension, &reply->body);
}

Status RegionService::Lsi(const std::string& extension, uint64_t lsi, RegionReply* reply) {
  std::string shown;
  Status s = ServeRequest(env_, {"lsi-show", FormatId(lsi)}, &shown);
  if (s.IsNotFound()) return NoSuchLsi(lsi);
  LSIFS_RETURN_IF_ERROR(s);
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(shown, ec);
  const boost::json::value* e =
      !ec && v.is_object() ? v.as_object().if_contains("extension") : nullptr;
  if (e == nullptr || !e->is_string() || e->as_string() != extension) return NoSuchLsi(lsi);
  reply->body = std::move(shown);
  return Status::Ok();
}

Status RegionService::Manifest(const std::string& extension, const RegionRequest& r,
                               RegionReply* reply) {
  lsifs::Manifest m;
  const std::string path = env_.store->manifest_path(r.lsi);
  if (!PeekManifest(path, &m).ok() || m.extension != extension) return NoSuchLsi(r.lsi);
  std::string bytes;
  Status s = ReadWholeFile(path, 64ull << 20, &bytes);
  if (s.IsNotFound()) return NoSuchLsi(r.lsi);
  LSIFS_RETURN_IF_ERROR(s);
  reply->content_type = "application/octet-stream";
  reply->body = std::move(bytes);
  return Status::Ok();
}

Status RegionService::Layer(const std::string& extension, const RegionRequest& r,
                            RegionReply* reply) {
  lsifs::Manifest m;
  if (!PeekManifest(env_.store->manifest_path(r.lsi), &m).ok() || m.extension != extension) {
    return NoSuchLsi(r.lsi);
  }
  const bool listed = std::any_of(m.layers.begin(), m.layers.end(),
                                  [&](const auto& l) { return l.layer_id == r.layer; });
  if (!listed) {
    return Status::NotFound("LSI " + FormatId(r.lsi) + " has no layer " + FormatId(r.layer));
  }
  const std::string path = env_.store->layer_path(r.layer);
  File file;
  uint64_t size = 0;
  LSIFS_RETURN_IF_ERROR(File::OpenRead(path, &file));
  LSIFS_RETURN_IF_ERROR(file.Size(&size));
  reply->content_type = "application/octet-stream";
  reply->file = path;
  reply->file_size = size;
  if (!r.range) {
    reply->file_length = size;
    return Status::Ok();
  }
  if (r.range->first >= size) {
    ErrorReply(Status::InvalidArgument("range starts at " + std::to_string(r.range->first) +
                                       ", past the layer's " + std::to_string(size) + " bytes"),
               reply);
    reply->status = 416;
    return Status::Ok();
  }
  const uint64_t end = r.range->last ? std::min(*r.range->last + 1, size) : size;
  if (end - r.range->first > kMaxRangeBytes) {
    return Status::InvalidArgument("a range spans at most " + std::to_string(kMaxRangeBytes) +
                                   " bytes");
  }
  reply->status = 206;
  reply->file_offset = r.range->first;
  reply->file_length = end - r.range->first;
  return Status::Ok();
}

Status RegionService::Assemblies(const std::string& extension, RegionReply* reply) {
  std::string all;
  LSIFS_RETURN_IF_ERROR(ServeRequest(env_, {"assemblies"}, &all));
  return FilterByExtension(all, extension, &reply->body);
}

Status RegionService::CancelAssembly(const std::string& extension, uint64_t id,
                                     RegionReply* reply) {
  bool own = false;
  for (const auto& a : env_.queue->List()) own |= a.id == id && a.extension == extension;
  if (!own) return Status::NotFound("no assembly " + std::to_string(id) + " for this extension");
  return ServeRequest(env_, {"assembly-cancel", std::to_string(id)}, &reply->body);
}

Status RegionService::Successors(const std::string& extension, const std::string& volume,
                                 RegionReply* reply) {
  std::shared_ptr<const SuccessorTable> table = successors_.Get(extension, volume);
  if (table == nullptr) {
    // Asked for now; built here, off any read path (a site asks once per
    // session at most).
    LSIFS_RETURN_IF_ERROR(env_.with_db([&](AccessDb* db) {
      if (db == nullptr) return Status::Unavailable("the co-access database is not open");
      successors_.Build(*db);
      return Status::Ok();
    }));
    table = successors_.Get(extension, volume);
  }
  reply->body = EncodeSuccessorTable(volume, table != nullptr ? *table : SuccessorTable());
  return Status::Ok();
}

Status RegionService::Upload(const std::string& extension, const RegionRequest& r,
                             RegionReply* reply) {
  // Only an extension with a key at the region is learned from.
  std::shared_ptr<const SecretKey> key;
  LSIFS_RETURN_IF_ERROR(TransportKey(extension, &key));
  uint32_t number = 0;
  bool again = false;
  auto learn = [&](AccessDb* db) -> Status {
    if (db == nullptr) return Status::Unavailable("the co-access database is not open");
    LSIFS_RETURN_IF_ERROR(db->FindUpload(extension, r.volume, r.upload_key, &number));
    if (number != 0) {
      again = true;
      return Status::Ok();
    }
    LSIFS_RETURN_IF_ERROR(db->BeginSession(extension, r.volume, r.lsi, r.snapshot, &number));
    // Recorded first: a crash before the session ends leaves it open, to be
    // recovered at the next start, never learned twice.
    LSIFS_RETURN_IF_ERROR(db->RecordUpload(extension, r.volume, r.upload_key, number));
    std::vector<LoggedEvent> events;
    events.reserve(r.events.size());
    for (size_t i = 0; i < r.events.size(); ++i) {
      events.push_back({extension,
                        r.volume,
                        number,
                        static_cast<uint32_t>(i),
                        {r.events[i].first, r.events[i].second}});
    }
    LSIFS_RETURN_IF_ERROR(db->AppendEvents(events));
    LSIFS_RETURN_IF_ERROR(db->EndSession(extension, r.volume, number, r.reads, r.dropped));
    if (env_.on_session_end) env_.on_session_end(*db, r.volume);
    return Status::Ok();
  };
  LSIFS_RETURN_IF_ERROR(env_.with_db(learn));
  JsonWriter j;
  j.BeginObject().Field("session", number).Field("duplicate", again).EndObject();
  reply->body = j.str();
  return Status::Ok();
}

}  // namespace lsifs
