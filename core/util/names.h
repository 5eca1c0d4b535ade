// Names of volumes and extensions: they become file names and LevelDB key
// parts, so they are restricted to a safe, printable alphabet.
#pragma once

#include <string>
#include <string_view>

#include "core/util/status.h"

namespace lsifs {

inline constexpr size_t kMaxNameLength = 64;

// 1..64 characters of [A-Za-z0-9._-], not starting with '.' or '-'.
// `what` names the thing in the error ("volume", "extension").
Status ValidateName(std::string_view what, std::string_view name);

}  // namespace lsifs
