#include "core/crypto/key_backup.h"

#include <openssl/evp.h>

#include <boost/json.hpp>

#include "core/util/hex.h"
#include "core/util/numbers.h"

namespace lsifs {
namespace {

constexpr char kFormat[] = "lsifs-provider-backup";
constexpr uint64_t kVersion = 1;
constexpr size_t kSaltSize = 32;
// Bounds on what a backup may ask of this machine: at most 1 GiB of memory.
constexpr uint64_t kMaxScryptMemory = uint64_t{1} << 30;

Status DeriveWrappingKey(const std::string& passphrase, ByteSpan salt, const ScryptCost& cost,
                         SecretKey* out) {
  // (n is bounded first, so that 128 * r * n cannot wrap around)
  if (cost.n < 2 || cost.n > kMaxScryptMemory || (cost.n & (cost.n - 1)) != 0 || cost.r == 0 ||
      cost.p == 0 || cost.p > 16 || cost.r > 64 || 128 * cost.r * cost.n > kMaxScryptMemory) {
    return Status::Corruption("provider key backup: scrypt parameters out of range");
  }
  if (EVP_PBE_scrypt(passphrase.data(), passphrase.size(), salt.data(), salt.size(), cost.n, cost.r,
                     cost.p, kMaxScryptMemory + (1 << 20), out->mutable_data(), kKeySize) != 1) {
    return Status::IOError("scrypt failed (out of memory?)");
  }
  return Status::Ok();
}

std::string Aad(uint64_t key_id) {
  return std::string(kFormat) + "-" + std::to_string(kVersion) + " " + FormatId(key_id);
}

}  // namespace

Status ExportProviderKey(const KeyInfo& info, const SecretKey& key, const std::string& passphrase,
                         const ScryptCost& cost, std::string* backup) {
  if (info.kind != KeyKind::kProvider) {
    return Status::InvalidArgument("only a provider key is backed up this way");
  }
  Bytes salt(kSaltSize);
  RandomBytes(salt);
  SecretKey wrapping;
  LSIFS_RETURN_IF_ERROR(DeriveWrappingKey(passphrase, salt, cost, &wrapping));
  Bytes sealed(kKeySize + kSealOverhead);
  const std::string aad = Aad(info.id);
  Aead aead;
  LSIFS_RETURN_IF_ERROR(aead.Seal(wrapping, AsBytes(aad), key.span(), sealed));

  boost::json::object kdf{
      {"name", "scrypt"}, {"n", cost.n}, {"r", cost.r}, {"p", cost.p}, {"salt", HexEncode(salt)}};
  boost::json::object doc{{"format", kFormat},
                          {"version", kVersion},
                          {"key_id", FormatId(info.id)},
                          {"kdf", std::move(kdf)},
                          {"sealed", HexEncode(sealed)}};
  *backup = boost::json::serialize(doc) + "\n";
  return Status::Ok();
}

Status ImportProviderKey(const std::string& backup, const std::string& passphrase, KeyInfo* info,
                         SecretKey* key) {
  auto bad = [](const std::string& why) {
    return Status::Corruption("not a provider key backup lsifs can read: " + why);
  };
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(backup, ec);
  if (ec || !v.is_object()) return bad("not JSON");
  const boost::json::object& doc = v.as_object();
  auto text = [&](const boost::json::object& o, const char* name) -> const boost::json::string* {
    const boost::json::value* f = o.if_contains(name);
    return f != nullptr && f->is_string() ? &f->as_string() : nullptr;
  };
  auto number = [&](const boost::json::object& o, const char* name, uint64_t* out) {
    const boost::json::value* f = o.if_contains(name);
    if (f == nullptr || !(f->is_uint64() || f->is_int64())) return false;
    if (f->is_int64() && f->as_int64() < 0) return false;
    *out = f->is_uint64() ? f->as_uint64() : static_cast<uint64_t>(f->as_int64());
    return true;
  };
  const boost::json::string* format = text(doc, "format");
  uint64_t version = 0;
  if (format == nullptr || *format != kFormat) return bad("no lsifs-provider-backup format field");
  if (!number(doc, "version", &version)) return bad("no version");
  if (version != kVersion) return UnsupportedVersion("provider key backup", version, 1, kVersion);
  const boost::json::string* id_text = text(doc, "key_id");
  auto id = id_text ? ParseId(std::string_view(id_text->data(), id_text->size())) : std::nullopt;
  if (!id) return bad("key_id");
  const boost::json::value* kdf_value = doc.if_contains("kdf");
  if (kdf_value == nullptr || !kdf_value->is_object()) return bad("kdf");
  const boost::json::object& kdf = kdf_value->as_object();
  const boost::json::string* kdf_name = text(kdf, "name");
  ScryptCost cost;
  if (kdf_name == nullptr || *kdf_name != "scrypt" || !number(kdf, "n", &cost.n) ||
      !number(kdf, "r", &cost.r) || !number(kdf, "p", &cost.p)) {
    return bad("kdf (only scrypt is known)");
  }
  const boost::json::string* salt_text = text(kdf, "salt");
  const boost::json::string* sealed_text = text(doc, "sealed");
  auto salt =
      salt_text ? HexDecode(std::string_view(salt_text->data(), salt_text->size())) : std::nullopt;
  auto sealed = sealed_text ? HexDecode(std::string_view(sealed_text->data(), sealed_text->size()))
                            : std::nullopt;
  if (!salt || salt->size() != kSaltSize) return bad("salt");
  if (!sealed || sealed->size() != kKeySize + kSealOverhead) return bad("sealed key");

  SecretKey wrapping;
  LSIFS_RETURN_IF_ERROR(DeriveWrappingKey(passphrase, *salt, cost, &wrapping));
  const std::string aad = Aad(*id);
  Aead aead;
  if (!aead.Open(wrapping, AsBytes(aad), *sealed, MutableByteSpan(key->mutable_data(), kKeySize))
           .ok()) {
    key->Wipe();
    return Status::Permission("the passphrase does not open this provider key backup");
  }
  info->kind = KeyKind::kProvider;
  info->name = "provider";
  info->id = *id;
  return Status::Ok();
}

}  // namespace lsifs
