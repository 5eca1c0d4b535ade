// What a running lsifs counts, gathered in one place and written out three
// ways: Prometheus text exposition (GET /metrics, -o metrics=ADDR:PORT, and a
// node-exporter textfile, -o metrics_textfile=PATH), JSON (MOUNTPOINT/
// .lsifs/mount.json) and text for people (lsictl status, read back from the
// JSON). The names are in man/lsifs.8 (METRICS).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/access/recorder.h"
#include "core/image/counters.h"
#include "core/origin/link.h"
#include "core/util/status.h"

namespace lsifs {

struct LsiMetrics {
  uint64_t lsi_id = 0;
  std::string volume;
  bool open = false;
  std::string session;     // its restore session, described ("#3 open, 120 blocks recorded...")
  CounterValues counters;  // since its image was last opened by this mount
};

// A site of the two-site form (lsifs --region): its link to the region,
// what it pulled and what it sent.
struct SiteMetrics {
  uint64_t region_requests = 0;
  uint64_t region_retries = 0;
  uint64_t region_failures = 0;  // requests failed after every try
  uint64_t region_outages = 0;   // times the region stopped answering
  uint64_t region_reachable = 1;
  uint64_t manifests_pulled = 0;
  uint64_t layers_pulled = 0;
  uint64_t layer_bytes_pulled = 0;
  uint64_t pull_failures = 0;  // passes of the puller that failed
  uint64_t lsis_evicted = 0;   // pulled LSIs the site's byte cap evicted
  uint64_t sessions_sent = 0;
  uint64_t upload_failures = 0;  // passes of the uploader that failed
};

struct MountMetrics {
  std::string extension;
  std::string mountpoint;
  std::string store;
  int64_t mounted_at = 0;                // unix seconds
  uint64_t key_id = 0, next_key_id = 0;  // next: while a rotation is unfinished
  std::string origin;                    // the link, described
  std::vector<LsiMetrics> lsis;
  std::array<LinkClassStats, kLinkClasses> link{};
  WaitHistogram::Values origin_waits;
  bool recording = false;
  RecorderStats recorder;
  uint64_t cache_capacity_bytes = 0, cache_used_bytes = 0;
  uint64_t assemblies_queued = 0, assemblies_running = 0;
  uint64_t assemblies_done = 0, assemblies_failed = 0, assemblies_cancelled = 0;
  std::string region;  // the region's URL at a site; empty on one host
  SiteMetrics site;
};

// The Prometheus text exposition format, version 0.0.4.
std::string RenderPrometheus(const MountMetrics& m);
std::string RenderMountJson(const MountMetrics& m);
// Reads back what RenderMountJson wrote.
Status ParseMountJson(const std::string& text, MountMetrics* m);
// For people (lsictl status): sizes and durations in human units.
std::string RenderStatusText(const MountMetrics& m);

}  // namespace lsifs
