// The corruption matrix while a mount runs (sampled: the full matrix runs
// without a mount, tests/core/corruption_test.cc): each kind of damage to a
// file of a delivered LSI, made after the mount listed it but before the
// image's first open, and made while the image is open. Every read of an
// affected block fails with EIO, every other block reads its exact bytes, the
// daemon stays up, and lsictl verify names the damage (exit 3).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <string>

#include "core/lsi/layer.h"
#include "tests/integration/mount_fixture.h"

namespace lsifs::testing {
namespace {

constexpr uint32_t kBlock = 64 * 1024;
constexpr uint64_t kVolumeBytes = 40ull << 20;

struct Damage {
  std::string name;
  // Changes the store; returns the blocks whose reads must fail (all of
  // them when the image must be refused whole: `whole`).
  std::function<std::set<uint64_t>(MountFixture&, const Manifest&)> apply;
  bool whole = false;
};

void FlipByte(const std::string& path, uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path;
  uint8_t b = 0;
  ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(offset)), 1);
  b ^= 0x40;
  ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(offset)), 1);
  ::close(fd);
}

std::vector<Damage> Damages() {
  auto layer_path = [](MountFixture& f, const Manifest& m, size_t l) {
    return f.store().layer_path(m.layers[l].layer_id);
  };
  auto blocks_of = [](const Manifest& m, size_t l) {
    return std::set<uint64_t>(m.layers[l].blocks.begin(), m.layers[l].blocks.end());
  };
  return {
      {"a record of the first layer flipped",
       [=](MountFixture& f, const Manifest& m) {
         std::unique_ptr<LayerReader> r;
         KeyInfo info;
         SecretKey key;
         EXPECT_TRUE(f.store().keyring().Load("site-a", &info, &key).ok());
         EXPECT_TRUE(LayerReader::Open(layer_path(f, m, 0), info, key, &r).ok());
         FlipByte(layer_path(f, m, 0), r->RecordOffset(1) + 100);
         return std::set<uint64_t>{r->blocks()[1]};
       }},
      {"the second layer truncated",
       [=](MountFixture& f, const Manifest& m) {
         EXPECT_EQ(::truncate(layer_path(f, m, 1).c_str(), 4096), 0);
         return blocks_of(m, 1);
       }},
      {"the first layer's header flipped",
       [=](MountFixture& f, const Manifest& m) {
         FlipByte(layer_path(f, m, 0), 30);
         return blocks_of(m, 0);
       }},
      {"the manifest flipped",
       [](MountFixture& f, const Manifest& m) {
         FlipByte(f.store().manifest_path(m.lsi_id), 40);
         return std::set<uint64_t>{};
       },
       /*whole=*/true},
  };
}

class CorruptionMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_FAIL() << "mount tests need root";
    f_ = std::make_unique<MountFixture>(kBlock);
    f_->CreateExtension("site-a");
    f_->ImportExt4("vol", kVolumeBytes);
    source_ = f_->image();
  }

  // One case: deliver, mount, optionally open, damage, then read every block.
  void Run(const Damage& d, bool opened_first) {
    SCOPED_TRACE(d.name + (opened_first ? " (image open)" : " (before first open)"));
    std::vector<SnapshotInfo> snaps;
    ASSERT_TRUE(ListSnapshots(f_->store(), f_->keys(), "vol", &snaps).ok());
    std::unique_ptr<SnapshotBlocks> sb;
    ASSERT_TRUE(SnapshotBlocks::Open(f_->store(), f_->keys(), "vol", snaps.back().id, &sb).ok());
    ASSERT_GE(sb->map().size(), 12u);
    std::vector<uint64_t> p;
    for (size_t i = 0; i < 12; i += 2) p.push_back(sb->map()[i].block);
    std::string id = f_->Deliver("site-a", "vol", {{p[0], p[1], p[2], p[3]}, {p[4], p[5]}});
    Manifest m;
    KeyInfo info;
    SecretKey key;
    ASSERT_TRUE(f_->store().keyring().Load("site-a", &info, &key).ok());
    ASSERT_TRUE(ReadManifest(f_->store().manifest_path(*ParseId(id)), info, key, &m).ok());
    f_->Mount("site-a");
    const std::string image = f_->mountpoint() + "/by-id/" + id + ".img";
    int held = -1;
    if (opened_first) {
      held = ::open(image.c_str(), O_RDONLY | O_DIRECT);
      ASSERT_GE(held, 0);
    } else {
      struct stat st;
      ASSERT_EQ(::stat(image.c_str(), &st), 0) << "listed";
    }
    std::set<uint64_t> affected = d.apply(*f_, m);
    // O_DIRECT: every read reaches the daemon, none from the page cache.
    int fd = held >= 0 ? held : ::open(image.c_str(), O_RDONLY | O_DIRECT);
    const bool refused = fd < 0;
    if (refused) {
      EXPECT_TRUE(d.whole) << "refused whole: " << std::strerror(errno);
    } else {
      void* buf = nullptr;
      ASSERT_EQ(::posix_memalign(&buf, 4096, kBlock), 0);
      const uint64_t blocks = kVolumeBytes / kBlock;
      for (uint64_t b = 0; b < blocks; ++b) {
        ssize_t n = ::pread(fd, buf, kBlock, static_cast<off_t>(b * kBlock));
        const bool must_fail = affected.count(b) > 0 || (d.whole && !opened_first);
        if (n < 0) {
          EXPECT_EQ(errno, EIO) << "block " << b;
          EXPECT_TRUE(must_fail) << "block " << b << " failed; it is not damaged";
          continue;
        }
        ASSERT_EQ(n, static_cast<ssize_t>(kBlock)) << "block " << b;
        // An image open before the damage keeps what it read at open (the
        // manifest); a block of a damaged file fails or reads right.
        EXPECT_TRUE(std::equal(static_cast<uint8_t*>(buf), static_cast<uint8_t*>(buf) + kBlock,
                               source_.begin() + static_cast<long>(b * kBlock)))
            << "block " << b << " read WRONG BYTES";
        if (!opened_first) {
          EXPECT_FALSE(affected.count(b)) << "damaged block " << b << " read";
        }
      }
      std::free(buf);
      ::close(fd);
    }
    // The daemon is still up and serving.
    EXPECT_FALSE(ReadText(f_->mountpoint() + "/.lsifs/mount").empty()) << f_->log();
    int rc = 0;
    std::string verify = f_->Lsictl("verify", &rc);
    EXPECT_EQ(rc, 3) << verify;
    EXPECT_NE(verify.find("DAMAGED"), std::string::npos) << verify;
    EXPECT_EQ(f_->Unmount(), 0) << f_->log();
  }

  std::unique_ptr<MountFixture> f_;
  Bytes source_;
};

TEST_F(CorruptionMountTest, DamageBeforeTheFirstOpenIsRefusedOrFailsOnlyItsBlocks) {
  for (const Damage& d : Damages()) {
    Run(d, /*opened_first=*/false);
    SetUp();  // a fresh store and mount for the next case
  }
}

TEST_F(CorruptionMountTest, DamageWhileTheImageIsOpenNeverServesGarbage) {
  for (const Damage& d : Damages()) {
    Run(d, /*opened_first=*/true);
    SetUp();
  }
}

}  // namespace
}  // namespace lsifs::testing
