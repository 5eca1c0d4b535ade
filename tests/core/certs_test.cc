#include "core/region/certs.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "core/crypto/openssl_ptr.h"
#include "core/util/file.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

using testing::TempDir;

std::string ReadText(const std::string& path) {
  std::string text;
  Status s = ReadWholeFile(path, 1 << 20, &text);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return text;
}

X509Ptr LoadCert(const std::string& path) {
  const std::string text = ReadText(path);
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

CrlPtr LoadCrl(const std::string& path) {
  const std::string text = ReadText(path);
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  return CrlPtr(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
}

PkeyPtr LoadKey(const std::string& path) {
  const std::string text = ReadText(path);
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

unsigned Mode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// X509_verify_cert of `cert` against the CA at `ca_path` for `purpose`
// (X509_PURPOSE_SSL_CLIENT...), checking `crl` when given: the error code
// (X509_V_OK when it verifies).
int Verify(const std::string& ca_path, X509* cert, int purpose, X509_CRL* crl = nullptr) {
  X509Ptr ca = LoadCert(ca_path);
  X509StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca.get());
  if (crl != nullptr) {
    X509_STORE_add_crl(store.get(), crl);
    X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK);
  }
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  const int ok = X509_verify_cert(ctx.get());
  const int error = X509_STORE_CTX_get_error(ctx.get());
  return ok == 1 ? X509_V_OK : (error == X509_V_OK ? -1 : error);
}

std::string CommonName(X509* cert) {
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  return cn;
}

class CertsTest : public ::testing::Test {
 protected:
  CertsTest() : store_(testing::MakeStore(dir_)) {}

  void SetUp() override {
    CaOptions options;
    options.server_hosts = {"localhost", "127.0.0.1", "::1", "region.example"};
    ASSERT_TRUE(InitCa(*store_, options).ok());
  }

  void MakeKey(const std::string& extension) {
    KeyInfo info;
    ASSERT_TRUE(store_->keyring().Create(extension, &info).ok());
  }

  IssuedCertificate Issue(const std::string& extension, const std::string& out) {
    IssuedCertificate c;
    Status s = IssueSiteCertificate(*store_, extension, out, 30, &c);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return c;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(CertsTest, InitCaWritesEachFileOnceWithItsMode) {
  EXPECT_EQ(Mode(store_->ca_dir()), 0700u);
  EXPECT_EQ(Mode(store_->ca_key_path()), 0600u);
  EXPECT_EQ(Mode(store_->server_key_path()), 0600u);
  EXPECT_EQ(Mode(store_->ca_cert_path()), 0644u);
  EXPECT_EQ(Mode(store_->server_cert_path()), 0644u);
  EXPECT_EQ(Mode(store_->crl_path()), 0644u);
  EXPECT_TRUE(PathExists(store_->issued_path()));

  // The CA: self-signed, CA:TRUE (critical), signs certificates and CRLs.
  X509Ptr ca = LoadCert(store_->ca_cert_path());
  ASSERT_TRUE(ca);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(X509_get_key_usage(ca.get()) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN),
            static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  const int bc = X509_get_ext_by_NID(ca.get(), NID_basic_constraints, -1);
  ASSERT_GE(bc, 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(ca.get(), bc)), 1);
  EXPECT_NE(X509_get0_subject_key_id(ca.get()), nullptr);
  EXPECT_EQ(Verify(store_->ca_cert_path(), ca.get(), X509_PURPOSE_ANY), X509_V_OK);
  PkeyPtr ca_key = LoadKey(store_->ca_key_path());
  ASSERT_TRUE(ca_key);
  EXPECT_EQ(EVP_PKEY_get_base_id(ca_key.get()), EVP_PKEY_EC);
  EXPECT_EQ(X509_check_private_key(ca.get(), ca_key.get()), 1);
  EXPECT_EQ(X509_get_signature_nid(ca.get()), NID_ecdsa_with_SHA256);

  // lsid always finds a CRL: an empty one, signed by the CA.
  RevocationList crl;
  ASSERT_TRUE(RevocationList::Load(store_->crl_path(), store_->ca_cert_path(), &crl).ok());
  EXPECT_EQ(crl.size(), 0u);

  const std::string before = ReadText(store_->ca_cert_path());
  Status again = InitCa(*store_, CaOptions());
  EXPECT_EQ(again.code(), Status::Code::kExists) << again.ToString();
  EXPECT_EQ(ReadText(store_->ca_cert_path()), before);
  std::vector<IssuedRecord> issued;
  ASSERT_TRUE(ListIssued(*store_, &issued).ok());
  EXPECT_TRUE(issued.empty());
}

TEST_F(CertsTest, SiteCertificateVerifiesAndNamesItsExtension) {
  MakeKey("site-a");
  const std::string out = dir_ / "site-a-tls";
  IssuedCertificate c = Issue("site-a", out);
  EXPECT_EQ(c.extension, "site-a");
  // 128 random bits, the top one clear so the DER integer stays positive.
  ASSERT_EQ(c.serial.size(), 32u) << c.serial;
  EXPECT_LE(c.serial[0], '7') << c.serial;
  EXPECT_EQ(c.serial.find_first_not_of("0123456789abcdef"), std::string::npos) << c.serial;
  EXPECT_EQ(c.key_path, out + "/site-a.key");
  EXPECT_EQ(c.cert_path, out + "/site-a.crt");
  EXPECT_EQ(c.ca_path, out + "/ca.crt");
  EXPECT_EQ(Mode(out), 0700u);
  EXPECT_EQ(Mode(c.key_path), 0600u);
  EXPECT_EQ(ReadText(c.ca_path), ReadText(store_->ca_cert_path()));
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  EXPECT_NEAR(static_cast<double>(c.not_after), static_cast<double>(now + 30 * 86400), 60.0);

  X509Ptr cert = LoadCert(c.cert_path);
  ASSERT_TRUE(cert);
  EXPECT_EQ(Verify(c.ca_path, cert.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_NE(Verify(c.ca_path, cert.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK)
      << "a site's certificate must not serve";
  EXPECT_EQ(CommonName(cert.get()), "site-a");
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<uint32_t>(XKU_SSL_CLIENT));
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_NE(X509_get0_authority_key_id(cert.get()), nullptr);
  PkeyPtr key = LoadKey(c.key_path);
  ASSERT_TRUE(key);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);

  PeerIdentity peer;
  Status s = IdentifySite(cert.get(), &peer);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(peer.extension, "site-a");
  EXPECT_EQ(peer.serial, c.serial);

  // Another site into the same folder: the CA's certificate there is the same.
  MakeKey("site-b");
  IssuedCertificate b = Issue("site-b", out);
  EXPECT_NE(b.serial, c.serial);
  EXPECT_EQ(ReadText(b.ca_path), ReadText(store_->ca_cert_path()));
  // ...but never over a site's files.
  IssuedCertificate again;
  EXPECT_EQ(IssueSiteCertificate(*store_, "site-a", out, 30, &again).code(), Status::Code::kExists);
  EXPECT_EQ(ERR_peek_error(), 0u) << "OpenSSL's error queue is left clean";
}

TEST_F(CertsTest, ServerCertificateServesItsHostsAndIsNoSite) {
  X509Ptr server = LoadCert(store_->server_cert_path());
  ASSERT_TRUE(server);
  EXPECT_EQ(Verify(store_->ca_cert_path(), server.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(X509_get_extended_key_usage(server.get()), static_cast<uint32_t>(XKU_SSL_SERVER));
  EXPECT_EQ(X509_check_host(server.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(server.get(), "region.example", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "::1", 0), 1);
  EXPECT_NE(X509_check_host(server.get(), "other.example", 0, 0, nullptr), 1);
  PkeyPtr key = LoadKey(store_->server_key_path());
  ASSERT_TRUE(key);
  EXPECT_EQ(X509_check_private_key(server.get(), key.get()), 1);

  PeerIdentity peer;
  EXPECT_TRUE(IdentifySite(server.get(), &peer).IsPermission());
  X509Ptr ca = LoadCert(store_->ca_cert_path());
  EXPECT_TRUE(IdentifySite(ca.get(), &peer).IsPermission());
  EXPECT_TRUE(IdentifySite(nullptr, &peer).IsPermission());

  // Issued anew for other hosts; IP literals become IP addresses.
  ASSERT_TRUE(IssueServerCertificate(*store_, {"lsid.example", "10.1.2.3", "fd00::5"}, 90).ok());
  server = LoadCert(store_->server_cert_path());
  ASSERT_TRUE(server);
  EXPECT_EQ(X509_check_host(server.get(), "lsid.example", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "10.1.2.3", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "fd00::5", 0), 1);
  EXPECT_NE(X509_check_host(server.get(), "10.1.2.3", 0, 0, nullptr), 1) << "an IP as DNS name";
  EXPECT_NE(X509_check_host(server.get(), "localhost", 0, 0, nullptr), 1);
  key = LoadKey(store_->server_key_path());
  EXPECT_EQ(X509_check_private_key(server.get(), key.get()), 1);
  EXPECT_EQ(Mode(store_->server_key_path()), 0600u);

  EXPECT_EQ(IssueServerCertificate(*store_, {"bad host!"}, 90).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(IssueServerCertificate(*store_, {}, 0).code(), Status::Code::kInvalidArgument);
}

TEST_F(CertsTest, IssueRefusesAnExtensionWithoutKey) {
  const std::string out = dir_ / "nobody-tls";
  IssuedCertificate c;
  Status s = IssueSiteCertificate(*store_, "nobody", out, 30, &c);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("lsictl key create nobody"), std::string::npos) << s.message();
  EXPECT_FALSE(PathExists(out));
  EXPECT_EQ(IssueSiteCertificate(*store_, "../x", out, 30, &c).code(),
            Status::Code::kInvalidArgument);
  std::vector<IssuedRecord> issued;
  ASSERT_TRUE(ListIssued(*store_, &issued).ok());
  EXPECT_TRUE(issued.empty());
}

TEST_F(CertsTest, IssueRefusesWhatWouldOutliveTheCa) {
  MakeKey("site-a");
  IssuedCertificate c;
  Status s = IssueSiteCertificate(*store_, "site-a", dir_ / "out", 4000, &c);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("outlive the CA"), std::string::npos) << s.message();
  EXPECT_EQ(IssueSiteCertificate(*store_, "site-a", dir_ / "out", 0, &c).code(),
            Status::Code::kInvalidArgument);
  EXPECT_FALSE(PathExists(dir_ / "out")) << "nothing is written for a refused certificate";
}

TEST_F(CertsTest, IssueWritesNothingOverAnotherCasCertificate) {
  MakeKey("site-a");
  const std::string out = dir_ / "out";
  ASSERT_EQ(::mkdir(out.c_str(), 0755), 0);
  testing::WriteFileBytes(out + "/ca.crt", AsBytes(std::string("another CA\n")));
  IssuedCertificate c;
  Status s = IssueSiteCertificate(*store_, "site-a", out, 30, &c);
  EXPECT_EQ(s.code(), Status::Code::kExists) << s.ToString();
  EXPECT_EQ(ListFileNames(out), std::vector<std::string>{"ca.crt"});
  std::vector<IssuedRecord> issued;
  ASSERT_TRUE(ListIssued(*store_, &issued).ok());
  EXPECT_TRUE(issued.empty()) << "nothing issued, nothing recorded";
}

TEST(Certs, WithoutCaEveryCommandSaysHowToMakeOne) {
  TempDir dir;
  auto store = testing::MakeStore(dir);
  KeyInfo info;
  ASSERT_TRUE(store->keyring().Create("site-a", &info).ok());
  IssuedCertificate c;
  Status s = IssueSiteCertificate(*store, "site-a", dir / "out", 30, &c);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("ca init"), std::string::npos) << s.message();
  std::vector<std::string> revoked;
  EXPECT_TRUE(RevokeSite(*store, "site-a", &revoked).IsNotFound());
  std::vector<IssuedRecord> issued;
  EXPECT_TRUE(ListIssued(*store, &issued).IsNotFound());
  EXPECT_TRUE(IssueServerCertificate(*store, {}, 30).IsNotFound());
  // No CRL: nothing is revoked.
  RevocationList crl;
  EXPECT_TRUE(RevocationList::Load(store->crl_path(), store->ca_cert_path(), &crl).ok());
  EXPECT_EQ(crl.size(), 0u);
}

TEST_F(CertsTest, RevokeSiteRevokesItsCertificatesOnly) {
  MakeKey("site-a");
  MakeKey("site-b");
  IssuedCertificate a1 = Issue("site-a", dir_ / "a1");
  IssuedCertificate b = Issue("site-b", dir_ / "b");
  IssuedCertificate a2 = Issue("site-a", dir_ / "a2");

  std::vector<std::string> revoked;
  ASSERT_TRUE(RevokeSite(*store_, "site-a", &revoked).ok());
  EXPECT_EQ(revoked, (std::vector<std::string>{a1.serial, a2.serial}));
  EXPECT_EQ(Mode(store_->crl_path()), 0644u);

  RevocationList crl;
  ASSERT_TRUE(RevocationList::Load(store_->crl_path(), store_->ca_cert_path(), &crl).ok());
  EXPECT_TRUE(crl.Revoked(a1.serial));
  EXPECT_TRUE(crl.Revoked(a2.serial));
  EXPECT_FALSE(crl.Revoked(b.serial));
  EXPECT_EQ(crl.size(), 2u);

  // OpenSSL's own CRL check agrees.
  CrlPtr x509_crl = LoadCrl(store_->crl_path());
  ASSERT_TRUE(x509_crl);
  X509Ptr a_cert = LoadCert(a1.cert_path), b_cert = LoadCert(b.cert_path);
  EXPECT_EQ(Verify(store_->ca_cert_path(), a_cert.get(), X509_PURPOSE_SSL_CLIENT, x509_crl.get()),
            X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(Verify(store_->ca_cert_path(), b_cert.get(), X509_PURPOSE_SSL_CLIENT, x509_crl.get()),
            X509_V_OK);
  // The serial IdentifySite reports is the one the list revokes.
  PeerIdentity peer;
  ASSERT_TRUE(IdentifySite(a_cert.get(), &peer).ok());
  EXPECT_TRUE(crl.Revoked(peer.serial));

  // Again: nothing more to revoke, and the list is left as it is.
  const std::string before = ReadText(store_->crl_path());
  ASSERT_TRUE(RevokeSite(*store_, "site-a", &revoked).ok());
  EXPECT_TRUE(revoked.empty());
  EXPECT_EQ(ReadText(store_->crl_path()), before);

  // Another site: the earlier entries stay.
  ASSERT_TRUE(RevokeSite(*store_, "site-b", &revoked).ok());
  EXPECT_EQ(revoked, std::vector<std::string>{b.serial});
  ASSERT_TRUE(RevocationList::Load(store_->crl_path(), store_->ca_cert_path(), &crl).ok());
  EXPECT_EQ(crl.size(), 3u);
  EXPECT_TRUE(crl.Revoked(a1.serial) && crl.Revoked(a2.serial) && crl.Revoked(b.serial));

  Status s = RevokeSite(*store_, "site-c", &revoked);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("cert list"), std::string::npos) << s.message();
  EXPECT_EQ(ERR_peek_error(), 0u) << "OpenSSL's error queue is left clean";
}

TEST_F(CertsTest, ListIssuedReportsEachAndWhetherRevoked) {
  MakeKey("site-a");
  MakeKey("site-b");
  IssuedCertificate a = Issue("site-a", dir_ / "a");
  IssuedCertificate b = Issue("site-b", dir_ / "b");
  std::vector<std::string> revoked;
  ASSERT_TRUE(RevokeSite(*store_, "site-a", &revoked).ok());
  std::vector<IssuedRecord> issued;
  Status s = ListIssued(*store_, &issued);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(issued.size(), 2u);
  EXPECT_EQ(issued[0].cert.extension, "site-a");
  EXPECT_EQ(issued[0].cert.serial, a.serial);
  EXPECT_EQ(issued[0].cert.not_after, a.not_after);
  EXPECT_TRUE(issued[0].revoked);
  EXPECT_EQ(issued[1].cert.extension, "site-b");
  EXPECT_EQ(issued[1].cert.serial, b.serial);
  EXPECT_FALSE(issued[1].revoked);

  // A damaged record is named, never skipped.
  testing::WriteFileBytes(store_->issued_path(),
                          AsBytes(ReadText(store_->issued_path()) + "zz site-c 12\n"));
  s = ListIssued(*store_, &issued);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST_F(CertsTest, CrlOfAnotherCaIsRefused) {
  MakeKey("site-a");
  Issue("site-a", dir_ / "a");
  std::vector<std::string> revoked;
  ASSERT_TRUE(RevokeSite(*store_, "site-a", &revoked).ok());

  TempDir other_dir;
  auto other = testing::MakeStore(other_dir);
  ASSERT_TRUE(InitCa(*other, CaOptions()).ok());
  RevocationList crl;
  ASSERT_TRUE(RevocationList::Load(store_->crl_path(), store_->ca_cert_path(), &crl).ok());
  ASSERT_EQ(crl.size(), 1u);
  Status s = RevocationList::Load(other->crl_path(), store_->ca_cert_path(), &crl);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_EQ(crl.size(), 1u) << "a refused list leaves the one held";
  s = RevocationList::Load(store_->crl_path(), other->ca_cert_path(), &crl);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();

  // Put in place of the store's own, it stops revocation too (until fixed).
  testing::WriteFileBytes(store_->crl_path(), AsBytes(ReadText(other->crl_path())));
  EXPECT_TRUE(RevokeSite(*store_, "site-a", &revoked).IsCorruption());
  std::vector<IssuedRecord> issued;
  EXPECT_TRUE(ListIssued(*store_, &issued).IsCorruption());
}

// The CRL as PEM again, from DER bytes.
std::string CrlPemOf(const std::vector<unsigned char>& der) {
  std::vector<unsigned char> b64(4 * ((der.size() + 2) / 3) + 1);
  const int n = EVP_EncodeBlock(b64.data(), der.data(), static_cast<int>(der.size()));
  std::string body(reinterpret_cast<const char*>(b64.data()), static_cast<size_t>(n));
  std::string pem = "-----BEGIN X509 CRL-----\n";
  for (size_t i = 0; i < body.size(); i += 64) pem += body.substr(i, 64) + "\n";
  return pem + "-----END X509 CRL-----\n";
}

TEST_F(CertsTest, TamperedCrlIsRefused) {
  MakeKey("site-a");
  IssuedCertificate a = Issue("site-a", dir_ / "a");
  std::vector<std::string> revoked;
  ASSERT_TRUE(RevokeSite(*store_, "site-a", &revoked).ok());

  CrlPtr crl = LoadCrl(store_->crl_path());
  ASSERT_TRUE(crl);
  unsigned char* raw = nullptr;
  const int len = i2d_X509_CRL(crl.get(), &raw);
  ASSERT_GT(len, 0);
  std::vector<unsigned char> der(raw, raw + len);
  OPENSSL_free(raw);
  // Flip the last bit of the revoked serial: a list that still parses, and
  // revokes another certificate than the CA signed for.
  std::vector<unsigned char> serial;
  for (size_t i = 0; i < a.serial.size(); i += 2) {
    serial.push_back(static_cast<unsigned char>(std::stoi(a.serial.substr(i, 2), nullptr, 16)));
  }
  auto at = std::search(der.begin(), der.end(), serial.begin(), serial.end());
  ASSERT_NE(at, der.end());
  at[static_cast<long>(serial.size()) - 1] ^= 1;
  testing::WriteFileBytes(store_->crl_path(), AsBytes(CrlPemOf(der)));
  ASSERT_TRUE(LoadCrl(store_->crl_path())) << "the altered list must still parse";

  RevocationList list;
  Status s = RevocationList::Load(store_->crl_path(), store_->ca_cert_path(), &list);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("signature"), std::string::npos) << s.message();

  testing::WriteFileBytes(store_->crl_path(), AsBytes(std::string("not a CRL\n")));
  s = RevocationList::Load(store_->crl_path(), store_->ca_cert_path(), &list);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_EQ(ERR_peek_error(), 0u) << "OpenSSL's error queue is left clean";
}

TEST_F(CertsTest, KeyFilesOpenToOthersAreRefused) {
  MakeKey("site-a");
  ASSERT_EQ(::chmod(store_->ca_key_path().c_str(), 0640), 0);
  IssuedCertificate c;
  Status s = IssueSiteCertificate(*store_, "site-a", dir_ / "out", 30, &c);
  EXPECT_TRUE(s.IsPermission()) << s.ToString();
  EXPECT_NE(s.message().find("chmod 600 " + store_->ca_key_path()), std::string::npos)
      << s.message();
  EXPECT_TRUE(IssueServerCertificate(*store_, {}, 30).IsPermission());
  ASSERT_EQ(::chmod(store_->ca_key_path().c_str(), 0600), 0);
  s = IssueSiteCertificate(*store_, "site-a", dir_ / "out", 30, &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Mode(c.key_path), 0600u);
  EXPECT_EQ(Mode(store_->ca_key_path()), 0600u);
  EXPECT_EQ(Mode(store_->server_key_path()), 0600u);
  // Nothing is left in the store's tmp/ or beside the site's files.
  EXPECT_TRUE(ListFileNames(store_->tmp_dir()).empty());
  EXPECT_EQ(ListFileNames(dir_ / "out").size(), 3u);
}

TEST(Certs, DefaultServerHostsIncludeLoopback) {
  std::vector<std::string> hosts = DefaultServerHosts();
  ASSERT_GE(hosts.size(), 3u);
  EXPECT_EQ(hosts[0], "localhost");
  EXPECT_EQ(hosts[1], "127.0.0.1");
  EXPECT_EQ(hosts[2], "::1");
}

}  // namespace
}  // namespace lsifs
