#include "core/util/names.h"

namespace lsifs {

Status ValidateName(std::string_view what, std::string_view name) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument(std::string(what) + " name '" + std::string(name) + "' " + why +
                                   " (use 1-64 of A-Z a-z 0-9 . _ -, not starting with . or -)");
  };
  if (name.empty()) return bad("is empty");
  if (name.size() > kMaxNameLength) return bad("is too long");
  if (name[0] == '.' || name[0] == '-') return bad("starts with . or -");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return bad("has a character that is not allowed");
  }
  return Status::Ok();
}

}  // namespace lsifs
