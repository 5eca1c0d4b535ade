// Inside core/region: one TLS 1.3 connection driven synchronously with a
// deadline on every step (Beast's tcp_stream expiry on an io_context of the
// connection's own), for the server's connection threads and the client's
// pooled connections alike. Messages move in steps, each with its own
// deadline: what times out is silence, not a large body on a slow link.
// Not thread-safe, except Abort.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "core/util/status.h"

namespace lsifs::region_internal {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

// A context for TLS 1.3 only, with mutual authentication against `ca_path`:
// `cert_path`/`key_path` are this side's certificate and key.
Status MakeTlsContext(bool server, const std::string& ca_path, const std::string& cert_path,
                      const std::string& key_path, std::unique_ptr<ssl::context>* out);

class TlsConnection {
 public:
  explicit TlsConnection(ssl::context& ctx) : stream_(io_, ctx) {}

  beast::ssl_stream<beast::tcp_stream>& stream() { return stream_; }
  beast::tcp_stream& tcp() { return stream_.next_layer(); }
  SSL* ssl() { return stream_.native_handle(); }

  // Runs one asynchronous operation to completion or until `timeout`
  // passes (then the socket is closed and the error is timeout). `start`
  // is called with a completion handler taking (error_code, ...).
  template <typename Start>
  beast::error_code Run(std::chrono::milliseconds timeout, Start&& start) {
    beast::error_code result = net::error::would_block;
    tcp().expires_after(timeout);
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    io_.restart();
    io_.run();
    return result;
  }

  // Reads the rest of a message (its header already read, or not) and
  // writes a whole one, each step allowed `idle` without progress: a large
  // body on a slow link goes on while bytes move, a silent peer fails.
  template <bool kRequest, class Body>
  beast::error_code ReadMessage(beast::flat_buffer& buffer, http::parser<kRequest, Body>& parser,
                                std::chrono::milliseconds idle) {
    beast::error_code ec;
    while (!ec && !parser.is_done()) {
      ec =
          Run(idle, [&](auto handler) { http::async_read_some(stream_, buffer, parser, handler); });
    }
    return ec;
  }
  template <bool kRequest, class Body, class Fields>
  beast::error_code WriteMessage(http::message<kRequest, Body, Fields>& message,
                                 std::chrono::milliseconds idle) {
    http::serializer<kRequest, Body, Fields> serializer{message};
    beast::error_code ec;
    while (!ec && !serializer.is_done()) {
      ec = Run(idle, [&](auto handler) { http::async_write_some(stream_, serializer, handler); });
    }
    return ec;
  }

  // Ends the connection from any thread: a blocked step fails at once.
  void Abort();

 private:
  net::io_context io_{1};
  beast::ssl_stream<beast::tcp_stream> stream_;
};

}  // namespace lsifs::region_internal
