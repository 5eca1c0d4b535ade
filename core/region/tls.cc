#include "core/region/tls.h"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>

#include "core/crypto/keyfile.h"
#include "core/region/protocol.h"

namespace lsifs::region_internal {

namespace net = boost::asio;
using tcp = net::ip::tcp;

Status MakeTlsContext(bool server, const std::string& ca_path, const std::string& cert_path,
                      const std::string& key_path, std::unique_ptr<ssl::context>* out) {
  auto ctx =
      std::make_unique<ssl::context>(server ? ssl::context::tls_server : ssl::context::tls_client);
  // TLS 1.3 only: forward secrecy and AEAD ciphers by construction.
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_3_VERSION) != 1) {
    return Status::IOError("this OpenSSL cannot restrict TLS to 1.3");
  }
  SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  // The key is refused before it is read when others may read it.
  LSIFS_RETURN_IF_ERROR(CheckSecretFile(key_path, server ? "lsid's key" : "site key"));
  beast::error_code ec;
  ctx->load_verify_file(ca_path, ec);
  if (ec) return Status::InvalidArgument("CA certificate " + ca_path + ": " + ec.message());
  ctx->use_certificate_chain_file(cert_path, ec);
  if (ec) return Status::InvalidArgument("certificate " + cert_path + ": " + ec.message());
  ctx->use_private_key_file(key_path, ssl::context::pem, ec);
  if (ec) return Status::InvalidArgument("key " + key_path + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return Status::InvalidArgument("key " + key_path + " does not belong to certificate " +
                                   cert_path);
  }
  ctx->set_verify_mode(server ? ssl::verify_peer | ssl::verify_fail_if_no_peer_cert
                              : ssl::verify_peer);
  *out = std::move(ctx);
  return Status::Ok();
}

namespace {

// What a message's header may take at the slowest pace: the most the
// region's protocol allows one.
constexpr uint64_t kHeaderAllowance = kMaxRequestHeaderBytes;

// The one completion handler of every operation: it keeps the result.
struct Done {
  beast::error_code* result;
  template <typename... Rest>
  void operator()(beast::error_code ec, Rest&&...) const {
    *result = ec;
  }
};

}  // namespace

struct TlsConnection::Impl {
  explicit Impl(ssl::context& ctx) : stream(io, ctx) {}

  beast::tcp_stream& tcp() { return stream.next_layer(); }

  // Runs one asynchronous operation to completion or until `timeout`
  // passes (then the socket is closed and the error is timeout). `start`
  // starts it with the handler it is given.
  template <typename Start>
  beast::error_code Run(Milliseconds timeout, Start&& start) {
    beast::error_code result = net::error::would_block;
    tcp().expires_after(timeout);
    start(Done{&result});
    io.restart();
    io.run();
    return result;
  }

  // A step's deadline at `pace` for a message of `size` bytes (its header
  // and body, as far as known) begun at `start`; zero when it is past.
  static Milliseconds Step(const Pace& pace, std::chrono::steady_clock::time_point start,
                           uint64_t size) {
    if (pace.min_bytes_per_second == 0) return pace.idle;
    const auto allowed =
        pace.idle + Milliseconds(static_cast<int64_t>(size * 1000 / pace.min_bytes_per_second));
    const auto left = std::chrono::duration_cast<Milliseconds>(start + allowed -
                                                               std::chrono::steady_clock::now());
    return std::max(Milliseconds(0), std::min(pace.idle, left));
  }

  template <class Parser>
  beast::error_code ReadMessage(beast::flat_buffer& buffer, Parser& parser, Pace pace) {
    const auto start = std::chrono::steady_clock::now();
    beast::error_code ec;
    while (!ec && !parser.is_done()) {
      const uint64_t size =
          kHeaderAllowance + (parser.is_header_done() ? DeclaredLength(parser.get()) : 0);
      const Milliseconds step = Step(pace, start, size);
      if (step.count() == 0) return beast::error::timeout;
      ec = Run(step, [&](Done done) { http::async_read_some(stream, buffer, parser, done); });
    }
    return ec;
  }

  template <bool kRequest, class Body>
  beast::error_code WriteMessage(http::message<kRequest, Body>& message, Pace pace) {
    const auto start = std::chrono::steady_clock::now();
    const uint64_t size = kHeaderAllowance + DeclaredLength(message);
    http::serializer<kRequest, Body> serializer{message};
    beast::error_code ec;
    while (!ec && !serializer.is_done()) {
      const Milliseconds step = Step(pace, start, size);
      if (step.count() == 0) return beast::error::timeout;
      ec = Run(step, [&](Done done) { http::async_write_some(stream, serializer, done); });
    }
    return ec;
  }

  net::io_context io{1};
  beast::ssl_stream<beast::tcp_stream> stream;
};

TlsConnection::TlsConnection(ssl::context& ctx) : impl_(std::make_unique<Impl>(ctx)) {}
TlsConnection::~TlsConnection() = default;

beast::error_code TlsConnection::Adopt(int fd) {
  beast::error_code ec;
  impl_->tcp().socket().assign(tcp::v6(), fd, ec);  // the protocol is only a tag here
  // Requests and answers go out in several writes: without this, Nagle's
  // algorithm holds the last one back for the peer's delayed ACK (40 ms).
  if (!ec) impl_->tcp().socket().set_option(tcp::no_delay(true), ec);
  return ec;
}

beast::error_code TlsConnection::Connect(const std::string& host, const std::string& port,
                                         Milliseconds timeout) {
  tcp::resolver resolver(impl_->io);
  beast::error_code ec;
  const auto results = resolver.resolve(host, port, ec);
  if (ec) return ec;
  ec = impl_->Run(timeout, [&](Done done) { impl_->tcp().async_connect(results, done); });
  if (!ec) impl_->tcp().socket().set_option(tcp::no_delay(true), ec);  // as in Adopt
  return ec;
}

bool PeerLeft(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::ssl::error::stream_truncated ||
         ec == beast::error::timeout || ec == net::error::operation_aborted ||
         ec == net::error::eof || ec == net::error::connection_reset;
}

beast::error_code TlsConnection::ExpectHost(const std::string& host) {
  beast::error_code ec;
  (void)net::ip::make_address(host, ec);
  const bool is_address = !ec;
  if (!is_address && SSL_ctrl(ssl(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                              const_cast<char*>(host.c_str())) != 1) {
    return net::error::invalid_argument;
  }
  impl_->stream.set_verify_callback(ssl::host_name_verification(host), ec);
  return ec;
}

beast::error_code TlsConnection::Handshake(bool server, Milliseconds timeout) {
  const auto side = server ? ssl::stream_base::server : ssl::stream_base::client;
  return impl_->Run(timeout, [&](Done done) { impl_->stream.async_handshake(side, done); });
}

beast::error_code TlsConnection::Shutdown(Milliseconds timeout) {
  return impl_->Run(timeout, [&](Done done) { impl_->stream.async_shutdown(done); });
}

SSL* TlsConnection::ssl() {
  return impl_->stream.native_handle();
}

beast::error_code TlsConnection::ReadHeader(beast::flat_buffer& buffer,
                                            http::request_parser<http::string_body>& parser,
                                            Milliseconds timeout) {
  return impl_->Run(
      timeout, [&](Done done) { http::async_read_header(impl_->stream, buffer, parser, done); });
}

beast::error_code TlsConnection::ReadMessage(beast::flat_buffer& buffer,
                                             http::request_parser<http::string_body>& parser,
                                             Pace pace) {
  return impl_->ReadMessage(buffer, parser, pace);
}

beast::error_code TlsConnection::ReadMessage(beast::flat_buffer& buffer,
                                             http::response_parser<http::string_body>& parser,
                                             Pace pace) {
  return impl_->ReadMessage(buffer, parser, pace);
}

beast::error_code TlsConnection::WriteMessage(http::request<http::string_body>& message,
                                              Pace pace) {
  return impl_->WriteMessage(message, pace);
}

beast::error_code TlsConnection::WriteMessage(http::response<http::string_body>& message,
                                              Pace pace) {
  return impl_->WriteMessage(message, pace);
}

beast::error_code TlsConnection::WriteMessage(http::response<http::file_body>& message, Pace pace) {
  return impl_->WriteMessage(message, pace);
}

beast::error_code TlsConnection::WriteBytes(std::string_view bytes, Milliseconds timeout) {
  return impl_->Run(timeout, [&](Done done) {
    net::async_write(impl_->stream, net::buffer(bytes.data(), bytes.size()), done);
  });
}

void TlsConnection::Abort() {
  Impl& impl = *impl_;
  net::post(impl.io, [&impl] {
    beast::error_code ignored;
    impl.tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    impl.tcp().close();
  });
}

}  // namespace lsifs::region_internal
