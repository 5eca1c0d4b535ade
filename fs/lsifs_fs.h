// The FUSE adapter: turns the catalog's deliveries to one extension into a
// read-only tree, and FUSE requests into calls on core/image.
//
//   /<volume>.img          the LSI the latest restore of that volume without
//                          --snapshot delivered (same inode as below)
//   /by-id/<lsi-id>.img    every LSI delivered to the extension
//   /.lsifs/mount          mount-wide state (text)
//   /.lsifs/<lsi-id>       counters of one LSI and of its session (text)
//   /.lsifs/<lsi-id>.json  the same as JSON
//
// The deliveries are reread when the catalog changes, so LSIs delivered
// while mounted appear without remounting. An image is pinned in the
// catalog from its first open until its session ends, and released then.
#pragma once

#include <fuse_lowlevel.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/catalog/catalog.h"
#include "core/crypto/keyfile.h"
#include "core/image/image.h"
#include "core/metrics/metrics.h"
#include "core/origin/origin.h"
#include "core/store/store.h"

namespace lsifs {

struct FsOptions {
  ImageOptions image;
  AccessRecorder* recorder = nullptr;  // null: no sessions are recorded
  // A session ends this long after its image's last close (or at unmount,
  // or when its LSI is dropped).
  std::chrono::milliseconds session_idle{30000};
  std::string origin_description;  // shown in .lsifs/mount
  // The successor table of (extension, volume) for read-time expansion,
  // or null (not built yet: asked again each second). Must not block.
  std::function<std::shared_ptr<const SuccessorTable>(const std::string& extension,
                                                      const std::string& volume)>
      successors;
  std::function<void(const std::string&)> log;
  // Adds what the daemon around the mount counts (the link, the assembly
  // queue, the mountpoint) to the mount's metrics. Must not block.
  std::function<void(MountMetrics*)> daemon_metrics;
};

class LsiFs {
 public:
  LsiFs(const Catalog& catalog, Origin& origin, ExtensionKeys keys, FsOptions options);
  ~LsiFs();

  // Reads the extension's keys again (lsictl key rotate told this mount, or
  // a file named a key it did not hold) and moves the pins of open images
  // to their rekeyed manifests. Images already open keep serving: their
  // layers' keys are in memory. Every later open uses the keys read now.
  Status ReloadKeys();
  const std::string& extension() const { return extension_; }
  // What the mount counts (for /metrics, the textfile and .lsifs/mount.json).
  void Metrics(MountMetrics* m);

  static const fuse_lowlevel_ops& Ops();
  // Writes every open image's counters to the store (also done once a
  // second by a background thread while mounted, and at the end).
  void SaveCounters();
  // Starts the background thread (session ends, counters, and telling the
  // kernel to forget names that went away through `session`).
  void StartBackground(fuse_session* session);
  void StopBackground();
  // Ends every session still open and releases every image (at unmount).
  void EndAllSessions();
  // Whether the mount may stop: true when no image is open, and from then
  // on every open is refused (a stop must not cut a reader off). Otherwise
  // false, with the names of the open images ("vol.img", "by-id/ID.img").
  bool StopIfIdle(std::vector<std::string>* open_images);
  // Sets where sessions are recorded; call before serving requests.
  void SetRecorder(AccessRecorder* recorder) { options_.recorder = recorder; }

 private:
  struct Entry {
    Manifest manifest;               // authenticated, as listed
    std::atomic<bool> listed{true};  // false once it is no longer delivered
    std::mutex open_mu;
    std::unique_ptr<LsiPin> pin;      // held while the image is open
    std::shared_ptr<LsiImage> image;  // opened on first open(), released at session end
    int open_count = 0;               // guarded by open_mu
    bool in_session = false;          // guarded by open_mu
    // The counters when the image was last released (guarded by open_mu).
    CounterValues released_lsi, released_session;
    std::chrono::steady_clock::time_point last_close;
  };

  // Inode numbers: fixed ones, then three per catalog entry.
  static constexpr fuse_ino_t kRootIno = 1, kByIdIno = 2, kCtlIno = 3, kCtlMountIno = 4,
                              kCtlMountJsonIno = 5;
  static bool IsMountFile(fuse_ino_t ino) { return ino == kCtlMountIno || ino == kCtlMountJsonIno; }
  static constexpr fuse_ino_t kFirstEntryIno = 16;
  enum class Kind { kImage = 0, kStatsText = 1, kStatsJson = 2 };
  static fuse_ino_t InoOf(size_t index, Kind kind) {
    return kFirstEntryIno + 3 * index + static_cast<size_t>(kind);
  }

  void Refresh();
  bool FillAttr(fuse_ino_t ino, struct stat* st);
  // Resolves an inode to its catalog entry (null for fixed inodes).
  Entry* EntryOf(fuse_ino_t ino, Kind* kind);
  std::vector<std::pair<std::string, fuse_ino_t>> List(fuse_ino_t dir);
  fuse_ino_t LookupName(fuse_ino_t parent, const std::string& name);
  fuse_ino_t FindName(fuse_ino_t parent, const std::string& name);
  std::string ControlText(fuse_ino_t ino);
  Status OpenImage(Entry& e, std::shared_ptr<LsiImage>* out);
  void ReleaseImage(Entry& e);
  // Ends the entry's session and releases its image when it has been idle
  // long enough, or is no longer delivered, or `force`.
  void MaybeEndSession(Entry& e, bool force);
  void UpdateSuccessors(Entry& e);
  void SaveCounters(uint64_t lsi_id, LsiImage& image);
  std::string SessionText(Entry& e);
  void Log(const std::string& line) const;

  static LsiFs* Self(fuse_req_t req) { return static_cast<LsiFs*>(fuse_req_userdata(req)); }
  static void OpInit(void* userdata, fuse_conn_info* conn);
  static void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name);
  static void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  static void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                        fuse_file_info* fi);
  static void OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  static void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
  static void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  static void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
  static void OpRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  static void OpStatfs(fuse_req_t req, fuse_ino_t ino);

  const Catalog& catalog_;
  const Store& store_;
  Origin& origin_;
  // The keys in force; swapped whole by ReloadKeys (never on the read path).
  std::shared_ptr<const ExtensionKeys> Keys() const;
  // Reads the keys from the store and puts them in force.
  Status LoadKeys();
  // The key files' identity (inode and time of EXT.key and EXT.key.next).
  std::string KeyFilesStamp() const;
  // The keys in force, read again first when the key files changed since
  // (a rotation this mount was not told of).
  std::shared_ptr<const ExtensionKeys> FreshKeys();
  // Calls `use` with the key of FreshKeys() that fits.
  template <typename Use>
  Status WithKeys(Use use);

  const std::string extension_;
  mutable std::mutex keys_mu_;
  std::shared_ptr<const ExtensionKeys> keys_;  // guarded by keys_mu_
  std::string keys_stamp_;                     // guarded by keys_mu_
  FsOptions options_;
  int64_t mounted_at_;
  std::atomic<bool> stopping_{false};

  std::mutex catalog_mu_;                        // guards the catalog; never taken on the read path
  std::vector<std::unique_ptr<Entry>> entries_;  // index = inode slot, never shrinks
  std::map<uint64_t, size_t> by_id_;
  std::map<std::string, size_t> alias_;  // volume -> entry of <volume>.img
  std::set<std::string> reported_;       // problems already logged once
  uint64_t generation_ = 0;              // of the delivery record last shown
  std::pair<int64_t, int64_t> scanned_mtimes_{-1, -1};
  // Names the kernel may still cache that went away or moved: sent by the
  // background thread, never from a request (the kernel holds the
  // directory then).
  std::vector<std::pair<fuse_ino_t, std::string>> stale_names_;
  fuse_session* session_ = nullptr;

  std::thread background_;
  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool bg_stop_ = false;
};

}  // namespace lsifs
