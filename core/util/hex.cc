#include "core/util/hex.h"

namespace lsifs {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string HexEncode(ByteSpan bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

std::optional<Bytes> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  Bytes out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

std::string FormatId(uint64_t id) {
  uint8_t be[8];
  EncodeBigEndian64(be, id);
  return HexEncode(ByteSpan(be, 8));
}

std::optional<uint64_t> ParseId(std::string_view text) {
  if (text.size() != 16) return std::nullopt;
  auto bytes = HexDecode(text);
  if (!bytes) return std::nullopt;
  uint64_t id = DecodeBigEndian64(bytes->data());
  if (id == 0) return std::nullopt;
  return id;
}

}  // namespace lsifs
