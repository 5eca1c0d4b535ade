// End-to-end tests of lsifs through real FUSE mounts, loop devices and ext4.
// They need root, /dev/fuse and loop devices. Every test tears down what it
// made (MountFixture's destructor), even when an assertion fails.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "core/lsi/layer.h"
#include "tests/integration/mount_fixture.h"

namespace lsifs::testing {
namespace {

constexpr uint32_t kBlock = 64 * 1024;
// Not a multiple of the block size: the last block is partial.
constexpr uint64_t kVolumeBytes = 40ull * 1024 * 1024 + 3 * 4096;

class MountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_FAIL() << "mount tests need root (they use FUSE and loop devices)";
    f_ = std::make_unique<MountFixture>(kBlock);
    f_->CreateExtension("site-a");
    f_->CreateExtension("site-b");
    f_->ImportExt4("vol", kVolumeBytes);
    source_ = f_->image();
    ASSERT_EQ(source_.size(), kVolumeBytes);
  }
  void TearDown() override { f_.reset(); }

  std::vector<uint64_t> PresentBlocks() {
    std::vector<SnapshotInfo> snaps;
    EXPECT_TRUE(ListSnapshots(f_->store(), f_->keys(), "vol", &snaps).ok());
    std::unique_ptr<SnapshotBlocks> sb;
    EXPECT_TRUE(SnapshotBlocks::Open(f_->store(), f_->keys(), "vol", snaps.back().id, &sb).ok());
    std::vector<uint64_t> out;
    for (const auto& loc : sb->map()) out.push_back(loc.block);
    return out;
  }

  // Whether the daemon's log says `text` within `seconds`.
  bool LogSays(const std::string& text, double seconds = 10) {
    for (int i = 0; i < static_cast<int>(seconds * 20); ++i) {
      if (f_->log().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return f_->log().find(text) != std::string::npos;
  }

  std::string ImagePath(const std::string& id) {
    return f_->mountpoint() + "/by-id/" + id + ".img";
  }

  // The whole image and random ranges (1 byte to 1 MiB, the tail included)
  // equal the source image.
  void ExpectIdentical(const std::string& path, uint64_t seed) {
    Bytes all;
    ASSERT_EQ(ReadRange(path, 0, source_.size() + 100, &all), 0);
    ASSERT_EQ(all.size(), source_.size());
    EXPECT_TRUE(all == source_) << "whole-image read differs";
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 300; ++i) {
      size_t len = 1 + rng() % (1 << 20);
      uint64_t off = i % 10 == 0 ? source_.size() - std::min<size_t>(len, source_.size())
                                 : rng() % source_.size();
      Bytes got;
      ASSERT_EQ(ReadRange(path, off, len, &got), 0) << off << "+" << len;
      size_t want = static_cast<size_t>(std::min<uint64_t>(len, source_.size() - off));
      ASSERT_EQ(got.size(), want);
      ASSERT_TRUE(std::equal(got.begin(), got.end(), source_.begin() + static_cast<long>(off)))
          << "range " << off << "+" << len;
    }
  }

  std::unique_ptr<MountFixture> f_;
  Bytes source_;
};

TEST_F(MountTest, BaseOnlyImageIsByteIdentical) {
  std::string id = f_->Deliver("site-a", "vol", {});
  f_->Mount("site-a");
  struct stat st;
  ASSERT_EQ(::stat((f_->mountpoint() + "/vol.img").c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kVolumeBytes);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  ExpectIdentical(f_->mountpoint() + "/vol.img", 1);
  std::string json = ReadText(f_->mountpoint() + "/.lsifs/" + id + ".json");
  EXPECT_GT(JsonCounter(json, "from_base"), 0u);
  EXPECT_EQ(JsonCounter(json, "from_delta"), 0u);
  EXPECT_GT(JsonCounter(json, "origin_requests"), 0u);
  EXPECT_EQ(JsonCounter(json, "read_errors"), 0u);
  EXPECT_EQ(f_->Unmount(), 0);
}

TEST_F(MountTest, AllDeltaImageIsByteIdenticalAndNeverTouchesTheOrigin) {
  std::vector<uint64_t> blocks = PresentBlocks();
  std::shuffle(blocks.begin(), blocks.end(), std::mt19937_64(3));  // record order is free
  std::string id = f_->Deliver("site-a", "vol", {blocks});
  f_->Mount("site-a");
  ExpectIdentical(ImagePath(id), 2);
  std::string json = ReadText(f_->mountpoint() + "/.lsifs/" + id + ".json");
  EXPECT_EQ(JsonCounter(json, "origin_requests"), 0u);
  EXPECT_EQ(JsonCounter(json, "from_base"), 0u);
  EXPECT_EQ(JsonCounter(json, "from_delta"), blocks.size());
  EXPECT_EQ(JsonCounter(json, "prefetched_blocks"), blocks.size());
}

TEST_F(MountTest, LayersOverridingEachOtherAndTheBaseAreByteIdentical) {
  std::vector<uint64_t> p = PresentBlocks();
  ASSERT_GT(p.size(), 40u);
  std::vector<uint64_t> bottom(p.begin(), p.begin() + static_cast<long>(p.size() / 2));
  std::vector<uint64_t> middle(p.begin() + static_cast<long>(p.size() / 4),
                               p.begin() + static_cast<long>(p.size() * 3 / 4));
  std::vector<uint64_t> top;
  for (size_t i = 0; i < p.size(); i += 3) top.push_back(p[i]);
  std::string id = f_->Deliver("site-a", "vol", {bottom, middle, top});
  f_->Mount("site-a");
  ExpectIdentical(ImagePath(id), 4);
  std::string json = ReadText(f_->mountpoint() + "/.lsifs/" + id + ".json");
  EXPECT_GT(JsonCounter(json, "from_delta"), 0u);
  EXPECT_GT(JsonCounter(json, "from_base"), 0u);
}

TEST_F(MountTest, Ext4InsideMountsThroughALoopDeviceAndMatchesTheTree) {
  std::vector<uint64_t> p = PresentBlocks();
  std::vector<uint64_t> half(p.begin(), p.begin() + static_cast<long>(p.size() / 2));
  std::string id = f_->Deliver("site-a", "vol", {half});
  f_->Mount("site-a", "origin_latency=1ms");
  std::string dev = f_->AttachLoop(f_->mountpoint() + "/vol.img");
  EXPECT_EQ(RunShell("e2fsck -fn " + dev + " >/dev/null 2>&1"), 0) << "e2fsck found problems";
  std::string inner = f_->dir() / "inner";
  ::mkdir(inner.c_str(), 0755);
  ASSERT_EQ(RunShell("mount -o ro,noload " + dev + " " + inner), 0);
  f_->TrackInnerMount(inner);
  EXPECT_EQ(RunShell("diff -r --no-dereference " + f_->tree() + " " + inner + " -x lost+found"), 0)
      << "files in the mounted image differ from the source tree";
  EXPECT_EQ(RunShell("umount " + inner), 0);
  f_->DetachLoop(dev);
  EXPECT_EQ(f_->Unmount(), 0);
}

TEST_F(MountTest, ConcurrentReadersGetCorrectBytes) {
  std::vector<uint64_t> p = PresentBlocks();
  std::vector<uint64_t> some;
  for (size_t i = 0; i < p.size(); i += 2) some.push_back(p[i]);
  std::string id = f_->Deliver("site-a", "vol", {some});
  f_->Mount("site-a", "origin_latency=2ms");
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937_64 rng(100 + static_cast<uint64_t>(t));
      // O_DIRECT-free but distinct fds; the page cache is bypassed per read
      // size often enough to reach the daemon concurrently.
      for (int i = 0; i < 60; ++i) {
        size_t len = 1 + rng() % (256 * 1024);
        uint64_t off = rng() % source_.size();
        Bytes got;
        if (ReadRange(ImagePath(id), off, len, &got) != 0 ||
            !std::equal(got.begin(), got.end(), source_.begin() + static_cast<long>(off))) {
          bad++;
        }
      }
    });
  }
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_F(MountTest, ConcurrentReadsOfOneMissingBlockFetchItOnce) {
  std::string id = f_->Deliver("site-a", "vol", {});
  f_->Mount("site-a", "origin_latency=300ms");
  uint64_t block = PresentBlocks()[5];
  std::vector<std::thread> readers;
  std::atomic<int> bad{0};
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      // Each reader asks for a different 4 KiB piece of the same block.
      uint64_t off = block * kBlock + static_cast<uint64_t>(t) * 4096;
      Bytes got;
      if (ReadRange(ImagePath(id), off, 4096, &got) != 0 ||
          !std::equal(got.begin(), got.end(), source_.begin() + static_cast<long>(off))) {
        bad++;
      }
    });
  }
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad.load(), 0);
  std::string json = ReadText(f_->mountpoint() + "/.lsifs/" + id + ".json");
  EXPECT_EQ(JsonCounter(json, "origin_requests"), 1u) << json;
  EXPECT_EQ(JsonCounter(json, "origin_bytes"), kBlock);
  // Read again: served locally, the WAN is not crossed twice.
  Bytes again;
  ASSERT_EQ(ReadRange(ImagePath(id), block * kBlock, kBlock, &again), 0);
  json = ReadText(f_->mountpoint() + "/.lsifs/" + id + ".json");
  EXPECT_EQ(JsonCounter(json, "origin_requests"), 1u) << json;
}

TEST_F(MountTest, WanModelAppliesOneRoundTripPerOriginRequest) {
  std::string id = f_->Deliver("site-a", "vol", {});
  f_->Mount("site-a", "origin_latency=200ms,origin_bandwidth=100Mbit");
  uint64_t block = PresentBlocks()[3];
  Bytes got;
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(ReadRange(ImagePath(id), block * kBlock, 4096, &got), 0);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // A lower bound only: the model must not be skipped. (Speed is measured by
  // the benchmarks, never asserted here.)
  EXPECT_GE(secs, 0.2);
}

TEST_F(MountTest, FlippedByteGivesEioForThatBlockOnly) {
  std::vector<uint64_t> p = PresentBlocks();
  std::vector<uint64_t> blocks(p.begin(), p.begin() + 20);
  std::string id = f_->Deliver("site-a", "vol", {blocks});
  // Flip one ciphertext byte of the record in slot 7.
  Manifest m;
  ASSERT_TRUE(PeekManifest(f_->store().manifest_path(*ParseId(id)), &m).ok());
  std::string layer = f_->store().layer_path(m.layers[0].layer_id);
  KeyInfo info;
  SecretKey key;
  ASSERT_TRUE(f_->store().keyring().Load("site-a", &info, &key).ok());
  std::unique_ptr<LayerReader> reader;
  ASSERT_TRUE(LayerReader::Open(layer, info, key, &reader).ok());
  uint64_t bad_block = reader->blocks()[7];
  uint64_t at = reader->RecordOffset(7) + 100;
  reader.reset();
  Bytes bytes = ReadFileBytes(layer);
  bytes[at] ^= 0x40;
  WriteFileBytes(layer, bytes);

  f_->Mount("site-a");
  Bytes got;
  EXPECT_EQ(ReadRange(ImagePath(id), bad_block * kBlock, 4096, &got), EIO);
  EXPECT_EQ(ReadRange(ImagePath(id), bad_block * kBlock + kBlock - 10, 20, &got), EIO);
  for (uint64_t b : blocks) {
    if (b == bad_block) continue;
    ASSERT_EQ(ReadRange(ImagePath(id), b * kBlock, kBlock, &got), 0) << b;
    EXPECT_TRUE(
        std::equal(got.begin(), got.end(), source_.begin() + static_cast<long>(b * kBlock)));
  }
  std::string log = f_->log();
  EXPECT_NE(log.find("LSI " + id + " layer " + FormatId(m.layers[0].layer_id) + " block " +
                     std::to_string(bad_block)),
            std::string::npos)
      << log;
}

TEST_F(MountTest, MissingLayerFileFailsOnlyItsBlocks) {
  std::vector<uint64_t> p = PresentBlocks();
  std::vector<uint64_t> lower(p.begin(), p.begin() + 10);
  std::vector<uint64_t> upper(p.begin() + 10, p.begin() + 20);
  std::string id = f_->Deliver("site-a", "vol", {lower, upper});
  Manifest m;
  ASSERT_TRUE(PeekManifest(f_->store().manifest_path(*ParseId(id)), &m).ok());
  ASSERT_EQ(::unlink(f_->store().layer_path(m.layers[1].layer_id).c_str()), 0);
  f_->Mount("site-a");
  struct stat st;
  EXPECT_EQ(::stat(ImagePath(id).c_str(), &st), 0) << "the image stays listed";
  Bytes got;
  for (uint64_t b : upper) EXPECT_EQ(ReadRange(ImagePath(id), b * kBlock, 512, &got), EIO) << b;
  for (uint64_t b : lower) {
    ASSERT_EQ(ReadRange(ImagePath(id), b * kBlock, kBlock, &got), 0) << b;
    EXPECT_TRUE(
        std::equal(got.begin(), got.end(), source_.begin() + static_cast<long>(b * kBlock)));
  }
  uint64_t base_block = p[30];
  ASSERT_EQ(ReadRange(ImagePath(id), base_block * kBlock, kBlock, &got), 0);
  EXPECT_NE(f_->log().find("unavailable"), std::string::npos) << f_->log();
}

TEST_F(MountTest, AnotherExtensionsLsiIsAnsweredAsAbsentAndTheRefusalLogged) {
  std::string mine = f_->Deliver("site-a", "vol", {});
  std::string theirs = f_->Deliver("site-b", "vol", {});
  f_->Mount("site-a");
  struct stat st;
  EXPECT_EQ(::stat(ImagePath(mine).c_str(), &st), 0);
  // Exactly as for an LSI that does not exist (DESIGN.md): nothing to learn.
  EXPECT_NE(::stat(ImagePath(theirs).c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_NE(::stat(ImagePath("0123456789abcdef").c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
  std::string listing = ReadText(f_->mountpoint() + "/.lsifs/mount");
  EXPECT_EQ(listing.find(theirs), std::string::npos);
  EXPECT_NE(f_->log().find("refused: LSI " + theirs + " was made for extension 'site-b'"),
            std::string::npos)
      << f_->log();
}

TEST_F(MountTest, AMountpointThatIsNotAnEmptyDirectoryIsRefused) {
  const std::string lsifs = f_->bin("lsifs") + " " + f_->store().root();
  const std::string busy = f_->dir() / "busy";
  ASSERT_EQ(::mkdir(busy.c_str(), 0755), 0);
  testing::WriteFileBytes(busy + "/kept.txt", AsBytes("mine"));
  std::string out = Capture(lsifs + " " + busy + " -e site-a 2>&1; echo rc=$?");
  EXPECT_NE(out.find("is not empty"), std::string::npos) << out;
  EXPECT_NE(out.find("rc=1"), std::string::npos) << out;
  out = Capture(lsifs + " " + busy + "/kept.txt -e site-a 2>&1; echo rc=$?");
  EXPECT_NE(out.find("is not a directory"), std::string::npos) << out;
  EXPECT_EQ(ReadText(busy + "/kept.txt"), "mine");
}

TEST_F(MountTest, MetricsAreScrapedOverHttpWrittenAsATextfileAndShownByStatus) {
  std::string id = f_->Deliver("site-a", "vol", {{PresentBlocks()[0]}});
  const std::string textfile = f_->dir() / "lsifs.prom";
  f_->Mount("site-a", "metrics=127.0.0.1:0,metrics_textfile=" + textfile + ",origin_latency=20ms");
  ExpectIdentical(ImagePath(id), 3);
  // The port it chose is in its log.
  ASSERT_TRUE(LogSays("metrics at http://127.0.0.1:")) << f_->log();
  const std::string log = f_->log();
  const size_t at = log.find("metrics at http://") + 18;
  const std::string url = "http://" + log.substr(at, log.find("/metrics", at) - at) + "/metrics";
  const std::string scrape = Capture("curl -sf " + url);
  const std::string series = "lsifs_lsi_reads_total{extension=\"site-a\",mountpoint=\"" +
                             f_->mountpoint() + "\",lsi=\"" + id + "\",volume=\"vol\"} ";
  const size_t reads_at = scrape.find(series);
  ASSERT_NE(reads_at, std::string::npos) << scrape;
  EXPECT_GT(std::stoull(scrape.substr(reads_at + series.size())), 0u) << scrape;
  const std::string waits = "lsifs_origin_wait_seconds_count{extension=\"site-a\",mountpoint=\"" +
                            f_->mountpoint() + "\"} ";
  const size_t waits_at = scrape.find(waits);
  ASSERT_NE(waits_at, std::string::npos) << scrape;
  EXPECT_GT(std::stoull(scrape.substr(waits_at + waits.size())), 0u) << "reads waited 20 ms";
  EXPECT_NE(scrape.find("# TYPE lsifs_origin_wait_seconds histogram"), std::string::npos);
  // lsictl status reads the mount's JSON, in human units.
  int rc = 0;
  std::string status = f_->Lsictl("status " + f_->mountpoint(), &rc);
  EXPECT_EQ(rc, 0) << status;
  EXPECT_NE(status.find(f_->mountpoint() + " is active"), std::string::npos) << status;
  EXPECT_NE(status.find(id.substr(0, 16) + "  vol"), std::string::npos) << status;
  EXPECT_NE(status.find("MiB"), std::string::npos) << status;
  EXPECT_NE(f_->Lsictl("status " + f_->dir().path(), &rc).find("not an lsifs mount"),
            std::string::npos);
  EXPECT_EQ(rc, 1);
  // The textfile holds the same families while mounted, and goes with it.
  const std::string prom = ReadText(textfile);
  EXPECT_NE(prom.find("lsifs_lsi_reads_total{"), std::string::npos) << prom;
  EXPECT_NE(prom.find("lsifs_cache_capacity_bytes"), std::string::npos);
  EXPECT_EQ(f_->Unmount(), 0);
  EXPECT_FALSE(PathExists(textfile)) << "a stopped mount's figures stay exported";
  // A folder it cannot write to is refused before mounting.
  std::string out = Capture(f_->bin("lsifs") + " " + f_->store().root() + " " + f_->mountpoint() +
                            " -e site-a -o metrics_textfile=/nonexistent/x.prom 2>&1; echo rc=$?");
  EXPECT_NE(out.find("metrics_textfile"), std::string::npos) << out;
  EXPECT_NE(out.find("rc=1"), std::string::npos) << out;
}

TEST_F(MountTest, WritesAndTruncatesFailWithErofs) {
  std::string id = f_->Deliver("site-a", "vol", {});
  f_->Mount("site-a");
  int fd = ::open(ImagePath(id).c_str(), O_WRONLY);
  EXPECT_LT(fd, 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_NE(::truncate(ImagePath(id).c_str(), 0), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_NE(::mkdir((f_->mountpoint() + "/x").c_str(), 0755), 0);
  EXPECT_EQ(errno, EROFS);
}

TEST_F(MountTest, LsisDeliveredWhileMountedAppearAndTheVolumeNameMoves) {
  std::string first = f_->Deliver("site-a", "vol", {});
  f_->Mount("site-a");
  struct stat st;
  ASSERT_EQ(::stat((f_->mountpoint() + "/vol.img").c_str(), &st), 0);
  ino_t first_ino = st.st_ino;
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a newer creation time
  std::string second = f_->Deliver("site-a", "vol", {{PresentBlocks()[0]}});
  EXPECT_EQ(::stat(ImagePath(second).c_str(), &st), 0) << "new LSI not visible";
  // The volume alias follows the newest LSI once its entry expires (1 s).
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  ASSERT_EQ(::stat((f_->mountpoint() + "/vol.img").c_str(), &st), 0);
  EXPECT_NE(st.st_ino, first_ino);
  EXPECT_EQ(::stat(ImagePath(first).c_str(), &st), 0) << "older LSI stays under by-id";
}

TEST_F(MountTest, UnmountWhileAReaderIsActiveDoesNotHang) {
  std::string id = f_->Deliver("site-a", "vol", {});
  f_->Mount("site-a", "origin_latency=100ms");
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    Bytes got;
    for (uint64_t off = 0; !stop && off < source_.size(); off += kBlock) {
      if (ReadRange(ImagePath(id), off, kBlock, &got) != 0) break;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  auto start = std::chrono::steady_clock::now();
  RunShell("fusermount3 -u -z " + f_->mountpoint());
  int rc = f_->Unmount();
  stop = true;
  reader.join();
  EXPECT_GE(rc, 0) << "daemon did not exit after unmount";
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);
}

TEST_F(MountTest, SigtermUnmountsCleanlyAndSavesCounters) {
  std::string id = f_->Deliver("site-a", "vol", {});
  f_->Mount("site-a");
  Bytes got;
  ASSERT_EQ(ReadRange(ImagePath(id), 0, 1 << 20, &got), 0);
  ASSERT_EQ(::kill(f_->daemon_pid(), SIGTERM), 0);
  EXPECT_EQ(f_->WaitExit(10), 0) << f_->log();
  EXPECT_EQ(ReadText("/proc/self/mounts").find(" " + f_->mountpoint() + " "), std::string::npos)
      << "still mounted";
  std::string out_path = f_->dir() / "show.json";
  ASSERT_EQ(RunShell(f_->bin("lsictl") + " -s " + f_->store().root() + " lsi show " + id +
                     " --json > " + out_path),
            0);
  std::string show = ReadText(out_path);
  EXPECT_GT(JsonCounter(show, "reads"), 0u) << show;
  EXPECT_GT(JsonCounter(show, "from_base"), 0u) << show;
  // Which blocks an extension read is the store owner's business alone.
  struct stat st;
  ASSERT_EQ(::stat(f_->store().counters_path(*ParseId(id), "site-a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(MountTest, SigtermWhileALoopDeviceHoldsAnImageRefusesAndNamesIt) {
  std::string id = f_->Deliver("site-a", "vol", {});
  f_->Mount("site-a", "origin_latency=5ms");
  std::string loop = f_->AttachLoop(ImagePath(id));
  ASSERT_EQ(::kill(f_->daemon_pid(), SIGTERM), 0);
  EXPECT_TRUE(LogSays("not stopping on SIGTERM: busy: vol.img open")) << f_->log();
  ASSERT_EQ(f_->WaitExit(0.5), -2) << "stopped while a loop device held an image\n" << f_->log();
  EXPECT_NE(f_->log().find(loop), std::string::npos) << "the holder is not named\n" << f_->log();
  // Still serving: the loop device reads the image.
  Bytes got;
  ASSERT_EQ(ReadRange(loop, 0, 1 << 20, &got), 0);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), source_.begin()));
  // Released, a stop goes through.
  f_->DetachLoop(loop);
  ASSERT_EQ(::kill(f_->daemon_pid(), SIGTERM), 0);
  EXPECT_EQ(f_->WaitExit(10), 0) << f_->log();
  EXPECT_EQ(ReadText("/proc/self/mounts").find(" " + f_->mountpoint() + " "), std::string::npos);
}

TEST_F(MountTest, SigtermWithBusyWaitStopsWhenTheLastReaderCloses) {
  std::string id = f_->Deliver("site-a", "vol", {});
  f_->Mount("site-a", "busy=wait");
  int fd = ::open(ImagePath(id).c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::kill(f_->daemon_pid(), SIGINT), 0);
  // Said after a grace for closes still on their way (a second).
  EXPECT_TRUE(LogSays("stopping when the last one is closed")) << f_->log();
  EXPECT_EQ(f_->WaitExit(0.5), -2) << f_->log();
  char byte;
  EXPECT_EQ(::pread(fd, &byte, 1, 0), 1) << "a waiting mount must keep serving";
  ::close(fd);
  EXPECT_EQ(f_->WaitExit(10), 0) << f_->log();
}

TEST_F(MountTest, SigtermDuringALongOriginWaitStopsPromptly) {
  // A pre-assembly's origin requests wait out a 20 s round trip each; the
  // stop must not wait for them.
  f_->Mount("site-a", "origin_latency=20s");
  RunShell(f_->bin("lsictl") + " -s " + f_->store().root() +
           " preassemble -e site-a -v vol --priority low --budget 1M > /dev/null 2>&1 &");
  std::string queue;
  for (int i = 0; i < 50 && queue.find("running") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    queue = f_->Lsictl("assemblies");
  }
  ASSERT_NE(queue.find("running"), std::string::npos) << queue;
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(f_->daemon_pid(), SIGTERM), 0);
  EXPECT_EQ(f_->WaitExit(15), 0) << f_->log();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0)
      << f_->log();
}

TEST_F(MountTest, SigtermWhileHydrationWaitsOnTheOriginStopsPromptly) {
  std::string id = f_->Deliver("site-a", "vol", {});
  f_->Mount("site-a", "hydrate=on,origin_latency=20s");
  int fd = ::open(ImagePath(id).c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ::close(fd);  // hydration starts at the open and now waits out a round trip
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(f_->daemon_pid(), SIGTERM), 0);
  EXPECT_EQ(f_->WaitExit(25), 0) << f_->log();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0)
      << f_->log();
}

TEST_F(MountTest, UnmountWhileAReadWaitsOnALongRoundTripStopsPromptly) {
  std::string id = f_->Deliver("site-a", "vol", {});
  f_->Mount("site-a", "origin_latency=30s");
  pid_t reader = ::fork();
  if (reader == 0) {
    Bytes got;
    ReadRange(ImagePath(id), 0, 4096, &got);
    ::_exit(0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  ::kill(reader, SIGKILL);
  int status;
  ::waitpid(reader, &status, 0);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20 && RunShell("fusermount3 -u " + f_->mountpoint() + " 2>/dev/null"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(f_->WaitExit(35), 0) << f_->log();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0)
      << f_->log();
}

TEST_F(MountTest, AManifestReplacedAfterListingIsRefusedNotServed) {
  // Two authentic LSIs of one extension; after the mount lists them, the
  // older one's manifest is copied over the newer's (in place, then by
  // rename): the image must refuse, never serve the other LSI's bytes.
  std::string older = f_->Deliver("site-a", "vol", {});
  std::string newer = f_->Deliver("site-a", "vol", {{1, 2}});
  f_->Mount("site-a");
  ASSERT_FALSE(ReadText(f_->mountpoint() + "/.lsifs/mount").empty());
  struct stat st;
  ASSERT_EQ(::stat(ImagePath(newer).c_str(), &st), 0) << "listed";
  const std::string target = f_->store().manifest_path(*ParseId(newer));
  const std::string source = f_->store().manifest_path(*ParseId(older));
  ASSERT_EQ(RunShell("cat " + source + " > " + target), 0);  // in place
  Bytes got;
  EXPECT_NE(ReadRange(ImagePath(newer), 0, 4096, &got), 0) << "served a replaced manifest";
  EXPECT_NE(f_->log().find("LSI " + newer + " cannot be opened"), std::string::npos) << f_->log();
  ASSERT_EQ(RunShell("cp " + source + " " + target + ".new && mv " + target + ".new " + target),
            0);  // by rename
  EXPECT_NE(ReadRange(ImagePath(newer), 0, 4096, &got), 0) << "served a replaced manifest";
  // The one that was not touched still reads right.
  ASSERT_EQ(ReadRange(ImagePath(older), 0, 1 << 20, &got), 0);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), source_.begin()));
}

TEST_F(MountTest, AKeyRotationNeverBreaksAReaderAndLaterOpensUseTheNewKey) {
  const std::vector<uint64_t> present = PresentBlocks();
  ASSERT_GE(present.size(), 5u);
  std::string open_one =
      f_->Deliver("site-a", "vol", {{present[0], present[1]}, {present[1], present[2]}});
  std::string later = f_->Deliver("site-a", "vol", {{present[3], present[4]}});
  f_->Mount("site-a");
  // A reader holds the first image open across the rotation.
  int fd = ::open(ImagePath(open_one).c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  Bytes head(1 << 16);
  ASSERT_EQ(::pread(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
  int rc = 0;
  std::string out = f_->Lsictl("key rotate site-a --json", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"rekeyed\":2"), std::string::npos) << out;
  EXPECT_NE(out.find("\"mount_told\":true"), std::string::npos) << out;
  KeyInfo now;
  SecretKey now_key;
  ASSERT_TRUE(f_->store().keyring().Load("site-a", &now, &now_key).ok());
  EXPECT_NE(ReadText(f_->mountpoint() + "/.lsifs/mount").find("key " + FormatId(now.id)),
            std::string::npos);
  // The open image keeps serving every byte, from its layers and the base.
  Bytes all(source_.size());
  ASSERT_EQ(::pread(fd, all.data(), all.size(), 0), static_cast<ssize_t>(all.size()));
  EXPECT_TRUE(all == source_);
  // Its pin moved to the rekeyed manifest: a drop still waits for it.
  out = f_->Lsictl("lsi drop " + open_one + " --json", &rc);
  EXPECT_NE(out.find("\"deferred\":true"), std::string::npos) << out;
  ::close(fd);
  // An image first opened after the rotation opens with the new key.
  ExpectIdentical(ImagePath(later), 7);
  EXPECT_EQ(f_->log().find("cannot be opened"), std::string::npos) << f_->log();
  // A mount that is not told (another mount holds the control socket)
  // reads the keys again when a file names one it does not hold.
  std::string third = f_->Deliver("site-a", "vol", {{present[2], present[4]}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // listed, never opened
  struct stat st;
  ASSERT_EQ(::stat(ImagePath(third).c_str(), &st), 0);
  const std::string sock = f_->store().control_socket_path();
  ASSERT_EQ(::rename(sock.c_str(), (sock + ".away").c_str()), 0);
  out = f_->Lsictl("key rotate site-a --json", &rc);
  ASSERT_EQ(::rename((sock + ".away").c_str(), sock.c_str()), 0);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"mount_told\":false"), std::string::npos) << out;
  ExpectIdentical(ImagePath(third), 8);
  const std::string log = f_->log();
  EXPECT_NE(log.find("keys read again"), log.rfind("keys read again")) << "read twice: " << log;
}

TEST_F(MountTest, MountHelperMountsFromFstabStyleOptions) {
  std::string id = f_->Deliver("site-a", "vol", {});
  std::string helper = std::string(LSIFS_SOURCE_DIR) + "/mount-tools/mount.lsifs";
  // As mount(8) calls it; the daemon forks into the background.
  std::string cmd = "PATH=" + std::string(LSIFS_BIN_DIR) + ":$PATH " + helper + " " +
                    f_->store().root() + " " + f_->mountpoint() +
                    " -o ext=site-a,nofail,_netdev,origin_latency=1ms";
  ASSERT_EQ(RunShell(cmd), 0);
  struct stat st;
  EXPECT_EQ(::stat(ImagePath(id).c_str(), &st), 0);
  Bytes got;
  EXPECT_EQ(ReadRange(ImagePath(id), 0, 4096, &got), 0);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), source_.begin()));
  // The daemonized lsifs records, and answers lsictl over its socket.
  std::string lsictl = f_->bin("lsictl") + " -s " + f_->store().root();
  std::string out = Capture("timeout 20 " + lsictl + " access show -e site-a -v vol --json");
  EXPECT_NE(out.find("\"session\":1,"), std::string::npos) << out;
  EXPECT_EQ(RunShell("fusermount3 -u " + f_->mountpoint()), 0);
  std::string sock = f_->store().root() + "/control.sock";
  for (int i = 0; i < 100 && ::access(sock.c_str(), F_OK) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(::access(sock.c_str(), F_OK), 0) << "the daemon did not exit";
  out = Capture("timeout 20 " + lsictl + " access show -e site-a -v vol --session 1 --json");
  EXPECT_FALSE(JsonNumbers(out, "blocks").empty()) << out;
  EXPECT_NE(out.find("\"state\":\"ended\""), std::string::npos) << out;
  EXPECT_NE(RunShell(helper + " " + f_->store().root() + " " + f_->mountpoint() + " 2>/dev/null"),
            0)
      << "no ext= must fail";
}

}  // namespace
}  // namespace lsifs::testing
