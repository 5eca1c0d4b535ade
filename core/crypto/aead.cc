#include "core/crypto/aead.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lsifs {
namespace {

// Algorithms are fetched once: an implicit fetch per operation costs a
// provider lookup under a lock, which the read path must not pay.
const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}
EVP_MAC* HmacAlgorithm() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

[[noreturn]] void CryptoFailure(const char* what) {
  // OpenSSL failing on lengths we checked means the library itself is
  // unusable; no caller can handle keys safely after that.
  std::fprintf(stderr, "lsifs: fatal OpenSSL failure in %s\n", what);
  std::abort();
}

int ToInt(size_t n) {
  if (n > static_cast<size_t>(INT32_MAX)) CryptoFailure("length too large");
  return static_cast<int>(n);
}

}  // namespace

SecretKey::SecretKey(SecretKey&& other) noexcept {
  bytes_ = other.bytes_;
  other.Wipe();
}

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    bytes_ = other.bytes_;
    other.Wipe();
  }
  return *this;
}

SecretKey SecretKey::Random() {
  SecretKey k;
  RandomBytes(MutableByteSpan(k.bytes_.data(), k.bytes_.size()));
  return k;
}

SecretKey SecretKey::FromBytes(ByteSpan bytes) {
  SecretKey k;
  if (bytes.size() != kKeySize) CryptoFailure("key of the wrong size");
  std::memcpy(k.bytes_.data(), bytes.data(), kKeySize);
  return k;
}

void SecretKey::Wipe() {
  OPENSSL_cleanse(bytes_.data(), bytes_.size());
}

void RandomBytes(MutableByteSpan out) {
  if (RAND_bytes(out.data(), ToInt(out.size())) != 1) CryptoFailure("RAND_bytes");
}

uint64_t RandomU64NonZero() {
  uint8_t b[8];
  uint64_t v = 0;
  while (v == 0) {
    RandomBytes(MutableByteSpan(b, 8));
    v = DecodeFixed64(b);
  }
  return v;
}

SecretKey DeriveKey(const SecretKey& master, std::string_view label) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) CryptoFailure("HKDF fetch");
  EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (kctx == nullptr) CryptoFailure("HKDF context");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(master.data()),
                                        kKeySize),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(label.data()),
                                        label.size()),
      OSSL_PARAM_construct_end(),
  };
  SecretKey out;
  int rc = EVP_KDF_derive(kctx, out.mutable_data(), kKeySize, params);
  EVP_KDF_CTX_free(kctx);
  if (rc != 1) CryptoFailure("HKDF derive");
  return out;
}

Aead::Aead() : ctx_(EVP_CIPHER_CTX_new()) {
  if (ctx_ == nullptr || Aes256Gcm() == nullptr) CryptoFailure("AES-256-GCM context");
}

Aead::~Aead() {
  EVP_CIPHER_CTX_free(ctx_);
}

Status Aead::Seal(const SecretKey& key, ByteSpan aad, ByteSpan plaintext, MutableByteSpan record) {
  if (record.size() != plaintext.size() + kSealOverhead) {
    return Status::InvalidArgument("seal: record buffer of the wrong size");
  }
  uint8_t* nonce = record.data();
  uint8_t* ct = nonce + kNonceSize;
  uint8_t* tag = ct + plaintext.size();
  RandomBytes(MutableByteSpan(nonce, kNonceSize));
  int len = 0;
  if (EVP_EncryptInit_ex2(ctx_, Aes256Gcm(), key.data(), nonce, nullptr) != 1 ||
      (!aad.empty() &&
       EVP_EncryptUpdate(ctx_, nullptr, &len, aad.data(), ToInt(aad.size())) != 1) ||
      EVP_EncryptUpdate(ctx_, ct, &len, plaintext.data(), ToInt(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx_, ct + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize), tag) != 1) {
    CryptoFailure("AES-GCM encrypt");
  }
  return Status::Ok();
}

Status Aead::Open(const SecretKey& key, ByteSpan aad, ByteSpan record, MutableByteSpan plaintext) {
  if (record.size() < kSealOverhead || plaintext.size() != record.size() - kSealOverhead) {
    return Status::Corruption("sealed record of the wrong size");
  }
  const uint8_t* nonce = record.data();
  const uint8_t* ct = nonce + kNonceSize;
  const uint8_t* tag = ct + plaintext.size();
  int len = 0;
  if (EVP_DecryptInit_ex2(ctx_, Aes256Gcm(), key.data(), nonce, nullptr) != 1 ||
      (!aad.empty() &&
       EVP_DecryptUpdate(ctx_, nullptr, &len, aad.data(), ToInt(aad.size())) != 1) ||
      EVP_DecryptUpdate(ctx_, plaintext.data(), &len, ct, ToInt(plaintext.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize),
                          const_cast<uint8_t*>(tag)) != 1) {
    CryptoFailure("AES-GCM decrypt");
  }
  if (EVP_DecryptFinal_ex(ctx_, plaintext.data() + len, &len) != 1) {
    // Never leave unauthenticated plaintext behind for a careless caller.
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return Status::Corruption("authentication failed");
  }
  return Status::Ok();
}

Mac::Mac(const SecretKey& key) : ctx_(EVP_MAC_CTX_new(HmacAlgorithm())) {
  if (ctx_ == nullptr) CryptoFailure("HMAC context");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_init(ctx_, key.data(), kKeySize, params) != 1) CryptoFailure("HMAC init");
}

Mac::~Mac() {
  EVP_MAC_CTX_free(ctx_);
}

void Mac::Update(ByteSpan data) {
  if (EVP_MAC_update(ctx_, data.data(), data.size()) != 1) CryptoFailure("HMAC update");
}

std::array<uint8_t, kMacSize> Mac::Final() {
  std::array<uint8_t, kMacSize> out{};
  size_t len = 0;
  if (EVP_MAC_final(ctx_, out.data(), &len, out.size()) != 1 || len != kMacSize) {
    CryptoFailure("HMAC final");
  }
  return out;
}

void Mac::Reset() {
  if (EVP_MAC_init(ctx_, nullptr, 0, nullptr) != 1) CryptoFailure("HMAC reset");
}

std::array<uint8_t, kMacSize> ComputeMac(const SecretKey& key, ByteSpan data) {
  Mac mac(key);
  mac.Update(data);
  return mac.Final();
}

bool EqualConstantTime(ByteSpan a, ByteSpan b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace lsifs
