#include <gtest/gtest.h>

#include "core/lsi/manifest.h"
#include "core/util/encoding.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

using testing::TempDir;

KeyInfo Info(const std::string& name) {
  KeyInfo k;
  k.name = name;
  k.id = RandomU64NonZero();
  return k;
}

Manifest Sample() {
  Manifest m;
  m.lsi_id = 77;
  m.volume = "vol-db";
  m.snapshot = 0xabc;
  m.volume_size = 1 << 30;
  m.block_size = 65536;
  m.created = 1700000000;
  m.expires = 1700003600;
  m.strategy = "predicted";
  m.model_sessions = 9;
  m.priority = 2;
  m.layers = {{11, {1, 2, 300}}, {12, {9, 4}}};
  return m;
}

// A manifest as an older lsifs wrote it: version 1 (no strategy, sessions,
// priority) or 2 (no priority), authenticated as every version is.
Bytes OlderManifest(uint32_t version, const KeyInfo& info, const SecretKey& key) {
  ByteWriter w;
  w.PutBytes(AsBytes(std::string_view("LSIFSMAN", 8)));
  w.PutU32(version);
  w.PutU64(77);
  w.PutString16(info.name);
  w.PutU64(info.id);
  w.PutString16("vol-db");
  w.PutU64(0xabc);
  w.PutU64(1 << 30);
  w.PutU32(65536);
  w.PutU64(1700000000);
  w.PutU64(1700003600);
  if (version >= 2) {
    w.PutString16("predicted");
    w.PutU32(5);
  }
  w.PutU32(1);
  w.PutU64(11);
  w.PutU64(2);
  w.PutU64(1);
  w.PutU64(300);
  Bytes data = std::move(w.bytes());
  auto mac = ComputeMac(DeriveKey(key, "lsifs manifest key v1"), data);
  data.insert(data.end(), mac.begin(), mac.end());
  return data;
}

TEST(Manifest, OlderVersionsAreStillRead) {
  TempDir dir;
  KeyInfo info = Info("site-a");
  SecretKey key = SecretKey::Random();
  for (uint32_t version : {1u, 2u}) {
    testing::WriteFileBytes(dir / "m", OlderManifest(version, info, key));
    Manifest m;
    Status s = ReadManifest(dir / "m", info, key, &m);
    ASSERT_TRUE(s.ok()) << version << ": " << s.ToString();
    EXPECT_EQ(m.lsi_id, 77u);
    EXPECT_EQ(m.strategy, version == 2 ? "predicted" : "");
    EXPECT_EQ(m.model_sessions, version == 2 ? 5u : 0u);
    EXPECT_EQ(m.priority, 1u);  // normal
    ASSERT_EQ(m.layers.size(), 1u);
    EXPECT_EQ(m.layers[0].blocks, (std::vector<uint64_t>{1, 300}));
  }
  // A version from the future is refused by number.
  Bytes future = OlderManifest(1, info, key);
  future[8] = 4;
  testing::WriteFileBytes(dir / "m", future);
  Manifest m;
  Status s = ReadManifest(dir / "m", info, key, &m);
  EXPECT_NE(s.message().find("unsupported version 4"), std::string::npos) << s.ToString();
}

TEST(Manifest, RoundTrip) {
  TempDir dir;
  KeyInfo info = Info("site-a");
  SecretKey key = SecretKey::Random();
  ASSERT_TRUE(WriteManifest(dir.path(), dir / "m", Sample(), info, key).ok());
  Manifest m;
  ASSERT_TRUE(ReadManifest(dir / "m", info, key, &m).ok());
  EXPECT_EQ(m.lsi_id, 77u);
  EXPECT_EQ(m.extension, "site-a");
  EXPECT_EQ(m.key_id, info.id);
  EXPECT_EQ(m.strategy, "predicted");
  EXPECT_EQ(m.model_sessions, 9u);
  EXPECT_EQ(m.priority, 2u);
  EXPECT_EQ(m.volume, "vol-db");
  EXPECT_EQ(m.snapshot, 0xabcu);
  EXPECT_EQ(m.volume_size, 1u << 30);
  EXPECT_EQ(m.expires, 1700003600);
  ASSERT_EQ(m.layers.size(), 2u);
  EXPECT_EQ(m.layers[1].layer_id, 12u);
  EXPECT_EQ(m.layers[1].blocks, (std::vector<uint64_t>{4, 9}));  // kept sorted
  Manifest peek;
  ASSERT_TRUE(PeekManifest(dir / "m", &peek).ok());
  EXPECT_EQ(peek.extension, "site-a");
}

TEST(Manifest, EveryByteFlipAndTruncationIsDetected) {
  TempDir dir;
  KeyInfo info = Info("site-a");
  SecretKey key = SecretKey::Random();
  ASSERT_TRUE(WriteManifest(dir.path(), dir / "m", Sample(), info, key).ok());
  Bytes good = testing::ReadFileBytes(dir / "m");
  for (size_t i = 0; i < good.size(); ++i) {
    Bytes bad = good;
    bad[i] ^= 0x04;
    testing::WriteFileBytes(dir / "m", bad);
    Manifest m;
    EXPECT_FALSE(ReadManifest(dir / "m", info, key, &m).ok()) << "byte " << i;
  }
  for (size_t len = 0; len < good.size(); ++len) {
    testing::WriteFileBytes(dir / "m", ByteSpan(good).first(len));
    Manifest m;
    EXPECT_FALSE(ReadManifest(dir / "m", info, key, &m).ok()) << "length " << len;
  }
}

TEST(Manifest, AnotherExtensionIsRefusedByName) {
  TempDir dir;
  KeyInfo a = Info("site-a");
  SecretKey ka = SecretKey::Random();
  ASSERT_TRUE(WriteManifest(dir.path(), dir / "m", Sample(), a, ka).ok());
  KeyInfo b = Info("site-b");
  SecretKey kb = SecretKey::Random();
  Manifest m;
  Status s = ReadManifest(dir / "m", b, kb, &m);
  EXPECT_TRUE(s.IsPermission());
  EXPECT_NE(s.message().find("'site-a'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("'site-b'"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace lsifs
