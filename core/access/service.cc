#include "core/access/service.h"

#include <cstdlib>

#include "core/access/report.h"
#include "core/util/names.h"

namespace lsifs {

Status ServeAccessRequest(AccessDb& db, const Store& store, const OriginKeys& keys,
                          const std::vector<std::string>& request, std::string* body) {
  if (request.size() >= 3 && (request[0] == "access-show" || request[0] == "access-heatmap")) {
    if (request[1] != kAllExtensions) LSIFS_RETURN_IF_ERROR(ValidateName("extension", request[1]));
    LSIFS_RETURN_IF_ERROR(ValidateName("volume", request[2]));
  }
  if (request.size() == 5 && request[0] == "access-show") {
    ShowRequest req;
    req.extension = request[1];
    req.volume = request[2];
    req.session = static_cast<uint32_t>(std::strtoul(request[3].c_str(), nullptr, 10));
    req.json = request[4] == "1";
    return RenderAccessShow(db, req, body);
  }
  if (request.size() == 3 && request[0] == "access-heatmap") {
    std::vector<SnapshotInfo> snaps;
    LSIFS_RETURN_IF_ERROR(ListSnapshots(store, keys, request[2], &snaps));
    if (snaps.empty()) return Status::NotFound("volume '" + request[2] + "' has no snapshots");
    const SnapshotInfo& latest = snaps.back();
    return RenderHeatmapSvg(db, request[1], request[2], latest.block_count(), latest.block_size,
                            body);
  }
  return Status::InvalidArgument("unknown request '" + (request.empty() ? "" : request[0]) + "'");
}

}  // namespace lsifs
