// The catalog's part of an extension key's life: rotation and deletion.
//
// A rotation never needs a window in which an LSI cannot be read: the next
// key is written first (keys/EXT.key.next) and every reader holds both
// (ExtensionKeys), each file naming the key it was made with. One LSI is
// rekeyed at a time, its layers first (each rewrapped, renamed over the
// old file), its manifest last, under a pin so that a drop coming
// meanwhile waits for it. The last pass, the delivery record and the
// key's replacement happen under the extension's record lock, which
// publishing an LSI also takes: nothing can be published under the old key
// after the pass that would have missed it.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "core/catalog/catalog.h"
#include "core/catalog/delivery_record.h"
#include "core/catalog/record_lock.h"
#include "core/lsi/layer.h"
#include "core/util/hex.h"

namespace lsifs {
namespace {

// The LSIs whose manifests name `extension` (unauthenticated: to decide
// what to do with each, never to trust it), with their key ids.
std::vector<std::pair<uint64_t, uint64_t>> ExtensionLsis(const Store& store,
                                                         const std::string& extension) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (uint64_t id : store.ListIds(StoreFile::kManifest)) {
    Manifest m;
    if (!PeekManifest(store.manifest_path(id), &m).ok() || m.extension != extension) continue;
    out.emplace_back(id, m.key_id);
  }
  return out;
}

}  // namespace

Status Catalog::RekeyLsi(uint64_t lsi_id, const ExtensionKeys& keys, bool* rekeyed,
                         uint64_t* layer_bytes) const {
  *rekeyed = false;
  std::unique_ptr<LsiPin> pin;
  Status s = Pin(lsi_id, keys.info, keys.key, &pin);
  if (s.IsNotFound()) return Status::Ok();  // dropped meanwhile
  LSIFS_RETURN_IF_ERROR(s);
  struct Unpinned {
    const Catalog& catalog;
    std::unique_ptr<LsiPin>& pin;
    ~Unpinned() { catalog.Unpin(std::move(pin)); }
  } unpin_at_end{*this, pin};

  const std::string spill = store_.spill_path(lsi_id, keys.info.name);
  ::unlink(spill.c_str());
  for (const auto& l : pin->manifest().layers) {
    const std::string path = store_.layer_path(l.layer_id);
    Status r =
        RewrapLayer(store_.tmp_dir(), path, keys.info, keys.key, keys.next_info, keys.next_key);
    if (r.IsPermission()) {
      // Rewrapped by a rotation that was interrupted before the manifest.
      std::unique_ptr<LayerReader> reader;
      r = LayerReader::Open(path, keys.next_info, keys.next_key, &reader);
    } else if (r.ok()) {
      *layer_bytes += FileBytes(path);
    }
    if (!r.ok()) return r.WithContext("layer " + FormatId(l.layer_id));
  }
  LSIFS_RETURN_IF_ERROR(WriteManifest(store_.tmp_dir(), store_.manifest_path(lsi_id),
                                      pin->manifest(), keys.next_info, keys.next_key,
                                      /*replace=*/true));
  // A mount that opened the LSI between the first removal and the manifest
  // may have made a new local copy under the old key.
  ::unlink(spill.c_str());
  *rekeyed = true;
  return Status::Ok();
}

Status Catalog::RotateKey(const std::string& extension,
                          const std::function<void(uint64_t, uint64_t)>& progress,
                          KeyRotation* out) const {
  *out = KeyRotation();
  ExtensionKeys keys;
  LSIFS_RETURN_IF_ERROR(store_.keyring().Load(extension, &keys.info, &keys.key));
  RecordLock one_rotation;  // for the whole run (waits for another to end)
  LSIFS_RETURN_IF_ERROR(one_rotation.Acquire(store_.keyring().RotationLockPathFor(extension)));
  // What another rotation may have done while this one waited.
  LSIFS_RETURN_IF_ERROR(store_.keyring().Load(extension, &keys.info, &keys.key));
  LSIFS_RETURN_IF_ERROR(
      store_.keyring().BeginRotation(extension, &keys.next_info, &keys.next_key, &out->resumed));
  keys.has_next = true;
  out->old_key = keys.info;
  out->new_key = keys.next_info;

  // Rekeys what is under the old key; damage is reported and passed over
  // (such an LSI was unusable already), anything else stops the rotation,
  // to be run again.
  std::set<uint64_t> left_out;
  auto pass = [&](bool first) -> Status {
    std::vector<uint64_t> todo;
    for (const auto& [id, key_id] : ExtensionLsis(store_, extension)) {
      if (key_id == keys.next_info.id) {
        if (first) ++out->already;
      } else if (key_id == keys.info.id) {
        todo.push_back(id);
      } else if (left_out.insert(id).second) {
        out->left_out.emplace_back(
            id, "made with key " + FormatId(key_id) + ", which is neither the old nor the new one");
      }
    }
    for (size_t i = 0; i < todo.size(); ++i) {
      if (first && progress) progress(i, todo.size());
      bool rekeyed = false;
      Status s = RekeyLsi(todo[i], keys, &rekeyed, &out->layer_bytes);
      // A layer missing is damage too (the LSI cannot be read whole).
      if (s.IsCorruption() || s.IsPermission() || s.IsNotFound()) {
        if (left_out.insert(todo[i]).second) out->left_out.emplace_back(todo[i], s.message());
        continue;
      }
      LSIFS_RETURN_IF_ERROR(s.WithContext("rekeying LSI " + FormatId(todo[i])));
      if (rekeyed) ++out->rekeyed;
    }
    if (first && progress) progress(todo.size(), todo.size());
    return Status::Ok();
  };
  LSIFS_RETURN_IF_ERROR(pass(true));

  RecordLock lock;
  LSIFS_RETURN_IF_ERROR(lock.Acquire(store_.deliveries_lock_path(extension)));
  LSIFS_RETURN_IF_ERROR(pass(false));  // what was published during the first
  const std::string path = store_.deliveries_path(extension);
  if (PathExists(path)) {
    DeliveryRecord r;
    Status s = ReadDeliveryRecord(path, &keys.info, &keys.key, &r);
    if (s.IsPermission()) {
      // Rewritten already by an interrupted run.
      s = ReadDeliveryRecord(path, &keys.next_info, &keys.next_key, &r);
    } else if (s.ok()) {
      r.key_id = keys.next_info.id;
      r.generation = NextGeneration(r.generation);
      Bytes data = EncodeDeliveryRecord(r, keys.next_key);
      s = WriteFileAtomically(store_.tmp_dir(), path, data, 0644, /*replace=*/true);
    }
    LSIFS_RETURN_IF_ERROR(s.WithContext("the delivery record of '" + extension + "'"));
  }
  return store_.keyring().FinishRotation(extension, keys.next_info.id);
}

Status Catalog::DeleteKey(const std::string& extension, bool force, KeyDeletion* out) const {
  *out = KeyDeletion();
  KeyInfo info;
  SecretKey key;
  LSIFS_RETURN_IF_ERROR(store_.keyring().Load(extension, &info, &key));
  // Under the record's lock: nothing is published or delivered meanwhile.
  RecordLock lock;
  LSIFS_RETURN_IF_ERROR(lock.Acquire(store_.deliveries_lock_path(extension)));
  for (const auto& [id, key_id] : ExtensionLsis(store_, extension)) out->lsis.push_back(id);
  if (!out->lsis.empty() && !force) return Status::Ok();
  for (uint64_t id : out->lsis) {
    DropResult r;
    Status s = Drop(id, &r, /*force=*/true);
    if (s.IsNotFound()) continue;
    LSIFS_RETURN_IF_ERROR(s.WithContext("dropping LSI " + FormatId(id)));
    out->bytes += r.bytes;
    if (r.deferred) out->deferred.push_back(id);
  }
  const std::string record = store_.deliveries_path(extension);
  out->bytes += FileBytes(record);
  if (::unlink(record.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno("removing " + record, errno);
  }
  LSIFS_RETURN_IF_ERROR(store_.keyring().Remove(extension));
  ::unlink(store_.deliveries_lock_path(extension).c_str());  // we hold it; waiters get an error
  out->deleted = true;
  return Status::Ok();
}

}  // namespace lsifs
