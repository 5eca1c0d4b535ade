#include "core/util/listen.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/util/numbers.h"

namespace lsifs {

Status ListenTcp(const std::string& address, const std::string& what, ListeningSocket* out) {
  namespace net = boost::asio;
  using tcp = net::ip::tcp;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument(what + " '" + address +
                                   "' is not ADDR:PORT (e.g. 127.0.0.1:9464 or [::1]:9464)");
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  uint64_t port = 0;
  LSIFS_RETURN_IF_ERROR(ParseUnsigned(address.substr(colon + 1), "the port", 0, 65535, &port));
  boost::system::error_code ec;
  const net::ip::address ip = net::ip::make_address(host, ec);
  if (ec) {
    return Status::InvalidArgument(what + " '" + host +
                                   "' is not an IP address (e.g. 127.0.0.1 or [::1])");
  }
  net::io_context setup;
  tcp::acceptor listening(setup);
  const tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
  tcp::endpoint bound;
  listening.open(endpoint.protocol(), ec);
  if (!ec) listening.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) listening.bind(endpoint, ec);
  if (!ec) listening.listen(net::socket_base::max_listen_connections, ec);
  if (!ec) bound = listening.local_endpoint(ec);
  if (ec) return Status::Unavailable("cannot listen on " + address + ": " + ec.message());
  const int fd = listening.release(ec);
  if (ec) return Status::Unavailable("cannot listen on " + address + ": " + ec.message());
  out->fd = fd;
  out->ipv6 = bound.address().is_v6();
  const std::string bound_host =
      out->ipv6 ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
  out->endpoint = bound_host + ":" + std::to_string(bound.port());
  return Status::Ok();
}

}  // namespace lsifs
