// Listening TCP sockets for lsifs's servers (the metrics endpoint, lsid):
// ADDR:PORT parsed once, one way, and bound before any thread starts.
#pragma once

#include <string>

#include "core/util/status.h"

namespace lsifs {

struct ListeningSocket {
  int fd = -1;  // the caller's to close
  bool ipv6 = false;
  std::string endpoint;  // ADDR:PORT bound ("[::1]:8443"; the port chosen when 0 was asked)
};

// Binds and listens on `address` ("127.0.0.1:9464", "[::1]:9464", port 0:
// any). `what` names the address in errors ("metrics address").
Status ListenTcp(const std::string& address, const std::string& what, ListeningSocket* out);

}  // namespace lsifs
