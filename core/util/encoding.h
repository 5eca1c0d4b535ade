// Explicit-width, little-endian encoding of on-disk fields. Every on-disk
// format in lsifs is written and read field by field through these helpers;
// no struct is ever written to disk as raw memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lsifs {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

inline void EncodeFixed32(uint8_t* dst, uint32_t v) {
  for (int i = 0; i < 4; ++i) dst[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void EncodeFixed64(uint8_t* dst, uint64_t v) {
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t DecodeFixed32(const uint8_t* src) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(src[i]) << (8 * i);
  return v;
}
inline uint64_t DecodeFixed64(const uint8_t* src) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(src[i]) << (8 * i);
  return v;
}
// Big-endian 64-bit, used where byte order must equal numeric order (LevelDB keys).
inline void EncodeBigEndian64(uint8_t* dst, uint64_t v) {
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<uint8_t>(v >> (8 * (7 - i)));
}
inline uint64_t DecodeBigEndian64(const uint8_t* src) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | src[i];
  return v;
}

inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Appends fields to a growing byte buffer.
class ByteWriter {
 public:
  void PutU8(uint8_t v) { buf_.push_back(v); }
  void PutU16(uint16_t v) {
    buf_.push_back(static_cast<uint8_t>(v));
    buf_.push_back(static_cast<uint8_t>(v >> 8));
  }
  void PutU32(uint32_t v) {
    uint8_t b[4];
    EncodeFixed32(b, v);
    buf_.insert(buf_.end(), b, b + 4);
  }
  void PutU64(uint64_t v) {
    uint8_t b[8];
    EncodeFixed64(b, v);
    buf_.insert(buf_.end(), b, b + 8);
  }
  void PutBytes(ByteSpan b) { buf_.insert(buf_.end(), b.begin(), b.end()); }
  // A string of at most 65535 bytes, prefixed by its u16 length.
  void PutString16(std::string_view s) {
    PutU16(static_cast<uint16_t>(s.size()));
    PutBytes(AsBytes(s));
  }

  const Bytes& bytes() const { return buf_; }
  Bytes& bytes() { return buf_; }
  size_t size() const { return buf_.size(); }

 private:
  Bytes buf_;
};

// Reads fields from a byte span; every read is bounds-checked, and once a
// read runs past the end the reader stays failed (ok() == false).
class ByteReader {
 public:
  explicit ByteReader(ByteSpan data) : data_(data) {}

  uint8_t GetU8() {
    if (!Need(1)) return 0;
    return data_[pos_++];
  }
  uint16_t GetU16() {
    if (!Need(2)) return 0;
    uint16_t v = static_cast<uint16_t>(data_[pos_] | (data_[pos_ + 1] << 8));
    pos_ += 2;
    return v;
  }
  uint32_t GetU32() {
    if (!Need(4)) return 0;
    uint32_t v = DecodeFixed32(&data_[pos_]);
    pos_ += 4;
    return v;
  }
  uint64_t GetU64() {
    if (!Need(8)) return 0;
    uint64_t v = DecodeFixed64(&data_[pos_]);
    pos_ += 8;
    return v;
  }
  ByteSpan GetBytes(size_t n) {
    if (!Need(n)) return {};
    ByteSpan s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  std::string GetString16() {
    uint16_t n = GetU16();
    ByteSpan s = GetBytes(n);
    return std::string(s.begin(), s.end());
  }

  bool ok() const { return ok_; }
  size_t position() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }

 private:
  bool Need(size_t n) {
    if (!ok_ || data_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }

  ByteSpan data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace lsifs
