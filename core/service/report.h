// What has been learned, for people and scripts: `lsictl access show` and
// `lsictl access heatmap`, rendered here so that the daemon (over the
// control socket) and lsictl (on the database directly) print the same.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/access/access_db.h"
#include "core/service/picture.h"
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

enum class HeatmapFormat { kSvg, kPng };
// "svg" or "png"; anything else is refused, naming both.
Status ParseHeatmapFormat(const std::string& name, HeatmapFormat* out);
const char* HeatmapFormatName(HeatmapFormat format);

// What a heat map covers: the address space of the volume's latest snapshot.
struct HeatmapRequest {
  std::string extension;  // or kAllExtensions: every extension's sessions
  std::string volume;
  uint64_t snapshot = 0;
  uint64_t volume_blocks = 0;
  uint32_t block_size = 0;
  // Calls `visit` with each block the snapshot holds (its map, ascending);
  // fails when the map cannot be read whole.
  std::function<Status(const std::function<void(uint64_t block)>& visit)> present;
};

// The colours besides the palette (viridis, see picture.h), named in
// lsictl(8) and the command's help: none is a colour viridis takes.
inline constexpr Rgb kHeatNeverRead{204, 204, 204};  // light grey
inline constexpr Rgb kHeatHole{255, 255, 255};       // white, with diagonal
inline constexpr Rgb kHeatHoleLine{150, 150, 150};   // lines of this grey
inline constexpr Rgb kHeatCluster{228, 26, 28};      // red

// The heat map of `lsictl access heatmap`: each block's cell coloured by the
// number of sessions that read it, apart from blocks never read and from
// blocks the snapshot does not hold; `access show`'s clusters outlined and
// numbered; rows labelled with their first block and its byte offset.
Status DrawHeatmap(AccessDb& db, const HeatmapRequest& req, Picture* out);
// The same, as an SVG document or PNG bytes.
Status RenderHeatmap(AccessDb& db, const HeatmapRequest& req, HeatmapFormat format,
                     std::string* out);

}  // namespace lsifs
