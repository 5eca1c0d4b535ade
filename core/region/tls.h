// Inside core/region: one TLS 1.3 connection driven synchronously with a
// deadline on every step (Beast's tcp_stream expiry on an io_context of the
// connection's own), for the server's connection threads and the client's
// pooled connections alike. Messages move in steps, each with its own
// deadline: what times out is silence (or a drip), not a large body on a
// slow link.
// Not thread-safe, except Abort.
//
// Every asynchronous Beast and Asio operation is instantiated once, in
// tls.cc: the messages below are the only ones the region's protocol moves,
// and their users compile without Asio's templates.
#pragma once

#include <openssl/types.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <charconv>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "core/util/status.h"

namespace lsifs::region_internal {

namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
namespace http = boost::beast::http;

// A context for TLS 1.3 only, with mutual authentication against `ca_path`:
// `cert_path`/`key_path` are this side's certificate and key.
Status MakeTlsContext(bool server, const std::string& ca_path, const std::string& cert_path,
                      const std::string& key_path, std::unique_ptr<ssl::context>* out);

using Milliseconds = std::chrono::milliseconds;

// The slowest a message may move on average, past its first idle period.
inline constexpr uint64_t kMinBytesPerSecond = 16 * 1024;  // 128 kbit/s

// How long a message may take: each step at most `idle` without a byte
// moving, and the whole no longer than `idle` plus its size at
// `min_bytes_per_second` (0: no bound but the idle one). A large body on
// a slow link goes on; a peer that drips bytes to stay just inside the
// idle deadline fails as one that went silent.
struct Pace {
  // Implicit: a duration alone is the idle bound at the default floor.
  template <class Rep, class Period>
  Pace(std::chrono::duration<Rep, Period> idle_for, uint64_t min_rate = kMinBytesPerSecond)
      : idle(std::chrono::duration_cast<Milliseconds>(idle_for)), min_bytes_per_second(min_rate) {}
  Milliseconds idle;
  uint64_t min_bytes_per_second;
};

// The Content-Length of a message's header (checked by the parser or set by
// prepare_payload), 0 when it has none. Read from the field itself: GCC
// takes boost::optional's storage (content_length()) for uninitialized.
template <bool kRequest, class Fields>
uint64_t DeclaredLength(const http::header<kRequest, Fields>& header) {
  const auto field = header[http::field::content_length];
  uint64_t length = 0;
  (void)std::from_chars(field.data(), field.data() + field.size(), length);
  return length;
}

// The peer closed the connection, or went silent past a deadline: no
// answer is owed.
bool PeerLeft(const beast::error_code& ec);

class TlsConnection {
 public:
  explicit TlsConnection(ssl::context& ctx);
  ~TlsConnection();
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  // The server's side: a socket accepted elsewhere.
  beast::error_code Adopt(int fd);
  // The client's side: `host` resolved (a name or an address) and reached.
  beast::error_code Connect(const std::string& host, const std::string& port, Milliseconds timeout);
  // The client asks for `host` by name (SNI, unless it is an address) and
  // takes only a certificate that names it.
  beast::error_code ExpectHost(const std::string& host);
  beast::error_code Handshake(bool server, Milliseconds timeout);
  beast::error_code Shutdown(Milliseconds timeout);
  SSL* ssl();

  // A request's header, when the next one comes within `timeout`.
  beast::error_code ReadHeader(beast::flat_buffer& buffer,
                               http::request_parser<http::string_body>& parser,
                               Milliseconds timeout);
  // Reads the rest of a message (its header already read, or not), and
  // writes a whole one, at `pace`.
  beast::error_code ReadMessage(beast::flat_buffer& buffer,
                                http::request_parser<http::string_body>& parser, Pace pace);
  beast::error_code ReadMessage(beast::flat_buffer& buffer,
                                http::response_parser<http::string_body>& parser, Pace pace);
  beast::error_code WriteMessage(http::request<http::string_body>& message, Pace pace);
  beast::error_code WriteMessage(http::response<http::string_body>& message, Pace pace);
  beast::error_code WriteMessage(http::response<http::file_body>& message, Pace pace);
  // Bytes as they are: what a broken or hostile peer sends (tests).
  beast::error_code WriteBytes(std::string_view bytes, Milliseconds timeout);

  // Ends the connection from any thread: a blocked step fails at once.
  void Abort();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lsifs::region_internal
