#include "core/util/status.h"

#include <cstring>

namespace lsifs {

Status Status::FromErrno(std::string_view context, int errnum) {
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(errnum);
  if (errnum == ENOENT) return Status(Code::kNotFound, std::move(msg));
  if (errnum == EACCES || errnum == EPERM) return Status(Code::kPermission, std::move(msg));
  if (errnum == EEXIST) return Status(Code::kExists, std::move(msg));
  return Status(Code::kIOError, std::move(msg));
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += message_;
  return Status(code_, std::move(msg));
}

}  // namespace lsifs
