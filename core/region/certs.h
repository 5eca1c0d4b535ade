// Certificates of the two-site form (DESIGN.md, "Where each part runs"): a
// store's own certificate authority issues one client certificate per
// extension (a site) and the region's server certificate; lsid accepts a
// connection only with a client certificate of that CA, serves only the
// extension it names, and refuses one the CA has revoked. On OpenSSL 3
// (ECDSA P-256, SHA-256), PEM files, in the store (Store::ca_dir):
//
//   ca.key / ca.crt          the CA (the key 0600, never leaves the region)
//   server.key / server.crt  lsid's certificate: subjectAltNames = the hosts
//                            and addresses sites reach it by; serverAuth
//   crl.pem                  the revocation list, signed by the CA; lsid
//                            rereads it when it changes
//   issued                   one line per certificate issued: serial (hex),
//                            extension, not-after (unix seconds); what
//                            `cert revoke EXT` revokes by (format in lsi.5)
//   lock                     held (flock) by every change to these files
//
// Serials are written everywhere as BN_bn2hex lower-cased: 32 hex digits
// (16 random bytes, positive). The store has a CA iff ca.crt is there: it
// is written last by InitCa.
//
// A site's certificate: subject CN = the extension's name, extended key
// usage clientAuth only (so that the server's certificate cannot act as a
// site), valid `days` days.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/store/store.h"
#include "core/util/status.h"

typedef struct x509_st X509;

namespace lsifs {

// The hosts a server certificate is made for when none is named:
// "localhost", "127.0.0.1", "::1" and this host's name.
std::vector<std::string> DefaultServerHosts();

struct CaOptions {
  // Names and addresses (IPv4/IPv6 literals) the server certificate is
  // valid for; none: "localhost", "127.0.0.1", "::1" and this host's name.
  std::vector<std::string> server_hosts;
  uint32_t days = 3650;        // the CA's validity
  uint32_t server_days = 825;  // the server certificate's
};

// Creates the store's CA and the server certificate. kExists when the store
// already has a CA (it is never replaced: every site's certificate hangs on
// it). Files appear whole or not at all (written to tmp/, fsynced, renamed).
Status InitCa(const Store& store, const CaOptions& options);

// Issues a new server certificate for `hosts` (none: DefaultServerHosts),
// replacing the old one: lsid reads it at start.
Status IssueServerCertificate(const Store& store, const std::vector<std::string>& hosts,
                              uint32_t days);

struct IssuedCertificate {
  std::string extension;
  std::string serial;                        // lower-case hex
  int64_t not_after = 0;                     // unix seconds
  std::string key_path, cert_path, ca_path;  // what was written
};

// Issues a key and certificate for `extension` (which must have a key in the
// store) into `out_dir` (created 0700 when missing): EXT.key (0600),
// EXT.crt and ca.crt, the three files a site needs. Recorded in `issued`.
Status IssueSiteCertificate(const Store& store, const std::string& extension,
                            const std::string& out_dir, uint32_t days, IssuedCertificate* out);

// Revokes every certificate issued to `extension` that is not yet revoked,
// and writes a new CRL (atomically; the entries of the old one are kept).
// `*revoked` receives their serials (none when all were revoked already);
// kNotFound when none was ever issued to it.
Status RevokeSite(const Store& store, const std::string& extension,
                  std::vector<std::string>* revoked);

// Certificates issued so far, oldest first, with whether each is revoked
// (by the CRL, verified). The site's files are not recorded: key_path,
// cert_path and ca_path are empty.
struct IssuedRecord {
  IssuedCertificate cert;
  bool revoked = false;
};
Status ListIssued(const Store& store, std::vector<IssuedRecord>* out);

// The serials a CRL revokes, read from `crl_path` and verified against the
// CA certificate at `ca_cert_path` (Corruption when its signature or
// issuer does not match; a missing file revokes nothing). On error `*out`
// is left as it was, so that lsid may keep the list it has.
class RevocationList {
 public:
  static Status Load(const std::string& crl_path, const std::string& ca_cert_path,
                     RevocationList* out);
  bool Revoked(const std::string& serial) const { return serials_.count(serial) > 0; }
  size_t size() const { return serials_.size(); }

 private:
  std::set<std::string> serials_;
};

// Who a verified peer certificate speaks for: the extension (its CN) and
// its serial. Permission when it is not a site certificate (no clientAuth
// usage, a CA's, not exactly one CN or one that is not a valid extension
// name). The chain and the CRL are the caller's to check.
struct PeerIdentity {
  std::string extension;
  std::string serial;  // lower-case hex
};
Status IdentifySite(X509* cert, PeerIdentity* out);

}  // namespace lsifs
