// The requests lsictl makes of the co-access database. A running lsifs
// serves them through the control socket; without one, lsictl serves them
// itself on the database. Both call ServeAccessRequest, so they answer alike.
//
//   access-show    EXT VOLUME SESSION(0 = overview) JSON(0|1)
//   access-heatmap EXT VOLUME          -> an SVG document
#pragma once

#include <string>
#include <vector>

#include "core/access/access_db.h"
#include "core/origin/snapshot.h"
#include "core/store/store.h"

namespace lsifs {

Status ServeAccessRequest(AccessDb& db, const Store& store, const OriginKeys& keys,
                          const std::vector<std::string>& request, std::string* body);

}  // namespace lsifs
