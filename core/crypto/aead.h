// Authenticated encryption (AES-256-GCM), key derivation (HKDF-SHA256) and
// MACs (HMAC-SHA256) on OpenSSL 3, plus the secret-key holder that wipes
// itself. Every block lsifs stores is a "sealed record":
//
//   nonce (12 bytes, random) | ciphertext (same length as plaintext) | tag (16 bytes)
//
// with associated data chosen by the caller to bind the record to where it
// belongs (see man/lsi.5).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/util/encoding.h"
#include "core/util/status.h"

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
typedef struct evp_mac_ctx_st EVP_MAC_CTX;

namespace lsifs {

inline constexpr size_t kKeySize = 32;
inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kSealOverhead = kNonceSize + kTagSize;
inline constexpr size_t kMacSize = 32;

// A 256-bit secret. Not copyable (so that secrets are not scattered through
// memory); wiped with OPENSSL_cleanse when destroyed or moved from.
class SecretKey {
 public:
  SecretKey() { bytes_.fill(0); }
  ~SecretKey() { Wipe(); }
  SecretKey(SecretKey&& other) noexcept;
  SecretKey& operator=(SecretKey&& other) noexcept;
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;

  static SecretKey Random();
  static SecretKey FromBytes(ByteSpan bytes);  // bytes.size() must be kKeySize

  const uint8_t* data() const { return bytes_.data(); }
  uint8_t* mutable_data() { return bytes_.data(); }
  ByteSpan span() const { return {bytes_.data(), bytes_.size()}; }
  void Wipe();

 private:
  std::array<uint8_t, kKeySize> bytes_;
};

void RandomBytes(MutableByteSpan out);
uint64_t RandomU64NonZero();

// HKDF-SHA256(master, info = label): independent keys for independent uses.
SecretKey DeriveKey(const SecretKey& master, std::string_view label);

// One AES-256-GCM context. Reusable for any number of operations with any
// keys; not thread-safe: give each thread its own (the read path keeps one
// per worker so that it allocates nothing per request).
class Aead {
 public:
  Aead();
  ~Aead();
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;

  // Seals `plaintext` into `record` (plaintext.size() + kSealOverhead bytes)
  // with a fresh random nonce.
  Status Seal(const SecretKey& key, ByteSpan aad, ByteSpan plaintext, MutableByteSpan record);
  // Opens a sealed record into `plaintext` (record.size() - kSealOverhead
  // bytes). Corruption when the tag does not verify; `plaintext` then holds
  // nothing meaningful and must not be used.
  Status Open(const SecretKey& key, ByteSpan aad, ByteSpan record, MutableByteSpan plaintext);

 private:
  EVP_CIPHER_CTX* ctx_;
};

// Incremental HMAC-SHA256.
class Mac {
 public:
  explicit Mac(const SecretKey& key);
  ~Mac();
  Mac(const Mac&) = delete;
  Mac& operator=(const Mac&) = delete;

  void Update(ByteSpan data);
  std::array<uint8_t, kMacSize> Final();
  // Starts a new MAC under the same key, without allocating.
  void Reset();

 private:
  EVP_MAC_CTX* ctx_;
};

std::array<uint8_t, kMacSize> ComputeMac(const SecretKey& key, ByteSpan data);
// Constant-time comparison of equal-length byte strings.
bool EqualConstantTime(ByteSpan a, ByteSpan b);

}  // namespace lsifs
