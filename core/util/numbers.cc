#include "core/util/numbers.h"

#include <cerrno>
#include <cstdlib>

namespace lsifs {

Status ParseUnsigned(const std::string& text, const std::string& what, uint64_t min, uint64_t max,
                     uint64_t* out) {
  bool digits = !text.empty() && text.size() <= 20;
  for (char c : text) digits = digits && c >= '0' && c <= '9';
  errno = 0;
  unsigned long long v = digits ? std::strtoull(text.c_str(), nullptr, 10) : 0;
  if (!digits || errno != 0 || v < min || v > max) {
    return Status::InvalidArgument(what + " is a whole number from " + std::to_string(min) +
                                   " to " + std::to_string(max) + ", not '" + text + "'");
  }
  *out = v;
  return Status::Ok();
}

Status CheckFormatLine(const std::string& value, const std::string& name, uint64_t version,
                       const std::string& what) {
  const std::string prefix = name + "-";
  uint64_t found = 0;
  if (value.rfind(prefix, 0) != 0 ||
      !ParseUnsigned(value.substr(prefix.size()), "version", 1, UINT32_MAX, &found).ok()) {
    return Status::Corruption(what + ": unknown format '" + value + "'");
  }
  if (found != version) return UnsupportedVersion(what, found, 1, version);
  return Status::Ok();
}

}  // namespace lsifs
