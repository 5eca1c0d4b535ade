#include "core/region/certs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "core/catalog/record_lock.h"
#include "core/crypto/keyfile.h"
#include "core/crypto/openssl_ptr.h"
#include "core/util/file.h"
#include "core/util/hex.h"
#include "core/util/names.h"
#include "core/util/numbers.h"

namespace lsifs {
namespace {

// ---- OpenSSL objects, owned ------------------------------------------------

using AsnTimePtr = std::unique_ptr<ASN1_TIME, OpenSslDeleter<ASN1_TIME_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, OpenSslDeleter<X509_EXTENSION_free>>;
using RevokedPtr = std::unique_ptr<X509_REVOKED, OpenSslDeleter<X509_REVOKED_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, OpenSslDeleter<GENERAL_NAMES_free>>;
using GenNamePtr = std::unique_ptr<GENERAL_NAME, OpenSslDeleter<GENERAL_NAME_free>>;
using NamePtr = std::unique_ptr<X509_NAME, OpenSslDeleter<X509_NAME_free>>;
using EkuPtr = std::unique_ptr<EXTENDED_KEY_USAGE, OpenSslDeleter<EXTENDED_KEY_USAGE_free>>;

// Largest files read: a certificate or key is a few hundred bytes, a CRL
// about 40 bytes per revoked certificate.
constexpr size_t kMaxPemSize = 64 * 1024;
constexpr size_t kMaxCrlSize = 16 << 20;
constexpr size_t kMaxIssuedSize = 64 << 20;
constexpr char kIssuedFormat[] = "lsifs-issued";
constexpr uint64_t kIssuedVersion = 1;
constexpr uint32_t kMaxDays = 36500;
// Certificates start an hour back, so that a site whose clock is a little
// behind accepts a certificate issued a moment ago.
constexpr int64_t kBackdate = 3600;
constexpr int64_t kDay = 86400;

// What OpenSSL said about its last failure, and a clean error queue after
// (a stale entry would be blamed on someone else's next call).
std::string OpenSslReason() {
  const unsigned long e = ERR_peek_last_error();
  std::string reason;
  if (e != 0) {
    const char* r = ERR_reason_error_string(e);
    if (r != nullptr) {
      reason = r;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      reason = buf;
    }
  }
  ERR_clear_error();
  return reason.empty() ? "no reason given" : reason;
}

// An OpenSSL call that failed on input we made: the library is unusable.
Status CryptoError(const std::string& what) {
  return Status::IOError(what + " failed (OpenSSL: " + OpenSslReason() + ")");
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int64_t Now() {
  return static_cast<int64_t>(std::time(nullptr));
}

// A serial as every function here names it: BN_bn2hex, lower-cased.
std::string SerialHex(const ASN1_INTEGER* serial) {
  BnPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) {
    ERR_clear_error();
    return "";
  }
  char* hex = BN_bn2hex(bn.get());
  if (hex == nullptr) {
    ERR_clear_error();
    return "";
  }
  std::string out = Lower(hex);
  OPENSSL_free(hex);
  return out;
}

bool IsSerialText(const std::string& s) {
  return !s.empty() && s.size() <= 40 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

// 16 random bytes, the first in 0x01..0x7f: positive, and always 32 hex
// digits.
Status RandomSerial(AsnIntPtr* out) {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) return CryptoError("random serial");
  b[0] &= 0x7f;
  if (b[0] == 0) b[0] = 1;
  BnPtr bn(BN_bin2bn(b, sizeof b, nullptr));
  if (!bn) return CryptoError("serial");
  out->reset(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!*out) return CryptoError("serial");
  return Status::Ok();
}

Status SerialFromHex(const std::string& hex, AsnIntPtr* out) {
  BIGNUM* raw = nullptr;
  if (!IsSerialText(hex) || BN_hex2bn(&raw, hex.c_str()) == 0) {
    ERR_clear_error();
    return Status::Corruption("'" + hex + "' is not a certificate serial");
  }
  BnPtr bn(raw);
  out->reset(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!*out) return CryptoError("serial");
  return Status::Ok();
}

// The unix time an ASN1_TIME stands for.
bool TimeOf(const ASN1_TIME* t, int64_t* out) {
  struct tm tm;
  std::memset(&tm, 0, sizeof tm);
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    ERR_clear_error();
    return false;
  }
  *out = static_cast<int64_t>(timegm(&tm));
  return true;
}

Status SetTime(ASN1_TIME* t, int64_t when) {
  if (ASN1_TIME_set(t, static_cast<time_t>(when)) == nullptr) return CryptoError("time");
  return Status::Ok();
}

// ---- PEM in and out ----------------------------------------------------------

Status PemText(BIO* bio, std::string* out) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  if (n <= 0 || data == nullptr) return CryptoError("PEM encoding");
  out->assign(data, static_cast<size_t>(n));
  return Status::Ok();
}

Status CertPem(X509* cert, std::string* out) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return CryptoError("PEM encoding");
  return PemText(bio.get(), out);
}

Status CrlPem(X509_CRL* crl, std::string* out) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), crl) != 1) return CryptoError("PEM encoding");
  return PemText(bio.get(), out);
}

// Writes a private key (PKCS#8 PEM, unencrypted) mode 0600 through a
// temporary in `tmp_dir`; the PEM text is wiped before it is freed.
Status WritePrivateKey(const std::string& tmp_dir, const std::string& path, EVP_PKEY* key,
                       bool replace) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return CryptoError("PEM encoding of a private key");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  if (n <= 0 || data == nullptr) return CryptoError("PEM encoding of a private key");
  const size_t size = static_cast<size_t>(n);
  Status s = WriteFileAtomically(
      tmp_dir, path, ByteSpan(reinterpret_cast<const uint8_t*>(data), size), 0600, replace);
  OPENSSL_cleanse(data, size);
  return s;
}

Status ParseCert(const std::string& text, const std::string& path, X509Ptr* out) {
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) return CryptoError("reading " + path);
  out->reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!*out) {
    return Status::Corruption(path + ": not a PEM certificate (" + OpenSslReason() + ")");
  }
  return Status::Ok();
}

Status LoadCert(const std::string& path, X509Ptr* out) {
  std::string text;
  LSIFS_RETURN_IF_ERROR(ReadWholeFile(path, kMaxPemSize, &text));
  return ParseCert(text, path, out);
}

// A private key file: refused, as key files are, when group or others may
// read it (see CheckSecretFile).
Status LoadPrivateKey(const std::string& path, const std::string& what, PkeyPtr* out) {
  LSIFS_RETURN_IF_ERROR(CheckSecretFile(path, what));
  std::string text;
  Status s = ReadWholeFile(path, kMaxPemSize, &text);
  if (s.ok()) {
    BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    if (bio) out->reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!*out) s = Status::Corruption(path + ": not a PEM private key (" + OpenSslReason() + ")");
  }
  OPENSSL_cleanse(text.data(), text.size());
  return s;
}

Status ParseCrl(const std::string& text, const std::string& path, CrlPtr* out) {
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) return CryptoError("reading " + path);
  out->reset(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (!*out) {
    return Status::Corruption(path + ": not a PEM certificate revocation list (" + OpenSslReason() +
                              ")");
  }
  return Status::Ok();
}

// The CRL at `path`, checked against the CA: its signature verifies with
// the CA's key and its issuer is the CA. NotFound when there is none.
Status LoadVerifiedCrl(const std::string& path, X509* ca, const std::string& ca_path, CrlPtr* out) {
  std::string text;
  LSIFS_RETURN_IF_ERROR(ReadWholeFile(path, kMaxCrlSize, &text));
  CrlPtr crl;
  LSIFS_RETURN_IF_ERROR(ParseCrl(text, path, &crl));
  EVP_PKEY* ca_key = X509_get0_pubkey(ca);
  if (ca_key == nullptr) return Status::Corruption(ca_path + ": no public key in it");
  if (X509_CRL_verify(crl.get(), ca_key) != 1) {
    ERR_clear_error();
    return Status::Corruption(path + ": its signature does not verify with the CA of " + ca_path +
                              " (altered, or made by another CA); restore it from a backup");
  }
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca)) != 0) {
    return Status::Corruption(path + ": issued by another CA than the one of " + ca_path +
                              "; restore it from a backup");
  }
  *out = std::move(crl);
  return Status::Ok();
}

// ---- names -----------------------------------------------------------------

// A DNS name of letters, digits and hyphens in dot-separated labels.
bool IsDnsName(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i <= host.size(); ++i) {
    if (i == host.size() || host[i] == '.') {
      if (label == 0 || label > 63 || host[i - 1] == '-' || host[i - label] == '-') return false;
      label = 0;
      continue;
    }
    const char c = host[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    ++label;
  }
  return true;
}

Status HostName(const std::string& host, GenNamePtr* out) {
  unsigned char addr[16];
  int len = 0;
  if (inet_pton(AF_INET, host.c_str(), addr) == 1) {
    len = 4;
  } else if (inet_pton(AF_INET6, host.c_str(), addr) == 1) {
    len = 16;
  } else if (!IsDnsName(host)) {
    return Status::InvalidArgument("'" + host +
                                   "' is neither a host name (letters, digits, - and .) nor an "
                                   "IPv4 or IPv6 address");
  }
  GenNamePtr name(GENERAL_NAME_new());
  if (!name) return CryptoError("subjectAltName");
  if (len > 0) {
    ASN1_OCTET_STRING* ip = ASN1_OCTET_STRING_new();
    if (ip == nullptr || ASN1_OCTET_STRING_set(ip, addr, len) != 1) {
      ASN1_OCTET_STRING_free(ip);
      return CryptoError("subjectAltName");
    }
    GENERAL_NAME_set0_value(name.get(), GEN_IPADD, ip);
  } else {
    ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
    if (dns == nullptr || ASN1_STRING_set(dns, host.data(), static_cast<int>(host.size())) != 1) {
      ASN1_IA5STRING_free(dns);
      return CryptoError("subjectAltName");
    }
    GENERAL_NAME_set0_value(name.get(), GEN_DNS, dns);
  }
  *out = std::move(name);
  return Status::Ok();
}

// The hosts of a server certificate, in order, each once; checked.
Status ServerHosts(const std::vector<std::string>& given, std::vector<std::string>* out) {
  out->clear();
  for (const auto& h : given.empty() ? DefaultServerHosts() : given) {
    GenNamePtr unused;
    LSIFS_RETURN_IF_ERROR(HostName(h, &unused));
    if (std::find(out->begin(), out->end(), h) == out->end()) out->push_back(h);
  }
  return Status::Ok();
}

Status CheckDays(uint32_t days, const char* what) {
  if (days == 0 || days > kMaxDays) {
    return Status::InvalidArgument(std::string(what) + " must be valid 1 to " +
                                   std::to_string(kMaxDays) + " days, not " + std::to_string(days));
  }
  return Status::Ok();
}

// ---- making certificates -------------------------------------------------

struct CertSpec {
  std::string common_name;
  int64_t not_before = 0;
  int64_t not_after = 0;
  bool ca = false;
  const char* key_usage = nullptr;      // "critical,digitalSignature"
  const char* ext_key_usage = nullptr;  // "clientAuth", "serverAuth"
  std::vector<std::string> hosts;       // subjectAltName
};

Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return CryptoError(std::string("certificate extension ") + OBJ_nid2sn(nid));
  }
  return Status::Ok();
}

// A certificate for `key`, signed by `issuer_key` under `issuer`'s name
// (self-signed when `issuer` is null), SHA-256. `*serial` is its serial.
Status MakeCertificate(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                       X509Ptr* out, std::string* serial) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) return CryptoError("X509_new");
  AsnIntPtr serial_number;
  LSIFS_RETURN_IF_ERROR(RandomSerial(&serial_number));
  if (X509_set_serialNumber(cert.get(), serial_number.get()) != 1) return CryptoError("serial");
  NamePtr name(X509_NAME_new());
  if (!name ||
      X509_NAME_add_entry_by_NID(name.get(), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(spec.common_name.data()),
                                 static_cast<int>(spec.common_name.size()), -1, 0) != 1 ||
      X509_set_subject_name(cert.get(), name.get()) != 1 ||
      X509_set_issuer_name(cert.get(),
                           issuer != nullptr ? X509_get_subject_name(issuer) : name.get()) != 1) {
    return CryptoError("certificate name");
  }
  LSIFS_RETURN_IF_ERROR(SetTime(X509_getm_notBefore(cert.get()), spec.not_before));
  LSIFS_RETURN_IF_ERROR(SetTime(X509_getm_notAfter(cert.get()), spec.not_after));
  if (X509_set_pubkey(cert.get(), key) != 1) return CryptoError("certificate key");

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  LSIFS_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_basic_constraints,
                                     spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE"));
  LSIFS_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_key_usage, spec.key_usage));
  if (spec.ext_key_usage != nullptr) {
    LSIFS_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_ext_key_usage, spec.ext_key_usage));
  }
  LSIFS_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  LSIFS_RETURN_IF_ERROR(
      AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!spec.hosts.empty()) {
    NamesPtr names(sk_GENERAL_NAME_new_null());
    if (!names) return CryptoError("subjectAltName");
    for (const auto& h : spec.hosts) {
      GenNamePtr one;
      LSIFS_RETURN_IF_ERROR(HostName(h, &one));
      if (sk_GENERAL_NAME_push(names.get(), one.get()) <= 0) return CryptoError("subjectAltName");
      (void)one.release();  // the stack owns it now
    }
    if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) !=
        1) {
      return CryptoError("subjectAltName");
    }
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) return CryptoError("signing");
  *serial = SerialHex(serial_number.get());
  *out = std::move(cert);
  return Status::Ok();
}

Status NewKey(PkeyPtr* out) {
  out->reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!*out) return CryptoError("EC P-256 key generation");
  return Status::Ok();
}

// A CRL of the CA: the entries of `previous` (if any), then `serials`
// revoked now; numbered one more than `previous`; valid until the CA is.
Status MakeCrl(X509* ca, EVP_PKEY* ca_key, X509_CRL* previous,
               const std::vector<std::string>& serials, int64_t now, std::string* pem) {
  CrlPtr crl(X509_CRL_new());
  if (!crl || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca)) != 1) {
    return CryptoError("CRL");
  }
  AsnTimePtr last(ASN1_TIME_new());
  if (!last) return CryptoError("CRL");
  LSIFS_RETURN_IF_ERROR(SetTime(last.get(), now));
  if (X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), X509_get0_notAfter(ca)) != 1) {
    return CryptoError("CRL times");
  }
  BnPtr number(BN_new());
  if (!number || BN_set_word(number.get(), 1) != 1) return CryptoError("CRL number");
  if (previous != nullptr) {
    STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(previous);
    for (int i = 0; i < sk_X509_REVOKED_num(entries); ++i) {
      RevokedPtr copy(X509_REVOKED_dup(sk_X509_REVOKED_value(entries, i)));
      if (!copy || X509_CRL_add0_revoked(crl.get(), copy.get()) != 1) return CryptoError("CRL");
      (void)copy.release();
    }
    AsnIntPtr old(static_cast<ASN1_INTEGER*>(
        X509_CRL_get_ext_d2i(previous, NID_crl_number, nullptr, nullptr)));
    if (old) {
      BnPtr was(ASN1_INTEGER_to_BN(old.get(), nullptr));
      if (!was || BN_add_word(was.get(), 1) != 1) return CryptoError("CRL number");
      number = std::move(was);
    }
  }
  for (const auto& serial : serials) {
    AsnIntPtr n;
    LSIFS_RETURN_IF_ERROR(SerialFromHex(serial, &n));
    RevokedPtr entry(X509_REVOKED_new());
    if (!entry || X509_REVOKED_set_serialNumber(entry.get(), n.get()) != 1 ||
        X509_REVOKED_set_revocationDate(entry.get(), last.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), entry.get()) != 1) {
      return CryptoError("CRL entry");
    }
    (void)entry.release();
  }
  AsnIntPtr crl_number(BN_to_ASN1_INTEGER(number.get(), nullptr));
  if (!crl_number ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, crl_number.get(), 0, 0) != 1) {
    return CryptoError("CRL number");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, ca, nullptr, nullptr, crl.get(), 0);
  ExtPtr akid(X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!akid || X509_CRL_add_ext(crl.get(), akid.get(), -1) != 1) return CryptoError("CRL AKID");
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), ca_key, EVP_sha256()) <= 0) {
    return CryptoError("signing the CRL");
  }
  return CrlPem(crl.get(), pem);
}

// ---- the store's CA --------------------------------------------------------

Status NoCa(const Store& store) {
  return Status::NotFound("store " + store.root() +
                          " has no certificate authority; create one with: lsictl -s " +
                          store.root() + " ca init");
}

// The CA's certificate and key (which must belong together).
Status LoadCa(const Store& store, X509Ptr* cert, PkeyPtr* key) {
  if (!PathExists(store.ca_cert_path())) return NoCa(store);
  LSIFS_RETURN_IF_ERROR(LoadCert(store.ca_cert_path(), cert));
  LSIFS_RETURN_IF_ERROR(LoadPrivateKey(store.ca_key_path(), "CA key file", key));
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return Status::Corruption(store.ca_key_path() + " is not the key of " + store.ca_cert_path() +
                              "; restore both from a backup");
  }
  return Status::Ok();
}

int64_t NotAfterOf(X509* cert) {
  int64_t t = 0;
  return TimeOf(X509_get0_notAfter(cert), &t) ? t : 0;
}

// Refuses a certificate that would outlive the CA: it could never verify
// in its last days.
Status FitsCa(X509* ca, int64_t not_after, uint32_t days) {
  const int64_t ca_end = NotAfterOf(ca);
  if (not_after <= ca_end) return Status::Ok();
  const int64_t left = std::max<int64_t>(0, (ca_end - Now()) / kDay);
  return Status::InvalidArgument(
      std::to_string(days) + " days would outlive the CA, which is valid " + std::to_string(left) +
      " more days: ask for at most " + std::to_string(left));
}

// ca/ itself: private, as keys/ is.
Status MakeCaDir(const Store& store) {
  const std::string dir = store.ca_dir();
  if (::mkdir(dir.c_str(), 0700) == 0) return SyncDirectory(store.root());
  if (errno != EEXIST) return Status::FromErrno("mkdir " + dir, errno);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return Status::FromErrno(dir, errno);
  if (!S_ISDIR(st.st_mode)) return Status::Corruption(dir + " is not a directory");
  return Status::Ok();
}

// ---- the issued file -------------------------------------------------------

std::string IssuedHeader() {
  return "# lsifs: certificates issued by this store's CA, oldest first:\n"
         "# SERIAL EXTENSION NOT_AFTER (unix seconds). Revocations are in crl.pem.\n"
         "format: " +
         std::string(kIssuedFormat) + "-" + std::to_string(kIssuedVersion) + "\n";
}

std::string IssuedLine(const IssuedCertificate& c) {
  return c.serial + " " + c.extension + " " + std::to_string(c.not_after) + "\n";
}

// The records of `issued`; none when there is no such file.
Status ReadIssued(const Store& store, std::vector<IssuedCertificate>* out) {
  out->clear();
  const std::string path = store.issued_path();
  std::string text;
  Status s = ReadWholeFile(path, kMaxIssuedSize, &text);
  if (s.IsNotFound()) return Status::Ok();
  LSIFS_RETURN_IF_ERROR(s);
  std::istringstream in(text);
  std::string line;
  bool saw_format = false;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("format: ", 0) == 0) {
      LSIFS_RETURN_IF_ERROR(CheckFormatLine(line.substr(8), kIssuedFormat, kIssuedVersion,
                                            "certificate list " + path));
      saw_format = true;
      continue;
    }
    auto bad = [&] {
      return Status::Corruption(path + ": line " + std::to_string(n) +
                                " is not 'SERIAL EXTENSION NOT_AFTER'");
    };
    if (!saw_format) return Status::Corruption(path + ": not a certificate list (no format line)");
    const size_t a = line.find(' ');
    const size_t b = a == std::string::npos ? a : line.find(' ', a + 1);
    if (b == std::string::npos || line.find(' ', b + 1) != std::string::npos) return bad();
    IssuedCertificate c;
    c.serial = line.substr(0, a);
    c.extension = line.substr(a + 1, b - a - 1);
    uint64_t not_after = 0;
    if (!IsSerialText(c.serial) || !ValidateName("extension", c.extension).ok() ||
        !ParseUnsigned(line.substr(b + 1), "not_after", 0, INT64_MAX, &not_after).ok()) {
      return bad();
    }
    c.not_after = static_cast<int64_t>(not_after);
    out->push_back(std::move(c));
  }
  if (!saw_format && !text.empty()) {
    return Status::Corruption(path + ": not a certificate list (no format line)");
  }
  return Status::Ok();
}

// Adds one record (under the CA lock): the file is written anew whole.
Status AppendIssued(const Store& store, const IssuedCertificate& c) {
  const std::string path = store.issued_path();
  std::vector<IssuedCertificate> kept;
  LSIFS_RETURN_IF_ERROR(ReadIssued(store, &kept));  // refuse to extend a damaged file
  std::string text;
  Status s = ReadWholeFile(path, kMaxIssuedSize, &text);
  if (s.IsNotFound()) {
    text = IssuedHeader();
  } else {
    LSIFS_RETURN_IF_ERROR(s);
    if (!text.empty() && text.back() != '\n') text += '\n';
  }
  text += IssuedLine(c);
  return WriteFileAtomically(store.tmp_dir(), path, AsBytes(text), 0644, /*replace=*/true);
}

bool HoldsText(const std::string& path, const std::string& text) {
  std::string there;
  return ReadWholeFile(path, kMaxPemSize, &there).ok() && there == text;
}

// Writes `text` to `path` unless a file is there; one with the same content
// is left as it is (a folder that already holds the CA's certificate).
Status WriteNewOrSame(const std::string& dir, const std::string& path, const std::string& text) {
  if (PathExists(path)) {
    if (HoldsText(path, text)) return Status::Ok();
    return Status::Exists(path + " already exists and is not this store's CA; move it away, " +
                          "or write to another folder");
  }
  return WriteFileAtomically(dir, path, AsBytes(text), 0644, /*replace=*/false);
}

}  // namespace

std::vector<std::string> DefaultServerHosts() {
  std::vector<std::string> hosts{"localhost", "127.0.0.1", "::1"};
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) == 0 && IsDnsName(name) &&
      std::find(hosts.begin(), hosts.end(), std::string(name)) == hosts.end()) {
    hosts.push_back(name);
  }
  return hosts;
}

Status InitCa(const Store& store, const CaOptions& options) {
  LSIFS_RETURN_IF_ERROR(CheckDays(options.days, "the CA"));
  LSIFS_RETURN_IF_ERROR(CheckDays(options.server_days, "the server certificate"));
  if (options.server_days > options.days) {
    return Status::InvalidArgument(
        "the server certificate (" + std::to_string(options.server_days) +
        " days) cannot outlive the CA (" + std::to_string(options.days) + " days)");
  }
  std::vector<std::string> hosts;
  LSIFS_RETURN_IF_ERROR(ServerHosts(options.server_hosts, &hosts));
  LSIFS_RETURN_IF_ERROR(MakeCaDir(store));
  RecordLock lock;
  LSIFS_RETURN_IF_ERROR(lock.Acquire(store.ca_lock_path()));
  // ca.crt is written last: the store has a CA iff it is there. What an
  // interrupted init left without it is made anew.
  if (PathExists(store.ca_cert_path())) {
    return Status::Exists("store " + store.root() + " already has a certificate authority (" +
                          store.ca_cert_path() +
                          "); it is never replaced, since every site's certificate hangs on it");
  }
  const int64_t now = Now();
  PkeyPtr ca_key, server_key;
  LSIFS_RETURN_IF_ERROR(NewKey(&ca_key));
  LSIFS_RETURN_IF_ERROR(NewKey(&server_key));
  CertSpec ca_spec;
  ca_spec.common_name = "lsifs CA " + FormatId(store.config().store_id);
  ca_spec.not_before = now - kBackdate;
  ca_spec.not_after = now + static_cast<int64_t>(options.days) * kDay;
  ca_spec.ca = true;
  ca_spec.key_usage = "critical,keyCertSign,cRLSign";
  X509Ptr ca;
  std::string serial;
  LSIFS_RETURN_IF_ERROR(
      MakeCertificate(ca_spec, ca_key.get(), nullptr, ca_key.get(), &ca, &serial));

  CertSpec server_spec;
  server_spec.common_name = hosts.front();
  server_spec.not_before = now - kBackdate;
  server_spec.not_after = now + static_cast<int64_t>(options.server_days) * kDay;
  server_spec.key_usage = "critical,digitalSignature";
  server_spec.ext_key_usage = "serverAuth";
  server_spec.hosts = hosts;
  X509Ptr server;
  LSIFS_RETURN_IF_ERROR(
      MakeCertificate(server_spec, server_key.get(), ca.get(), ca_key.get(), &server, &serial));

  std::string ca_pem, server_pem, crl_pem;
  LSIFS_RETURN_IF_ERROR(CertPem(ca.get(), &ca_pem));
  LSIFS_RETURN_IF_ERROR(CertPem(server.get(), &server_pem));
  LSIFS_RETURN_IF_ERROR(MakeCrl(ca.get(), ca_key.get(), nullptr, {}, now, &crl_pem));

  const std::string& tmp = store.tmp_dir();
  LSIFS_RETURN_IF_ERROR(WritePrivateKey(tmp, store.ca_key_path(), ca_key.get(), true));
  LSIFS_RETURN_IF_ERROR(WritePrivateKey(tmp, store.server_key_path(), server_key.get(), true));
  LSIFS_RETURN_IF_ERROR(
      WriteFileAtomically(tmp, store.server_cert_path(), AsBytes(server_pem), 0644, true));
  LSIFS_RETURN_IF_ERROR(WriteFileAtomically(tmp, store.crl_path(), AsBytes(crl_pem), 0644, true));
  LSIFS_RETURN_IF_ERROR(
      WriteFileAtomically(tmp, store.issued_path(), AsBytes(IssuedHeader()), 0644, true));
  Status s = WriteFileAtomically(tmp, store.ca_cert_path(), AsBytes(ca_pem), 0644, false);
  if (s.code() == Status::Code::kExists) {
    return Status::Exists("store " + store.root() + " already has a certificate authority (" +
                          store.ca_cert_path() + ")");
  }
  return s;
}

Status IssueServerCertificate(const Store& store, const std::vector<std::string>& hosts,
                              uint32_t days) {
  LSIFS_RETURN_IF_ERROR(CheckDays(days, "the server certificate"));
  std::vector<std::string> names;
  LSIFS_RETURN_IF_ERROR(ServerHosts(hosts, &names));
  X509Ptr ca;
  PkeyPtr ca_key;
  LSIFS_RETURN_IF_ERROR(LoadCa(store, &ca, &ca_key));
  RecordLock lock;
  LSIFS_RETURN_IF_ERROR(lock.Acquire(store.ca_lock_path()));
  const int64_t now = Now();
  CertSpec spec;
  spec.common_name = names.front();
  spec.not_before = now - kBackdate;
  spec.not_after = now + static_cast<int64_t>(days) * kDay;
  spec.key_usage = "critical,digitalSignature";
  spec.ext_key_usage = "serverAuth";
  spec.hosts = names;
  LSIFS_RETURN_IF_ERROR(FitsCa(ca.get(), spec.not_after, days));
  PkeyPtr key;
  LSIFS_RETURN_IF_ERROR(NewKey(&key));
  X509Ptr cert;
  std::string serial, pem;
  LSIFS_RETURN_IF_ERROR(MakeCertificate(spec, key.get(), ca.get(), ca_key.get(), &cert, &serial));
  LSIFS_RETURN_IF_ERROR(CertPem(cert.get(), &pem));
  // Two renames: a crash between them leaves a key and certificate that do
  // not match, which lsid refuses at start; issuing again mends it.
  LSIFS_RETURN_IF_ERROR(WritePrivateKey(store.tmp_dir(), store.server_key_path(), key.get(), true));
  return WriteFileAtomically(store.tmp_dir(), store.server_cert_path(), AsBytes(pem), 0644, true);
}

Status IssueSiteCertificate(const Store& store, const std::string& extension,
                            const std::string& out_dir, uint32_t days, IssuedCertificate* out) {
  LSIFS_RETURN_IF_ERROR(ValidateName("extension", extension));
  LSIFS_RETURN_IF_ERROR(CheckDays(days, "a site certificate"));
  {
    KeyInfo info;
    SecretKey key;
    LSIFS_RETURN_IF_ERROR(store.keyring().Load(extension, &info, &key));
  }
  X509Ptr ca;
  PkeyPtr ca_key;
  LSIFS_RETURN_IF_ERROR(LoadCa(store, &ca, &ca_key));
  std::string ca_pem;
  LSIFS_RETURN_IF_ERROR(CertPem(ca.get(), &ca_pem));
  const int64_t now = Now();
  CertSpec spec;
  spec.common_name = extension;
  spec.not_before = now - kBackdate;
  spec.not_after = now + static_cast<int64_t>(days) * kDay;
  spec.key_usage = "critical,digitalSignature";
  spec.ext_key_usage = "clientAuth";
  LSIFS_RETURN_IF_ERROR(FitsCa(ca.get(), spec.not_after, days));

  const std::string dir = out_dir.empty() ? "." : out_dir;
  // As mkdir -p: `--out SITE_DIR/tls` before the site folder exists.
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(dir).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Status::FromErrno("mkdir " + parent.string(), ec.value());
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno != EEXIST) return Status::FromErrno("mkdir " + dir, errno);
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Status::InvalidArgument(dir + " is not a folder");
    }
  }
  IssuedCertificate c;
  c.extension = extension;
  c.key_path = dir + "/" + extension + ".key";
  c.cert_path = dir + "/" + extension + ".crt";
  c.ca_path = dir + "/ca.crt";
  for (const auto* p : {&c.key_path, &c.cert_path}) {
    if (PathExists(*p)) {
      return Status::Exists(*p + " already exists; move it away, or write to another folder");
    }
  }
  if (PathExists(c.ca_path) && !HoldsText(c.ca_path, ca_pem)) {
    return Status::Exists(c.ca_path + " already exists and is not this store's CA; move it " +
                          "away, or write to another folder");
  }

  RecordLock lock;
  LSIFS_RETURN_IF_ERROR(lock.Acquire(store.ca_lock_path()));
  c.not_after = spec.not_after;
  PkeyPtr key;
  LSIFS_RETURN_IF_ERROR(NewKey(&key));
  X509Ptr cert;
  std::string pem;
  LSIFS_RETURN_IF_ERROR(MakeCertificate(spec, key.get(), ca.get(), ca_key.get(), &cert, &c.serial));
  LSIFS_RETURN_IF_ERROR(CertPem(cert.get(), &pem));
  // Recorded before any file is written: a certificate that exists is one
  // `cert revoke` knows of. A record without files revokes nothing in use.
  LSIFS_RETURN_IF_ERROR(AppendIssued(store, c));

  // The site's files are written beside their destination (the store's
  // tmp/ may be on another filesystem); what this call wrote goes again
  // when a later file fails.
  Status s = WritePrivateKey(dir, c.key_path, key.get(), false);
  if (s.ok()) {
    s = WriteFileAtomically(dir, c.cert_path, AsBytes(pem), 0644, false);
    if (s.ok()) {
      s = WriteNewOrSame(dir, c.ca_path, ca_pem);
      if (!s.ok()) ::unlink(c.cert_path.c_str());
    }
    if (!s.ok()) ::unlink(c.key_path.c_str());
  }
  LSIFS_RETURN_IF_ERROR(s);
  *out = std::move(c);
  return Status::Ok();
}

Status RevokeSite(const Store& store, const std::string& extension,
                  std::vector<std::string>* revoked) {
  revoked->clear();
  LSIFS_RETURN_IF_ERROR(ValidateName("extension", extension));
  X509Ptr ca;
  PkeyPtr ca_key;
  LSIFS_RETURN_IF_ERROR(LoadCa(store, &ca, &ca_key));
  RecordLock lock;
  LSIFS_RETURN_IF_ERROR(lock.Acquire(store.ca_lock_path()));
  std::vector<IssuedCertificate> issued;
  LSIFS_RETURN_IF_ERROR(ReadIssued(store, &issued));
  CrlPtr previous;
  Status s = LoadVerifiedCrl(store.crl_path(), ca.get(), store.ca_cert_path(), &previous);
  if (!s.ok() && !s.IsNotFound()) return s;
  std::set<std::string> already;
  if (previous) {
    STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(previous.get());
    for (int i = 0; i < sk_X509_REVOKED_num(entries); ++i) {
      already.insert(SerialHex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(entries, i))));
    }
  }
  bool any = false;
  std::vector<std::string> serials;
  for (const auto& c : issued) {
    if (c.extension != extension) continue;
    any = true;
    if (already.count(c.serial) == 0 &&
        std::find(serials.begin(), serials.end(), c.serial) == serials.end()) {
      serials.push_back(c.serial);
    }
  }
  if (!any) {
    return Status::NotFound("no certificate was ever issued to extension '" + extension +
                            "' (see: lsictl -s " + store.root() + " cert list)");
  }
  if (serials.empty()) return Status::Ok();
  std::string pem;
  LSIFS_RETURN_IF_ERROR(MakeCrl(ca.get(), ca_key.get(), previous.get(), serials, Now(), &pem));
  LSIFS_RETURN_IF_ERROR(
      WriteFileAtomically(store.tmp_dir(), store.crl_path(), AsBytes(pem), 0644, true));
  *revoked = std::move(serials);
  return Status::Ok();
}

Status ListIssued(const Store& store, std::vector<IssuedRecord>* out) {
  out->clear();
  if (!PathExists(store.ca_cert_path())) return NoCa(store);
  std::vector<IssuedCertificate> issued;
  LSIFS_RETURN_IF_ERROR(ReadIssued(store, &issued));
  RevocationList crl;
  LSIFS_RETURN_IF_ERROR(RevocationList::Load(store.crl_path(), store.ca_cert_path(), &crl));
  for (auto& c : issued) {
    IssuedRecord r;
    r.revoked = crl.Revoked(c.serial);
    r.cert = std::move(c);
    out->push_back(std::move(r));
  }
  return Status::Ok();
}

Status RevocationList::Load(const std::string& crl_path, const std::string& ca_cert_path,
                            RevocationList* out) {
  if (!PathExists(crl_path)) {
    out->serials_.clear();
    return Status::Ok();
  }
  X509Ptr ca;
  LSIFS_RETURN_IF_ERROR(LoadCert(ca_cert_path, &ca));
  CrlPtr crl;
  Status s = LoadVerifiedCrl(crl_path, ca.get(), ca_cert_path, &crl);
  if (s.IsNotFound()) {  // gone since it was seen
    out->serials_.clear();
    return Status::Ok();
  }
  LSIFS_RETURN_IF_ERROR(s);
  std::set<std::string> serials;
  STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(entries); ++i) {
    serials.insert(SerialHex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(entries, i))));
  }
  out->serials_ = std::move(serials);
  return Status::Ok();
}

Status IdentifySite(X509* cert, PeerIdentity* out) {
  if (cert == nullptr) return Status::Permission("no client certificate");
  // X509_get_extended_key_usage says "any" for a certificate without the
  // extension: a site's certificate must name clientAuth itself.
  const uint32_t flags = X509_get_extension_flags(cert);
  if ((flags & EXFLAG_XKUSAGE) == 0 || (X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT) == 0) {
    return Status::Permission("not a site certificate: its extended key usage lacks clientAuth");
  }
  if (X509_check_ca(cert) != 0) {
    ERR_clear_error();
    return Status::Permission("not a site certificate: it is a CA certificate");
  }
  X509_NAME* subject = X509_get_subject_name(cert);
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at < 0) return Status::Permission("not a site certificate: its subject has no CN");
  if (X509_NAME_get_index_by_NID(subject, NID_commonName, at) >= 0) {
    return Status::Permission("not a site certificate: its subject has more than one CN");
  }
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) {
    ERR_clear_error();
    return Status::Permission("not a site certificate: its CN is not text");
  }
  std::string cn(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  if (!ValidateName("extension", cn).ok()) {
    // Not repeated: the peer chose it, and it may be anything.
    return Status::Permission("not a site certificate: its CN is not a valid extension name");
  }
  std::string serial = SerialHex(X509_get0_serialNumber(cert));
  if (serial.empty()) return Status::Permission("not a site certificate: unreadable serial");
  out->extension = std::move(cn);
  out->serial = std::move(serial);
  return Status::Ok();
}

}  // namespace lsifs
