// Whole numbers from users (options, request fields): digits only, within
// bounds. strtoull alone takes "-1" (wrapping it), "+5", " 5" and "5x".
#pragma once

#include <cstdint>
#include <string>

#include "core/util/status.h"

namespace lsifs {

// `what` names the value in the error ("max_threads is a whole number from
// 2 to 1024").
Status ParseUnsigned(const std::string& text, const std::string& what, uint64_t min, uint64_t max,
                     uint64_t* out);

// The value of a text file's "format: NAME-N" line: Ok when it is
// NAME-`version`; NAME- with another number is UnsupportedVersion (lsifs
// reads versions 1 to `version`); anything else is not such a file. `what`
// names the file in the error.
Status CheckFormatLine(const std::string& value, const std::string& name, uint64_t version,
                       const std::string& what);

}  // namespace lsifs
