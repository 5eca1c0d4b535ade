#include <gtest/gtest.h>

#include "core/lsi/manifest.h"
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
  m.layers = {{11, {1, 2, 300}}, {12, {9, 4}}};
  return m;
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
