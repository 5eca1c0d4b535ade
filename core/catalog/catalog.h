// The catalog: every LSI of a store and where it stands in its life.
//
//   assembled  its layers and then its manifest are in place (the manifest,
//              written last, is the commit); no mount shows it yet
//   delivered  a restore gave it to its extension: mounts show it as
//              by-id/<id>.img, and as <volume>.img when it came from the
//              latest restore of that volume without --snapshot
//   expired    its TTL ran out (assembled LSIs only: a delivered LSI stays)
//   stale      it no longer stands on its volume's latest snapshot, or a
//              session was folded into the extension's model since its
//              blocks were planned
//   dropped    dropped while a mount had it open: gone from every listing,
//              its files removed when the last user releases it
//   unreadable its manifest or a layer is damaged or missing, or no key of
//              the store opens it
//
// What was delivered to an extension is kept in one record per extension
// (Store::deliveries_path), authenticated with a key derived from the
// extension key and numbered by a generation that only grows, so that a
// mount can tell a forged or rolled-back record. A mount *pins* every LSI it
// has open (a read lock on its manifest); a pinned LSI is never deleted
// under it. Eviction drops LSIs while they take more than the store's byte
// cap or the disk has less free than its floor, least useful first.
//
// Crash safety: files are written to a temporary, fsynced and renamed; a
// drop writes its tombstone first and removes the manifest before the
// layers. Catalog::Open sweeps what a crash left: it finishes drops and
// removes layers that no manifest and no live assembly claims.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/crypto/keyfile.h"
#include "core/lsi/manifest.h"
#include "core/store/store.h"
#include "core/util/file.h"
#include "core/util/status.h"

namespace lsifs {

struct VolumeDeliveries;  // core/catalog/delivery_record.h

// The strategy of the LSIs the predictor composed: the only ones a restore
// reuses (the others are baselines, made to be measured).
inline constexpr char kPredictedStrategy[] = "predicted";

enum class LsiState { kAssembled, kDelivered, kExpired, kStale, kDropped, kUnreadable };
const char* LsiStateName(LsiState state);

// What freshness depends on besides the catalog: the clock, the volumes'
// latest snapshots and the extensions' learned models.
struct CatalogContext {
  int64_t now = 0;                                  // unix seconds
  std::map<std::string, uint64_t> latest_snapshot;  // volume -> newest snapshot
  // (extension, volume) -> sessions folded into that extension's model.
  std::map<std::pair<std::string, std::string>, uint32_t> model_sessions;
  bool models_known = false;  // false: staleness by model is not judged
  // (extension, volume) -> when its model was learned again without some of
  // what it had learned (lsictl access forget, reset), unix seconds.
  std::map<std::pair<std::string, std::string>, int64_t> relearned_at;
};

struct CatalogEntry {
  uint64_t lsi_id = 0;
  Manifest manifest;  // as listed, unauthenticated: for listings only
  LsiState state = LsiState::kAssembled;
  bool in_use = false;      // a mount has it open (pinned)
  bool alias = false;       // it is <volume>.img of its extension
  bool superseded = false;  // a later LSI of its (extension, volume) took its place
  uint64_t bytes = 0;       // manifest and layers on disk
  int64_t delivered = 0;    // unix seconds of its last delivery; 0: never
  int64_t last_used = 0;    // latest of creation, delivery and a mount's use
  std::string reason;       // why it is stale, expired or unreadable
};

// A delivered LSI as a mount sees it.
struct Delivery {
  uint64_t lsi_id = 0;
  std::string volume;
  bool alias = false;
};

struct DeliveryView {
  uint64_t generation = 0;
  std::vector<Delivery> deliveries;
};

struct DropResult {
  bool deferred = false;  // in use: it goes when its last user releases it
  uint64_t bytes = 0;     // freed now
};

struct EvictionReport {
  struct Victim {
    uint64_t lsi_id = 0;
    uint64_t bytes = 0;
    std::string why;  // "expired", "stale", "superseded", ...
    bool deferred = false;
  };
  std::vector<Victim> dropped;
  uint64_t bytes_before = 0, bytes_after = 0;  // LSI bytes
  uint64_t free_before = 0, free_after = 0;    // free bytes on the store's disk
  uint64_t cap = 0, floor = 0;
  bool satisfied = true;  // under the cap and above the floor afterwards
};

// What a key rotation did (Catalog::RotateKey).
struct KeyRotation {
  KeyInfo old_key, new_key;
  bool resumed = false;      // it finished a rotation that was interrupted
  uint64_t rekeyed = 0;      // LSIs rekeyed by this run
  uint64_t already = 0;      // LSIs an interrupted run had rekeyed
  uint64_t layer_bytes = 0;  // layer bytes rewritten (headers new, records copied)
  // LSIs of the extension neither key opens (damaged, or made with a key
  // deleted before), with the reason: they stay unusable.
  std::vector<std::pair<uint64_t, std::string>> left_out;
};

// What deleting an extension's key does or did (Catalog::DeleteKey).
struct KeyDeletion {
  std::vector<uint64_t> lsis;      // the extension's LSIs: unusable without its key
  std::vector<uint64_t> deferred;  // of those, in use: they go when released
  uint64_t bytes = 0;              // freed now
  bool deleted = false;
};

// A mount's hold on an LSI it has open: the manifest as read through the
// pinned file, authenticated. Released by Catalog::Unpin.
class LsiPin {
 public:
  const Manifest& manifest() const { return manifest_; }

 private:
  friend class Catalog;
  File file_;
  Manifest manifest_;
};

class Catalog {
 public:
  // Opens the catalog of `store` and sweeps what a crash left.
  static Status Open(const Store& store, std::unique_ptr<Catalog>* out);

  const Store& store() const { return store_; }

  // Every LSI with its state, oldest first.
  Status List(const CatalogContext& context, std::vector<CatalogEntry>* out) const;
  Status Find(uint64_t lsi_id, const CatalogContext& context, CatalogEntry* out) const;

  // --- assembly ---------------------------------------------------------
  // Publishes an LSI whose layers are written (under a claim, released
  // after this): its manifest goes last. The manifest's extension and key
  // come from `key_info`.
  Status Publish(const Manifest& manifest, const KeyInfo& key_info, const SecretKey& key) const;
  // The TTL for a new LSI of (extension, volume): twice the decayed interval
  // between the extension's restores of the volume, within [1 h, 7 d];
  // one day until there are two restores.
  int64_t TtlFor(const KeyInfo& key_info, const SecretKey& key, const std::string& volume) const;
  // How many restores of `volume` the extension's delivery record counts.
  uint32_t Restores(const KeyInfo& key_info, const SecretKey& key, const std::string& volume) const;

  // --- restore ----------------------------------------------------------
  // The newest fresh LSI of (extension, volume, snapshot) that the
  // predictor composed, authenticated; NotFound when there is none.
  Status FindFresh(const KeyInfo& key_info, const SecretKey& key, const std::string& volume,
                   uint64_t snapshot, const CatalogContext& context, Manifest* out) const;
  // Delivers an LSI to its extension; `alias`: it becomes <volume>.img.
  Status Deliver(uint64_t lsi_id, const KeyInfo& key_info, const SecretKey& key, bool alias,
                 int64_t now) const;

  // --- removal ----------------------------------------------------------
  // An LSI whose manifest cannot be read is dropped only with `force`: which
  // layers are its cannot be told, so the sweep that follows the drop takes
  // every layer no readable manifest names.
  Status Drop(uint64_t lsi_id, DropResult* result, bool force = false) const;
  // Drops LSIs until the cap and the floor hold (or nothing more may go);
  // never one of `keep` (an LSI just made; at a site, what each volume's
  // next restore opens) nor one in use.
  Status Evict(const CatalogContext& context, EvictionReport* report,
               std::span<const uint64_t> keep = {}) const;
  // Finishes interrupted drops, removes unclaimed layers and stale counters.
  void Sweep() const;

  // --- keys ---------------------------------------------------------------
  // Rotates the key of `extension` (lsictl key rotate): a next key is made,
  // every LSI of the extension is rekeyed (each layer's data key rewrapped,
  // then the manifest authenticated anew; block records are copied, never
  // decrypted), the delivery record is rewritten, and the next key takes
  // the key's place. Interrupted anywhere, every LSI stays readable with
  // one of the two keys (ExtensionKeys), and running it again finishes.
  // The local copies of base blocks fetched for those LSIs are discarded:
  // they are sealed under the old key.
  Status RotateKey(const std::string& extension,
                   const std::function<void(uint64_t done, uint64_t total)>& progress,
                   KeyRotation* out) const;
  // Deletes the key of `extension`. Without `force`, only says which LSIs
  // that would make unusable (out->lsis) and deletes nothing when there
  // are any; with it, drops them first. What was learned from the
  // extension's reads stays (lsictl access reset forgets it).
  Status DeleteKey(const std::string& extension, bool force, KeyDeletion* out) const;

  // --- mounts -----------------------------------------------------------
  // What was delivered to the extension, authenticated. Corruption when the
  // record was tampered with; an extension with no deliveries has none.
  Status ReadDeliveries(const KeyInfo& key_info, const SecretKey& key, DeliveryView* out) const;
  // Reads and authenticates one LSI's manifest (for a listing that shows it).
  Status ReadManifest(uint64_t lsi_id, const KeyInfo& key_info, const SecretKey& key,
                      Manifest* out) const;
  // Pins an LSI for a mount that opens it; NotFound when it is gone or
  // dropped. Waits at most a few seconds for a drop that holds it.
  Status Pin(uint64_t lsi_id, const KeyInfo& key_info, const SecretKey& key,
             std::unique_ptr<LsiPin>* out) const;
  // Releases a pin; finishes the LSI's drop if it was dropped meanwhile.
  void Unpin(std::unique_ptr<LsiPin> pin) const;

 private:
  explicit Catalog(const Store& store) : store_(store) {}
  // Unavailable when `key_info` is no longer the extension's key.
  Status CheckKeyInForce(const KeyInfo& key_info) const;
  // Rekeys one LSI from `keys.info` to `keys.next_info`; false in *done
  // when it was already.
  Status RekeyLsi(uint64_t lsi_id, const ExtensionKeys& keys, bool* done,
                  uint64_t* layer_bytes) const;
  bool InUse(uint64_t lsi_id) const;
  // What the extension's delivery record says of its restores of `volume`.
  VolumeDeliveries RestoreHistory(const KeyInfo& key_info, const SecretKey& key,
                                  const std::string& volume) const;
  // Deletes an LSI that is tombstoned and not in use; false if in use.
  bool FinishDrop(uint64_t lsi_id, uint64_t* bytes) const;
  uint64_t LsiBytes(const Manifest& m) const;

  const Store& store_;
};

}  // namespace lsifs
