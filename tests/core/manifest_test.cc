#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>

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
// priority), 2 (no priority) or 3 (block lists between the layer ids, no
// head MAC), authenticated as every version is.
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
  if (version >= 3) w.PutU8(2);
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
  for (uint32_t version : {1u, 2u, 3u}) {
    testing::WriteFileBytes(dir / "m", OlderManifest(version, info, key));
    Manifest m;
    Status s = ReadManifest(dir / "m", info, key, &m);
    ASSERT_TRUE(s.ok()) << version << ": " << s.ToString();
    EXPECT_EQ(m.lsi_id, 77u);
    EXPECT_EQ(m.strategy, version >= 2 ? "predicted" : "");
    EXPECT_EQ(m.model_sessions, version >= 2 ? 5u : 0u);
    EXPECT_EQ(m.priority, version == 3 ? 2u : 1u);  // normal before version 3
    ASSERT_EQ(m.layers.size(), 1u);
    EXPECT_EQ(m.layers[0].blocks, (std::vector<uint64_t>{1, 300}));
  }
  // A version from the future is refused by number, with what to do.
  Bytes future = OlderManifest(1, info, key);
  future[8] = 5;
  testing::WriteFileBytes(dir / "m", future);
  Manifest m;
  Status s = ReadManifest(dir / "m", info, key, &m);
  EXPECT_NE(s.message().find("format version 5 is newer than this lsifs reads (1 to 4): upgrade "
                             "lsifs"),
            std::string::npos)
      << s.ToString();
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
  // A listing reads the head: the layers and their counts, no block lists.
  ASSERT_EQ(peek.layers.size(), 2u);
  EXPECT_TRUE(peek.layers[0].blocks.empty());
  EXPECT_EQ(peek.layers[0].listed, 3u);
  EXPECT_EQ(peek.delta_blocks(), 5u);
  ASSERT_TRUE(PeekManifest(dir / "m", &peek, ManifestPart::kWhole).ok());
  EXPECT_EQ(peek.layers[1].blocks, (std::vector<uint64_t>{4, 9}));
}

TEST(Manifest, EveryLengthIsBoundedByWhatTheFileItselfCanNeed) {
  TempDir dir;
  KeyInfo info = Info("site-a");
  SecretKey key = SecretKey::Random();
  ASSERT_TRUE(WriteManifest(dir.path(), dir / "m", Sample(), info, key).ok());
  // Extended to 1 GiB (sparse): refused from its head, without reading it.
  ASSERT_EQ(::truncate((dir / "m").c_str(), 1 << 30), 0);
  auto start = std::chrono::steady_clock::now();
  Manifest m;
  Status s = ReadManifest(dir / "m", info, key, &m);
  EXPECT_NE(s.message().find("truncated or extended"), std::string::npos) << s.ToString();
  s = PeekManifest(dir / "m", &m);
  EXPECT_NE(s.message().find("truncated or extended"), std::string::npos) << s.ToString();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 0.5);

  // A head that claims more blocks than the volume has.
  Manifest big = Sample();
  big.volume_size = 4 * 65536;
  big.layers = {{11, {1, 2, 4}}};
  ASSERT_TRUE(WriteManifest(dir.path(), dir / "big", big, info, key).ok());
  EXPECT_FALSE(ReadManifest(dir / "big", info, key, &m).ok()) << "block 4 of a 4-block volume";
  big.layers = {{11, {0, 1, 2, 3}}};
  ::unlink((dir / "big").c_str());
  ASSERT_TRUE(WriteManifest(dir.path(), dir / "big", big, info, key).ok());
  EXPECT_TRUE(ReadManifest(dir / "big", info, key, &m).ok());

  // An older manifest has no head to say its size: its own geometry bounds
  // it (one layer of a 2^14-block volume: at most 2^14 entries).
  testing::WriteFileBytes(dir / "old", OlderManifest(3, info, key));
  ASSERT_TRUE(ReadManifest(dir / "old", info, key, &m).ok());
  ASSERT_EQ(::truncate((dir / "old").c_str(), 1 << 30), 0);
  s = ReadManifest(dir / "old", info, key, &m);
  EXPECT_NE(s.message().find("larger than its geometry allows"), std::string::npos) << s.ToString();

  // A forged head (another key) is refused before the rest is read.
  SecretKey forger = SecretKey::Random();
  Manifest forged = Sample();
  forged.layers = {{11, std::vector<uint64_t>(8000)}};
  for (size_t i = 0; i < 8000; ++i) forged.layers[0].blocks[i] = i;
  ASSERT_TRUE(WriteManifest(dir.path(), dir / "forged", forged, info, forger).ok());
  s = ReadManifest(dir / "forged", info, key, &m);
  EXPECT_NE(s.message().find("authentication failed"), std::string::npos) << s.ToString();
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
