// What has been learned, for people and scripts: `lsictl access show` and
// `lsictl access heatmap`, rendered here so that the daemon (over the
// control socket) and lsictl (on the database directly) print the same.
#pragma once

#include <cstdint>
#include <string>

#include "core/access/access_db.h"
#include "core/util/status.h"

namespace lsifs {

struct ShowRequest {
  std::string extension;
  std::string volume;
  uint32_t session = 0;  // 0: the overview
  bool json = false;
  size_t top = 20;  // hottest blocks and clusters listed
};

// Overview: sessions with their sizes, the hottest blocks with estimated
// probabilities, co-access clusters. With a session: its blocks in
// first-access order.
Status RenderAccessShow(AccessDb& db, const ShowRequest& req, std::string* out);

// An SVG heat map of per-block session frequency over the volume's address
// space (`volume_blocks` blocks of `block_size` bytes).
Status RenderHeatmapSvg(AccessDb& db, const std::string& extension, const std::string& volume,
                        uint64_t volume_blocks, uint32_t block_size, std::string* svg);

}  // namespace lsifs
