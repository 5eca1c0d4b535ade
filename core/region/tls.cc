#include "core/region/tls.h"

#include <openssl/ssl.h>

#include "core/crypto/keyfile.h"

namespace lsifs::region_internal {

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

void TlsConnection::Abort() {
  net::post(io_, [this] {
    beast::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().close();
  });
}

}  // namespace lsifs::region_internal
