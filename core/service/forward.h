// A second mount of a store does not hold its co-access database: the
// daemon that does answers the control socket, and the second one's
// recorder forwards its sessions there (the session-* requests of
// service.h), so what it reads teaches the predictor too.
#pragma once

#include <memory>
#include <string>

#include "core/access/access_db.h"

namespace lsifs {

// A sink that writes sessions through the control socket at `socket_path`.
std::unique_ptr<SessionSink> MakeForwardingSink(const std::string& socket_path);

}  // namespace lsifs
