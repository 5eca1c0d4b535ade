// Learning from reads, end to end: sessions recorded through a real mount,
// read back with lsictl (over the control socket while lsifs runs, directly
// after), crash and database-failure behaviour.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "core/access/access_db.h"
#include "tests/integration/mount_fixture.h"

namespace lsifs::testing {
namespace {

constexpr uint32_t kBlock = 64 * 1024;
constexpr uint64_t kVolumeBytes = 40ull * 1024 * 1024;

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_FAIL() << "these tests need root (FUSE, loop devices)";
    f_ = std::make_unique<MountFixture>(kBlock);
    f_->CreateExtension("site-a");
    f_->ImportExt4("vol", kVolumeBytes);
    id_ = f_->Deliver("site-a", "vol", {});
    image_ = f_->mountpoint() + "/by-id/" + id_ + ".img";
  }
  void TearDown() override {
    if (tmpfs_mounted_) ::umount2(tmpfs_.c_str(), MNT_DETACH);
    f_.reset();
  }

  std::string Lsictl(const std::string& args, int* rc = nullptr) { return f_->Lsictl(args, rc); }

  // Reads whole blocks in this order with O_DIRECT, so that exactly these
  // reach lsifs (no readahead, no page cache).
  void ReadBlocks(const std::vector<uint64_t>& blocks) {
    int fd = ::open(image_.c_str(), O_RDONLY | O_DIRECT);
    ASSERT_GE(fd, 0);
    void* buf = nullptr;
    ASSERT_EQ(::posix_memalign(&buf, 4096, kBlock), 0);
    for (uint64_t b : blocks) {
      EXPECT_EQ(::pread(fd, buf, kBlock, static_cast<off_t>(b * kBlock)),
                static_cast<ssize_t>(kBlock))
          << b;
    }
    std::free(buf);
    ::close(fd);
  }

  // Waits until session `n` of site-a/vol has ended (through the socket).
  std::string WaitSessionEnded(uint32_t n) {
    std::string out;
    for (int i = 0; i < 100; ++i) {
      out = Lsictl("access show -e site-a -v vol --json");
      if (out.find("\"session\":" + std::to_string(n) + ",") != std::string::npos &&
          out.find("\"state\":\"open\"") == std::string::npos) {
        return out;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "session " << n << " did not end: " << out;
    return out;
  }

  std::unique_ptr<MountFixture> f_;
  std::string id_, image_, tmpfs_;
  bool tmpfs_mounted_ = false;
};

TEST_F(AccessTest, LoopDeviceReadsAppearInAccessShowWithTheirBlocksAndOrder) {
  f_->Mount("site-a", "session_idle=300ms");
  std::string dev = f_->AttachLoop(f_->mountpoint() + "/vol.img", /*direct_io=*/true);
  // Direct reads of the loop device reach lsifs in this order.
  const std::vector<uint64_t> order = {40, 3, 17, 25, 8};
  for (uint64_t b : order) {
    ASSERT_EQ(
        RunShell("dd if=" + dev +
                 " of=/dev/null bs=64K iflag=direct status=none count=1 skip=" + std::to_string(b)),
        0);
  }
  // Then the ext4 inside: mount it and read one file.
  std::string inner = f_->dir() / "inner";
  ::mkdir(inner.c_str(), 0755);
  ASSERT_EQ(RunShell("mount -o ro,noload " + dev + " " + inner), 0);
  f_->TrackInnerMount(inner);
  ASSERT_EQ(RunShell("cat " + inner + "/random.bin > /dev/null"), 0);
  ASSERT_EQ(RunShell("umount " + inner), 0);
  f_->DetachLoop(dev);
  WaitSessionEnded(1);

  std::string json = Lsictl("access show -e site-a -v vol --session 1 --json");
  std::vector<uint64_t> logged = JsonNumbers(json, "blocks");
  // Our direct reads, in their order (udev may have probed the device first).
  std::vector<size_t> positions;
  for (uint64_t b : order) {
    auto it = std::find(logged.begin(), logged.end(), b);
    ASSERT_NE(it, logged.end()) << "block " << b << " missing from " << json;
    positions.push_back(static_cast<size_t>(it - logged.begin()));
  }
  EXPECT_TRUE(std::is_sorted(positions.begin(), positions.end())) << json;
  // Every block holding random.bin was read, and each block is logged once.
  std::string extents =
      Capture("debugfs -R 'blocks /random.bin' " + f_->image_path() + " 2>/dev/null");
  std::set<uint64_t> file_blocks;
  size_t pos = 0;
  while (pos < extents.size()) {
    size_t used = 0;
    uint64_t fs_block = std::stoull(extents.substr(pos), &used);
    file_blocks.insert(fs_block * 4096 / kBlock);
    pos += used;
    while (pos < extents.size() && extents[pos] == ' ') ++pos;
  }
  ASSERT_FALSE(file_blocks.empty());
  std::set<uint64_t> logged_set(logged.begin(), logged.end());
  EXPECT_EQ(logged_set.size(), logged.size()) << "a block logged twice in one session";
  for (uint64_t b : file_blocks) EXPECT_TRUE(logged_set.count(b)) << "file block " << b;

  // The overview shows the session and its blocks as hot.
  std::string overview = Lsictl("access show -e site-a -v vol --json");
  EXPECT_EQ(JsonCounter(overview, "blocks"), logged.size());
  EXPECT_NE(overview.find("\"hot_blocks\":[{\"block\":"), std::string::npos) << overview;
  // The heat map, drawn by the daemon: the blocks read at the top of the
  // palette (one session, the most), the sparse image's holes hatched, and
  // blocks it holds that nothing read in grey.
  int rc = 0;
  Lsictl("access heatmap -e site-a -v vol -o " + (f_->dir() / "heat.svg"), &rc);
  EXPECT_EQ(rc, 0);
  std::string svg = ReadText(f_->dir() / "heat.svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("(1 sessions)"), std::string::npos);
  auto fill_of = [&](uint64_t block) {  // one block a cell: 640 blocks
    size_t at = svg.find("<rect id=\"cell-" + std::to_string(block) + "\" ");
    if (at == std::string::npos) return std::string("none");
    at = svg.find("fill=\"", at) + 6;
    return svg.substr(at, svg.find('"', at) - at);
  };
  for (uint64_t b : order) EXPECT_EQ(fill_of(b), "#fde725") << b;
  EXPECT_NE(svg.find("fill=\"url(#hatch-"), std::string::npos);
  EXPECT_NE(svg.find("fill=\"#cccccc\""), std::string::npos);
  EXPECT_EQ(fill_of(kVolumeBytes / kBlock), "none");
  Lsictl("access heatmap -e site-a -v vol -o " + (f_->dir() / "heat.png"), &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(ReadText(f_->dir() / "heat.png").substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST_F(AccessTest, LsictlReachesTheRunningDaemonOverTheSocket) {
  f_->Mount("site-a", "session_idle=200ms");
  ReadBlocks({1, 2, 3});
  // The daemon holds the database: opening it here must fail...
  std::unique_ptr<AccessDb> db;
  EXPECT_EQ(AccessDb::Open(f_->store().db_dir(), CoAccessSettings(), &db).code(),
            Status::Code::kUnavailable);
  struct stat st;
  EXPECT_EQ(::stat((f_->store().root() + "/control.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  // ...and lsictl still answers, through the socket, with the live session.
  int rc = 0;
  std::string out = Lsictl("access show -e site-a -v vol", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("open"), std::string::npos) << out;
  std::string live = ReadText(f_->mountpoint() + "/.lsifs/" + id_);
  EXPECT_NE(live.find("session:           #1 open, 3 blocks recorded"), std::string::npos) << live;
  EXPECT_EQ(f_->Unmount(), 0);
  // After unmount lsictl opens the database itself and sees the ended session.
  out = Lsictl("access show -e site-a -v vol --session 1 --json", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(JsonNumbers(out, "blocks"), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_NE(out.find("\"state\":\"ended\""), std::string::npos) << out;
}

TEST_F(AccessTest, ACopyOfTheWholeImageIsNotLearnedAndAVerificationCanBeForgotten) {
  f_->Mount("site-a", "session_idle=200ms");
  // A restore: a few blocks.
  ReadBlocks({4, 2, 9});
  WaitSessionEnded(1);
  // A copy of the whole image, in order: told apart, not learned from.
  ASSERT_EQ(RunShell("cmp " + image_ + " " + f_->image_path()), 0);
  std::string json = WaitSessionEnded(2);
  EXPECT_NE(json.find("\"learned\":\"no (sequential whole-image read)\""), std::string::npos)
      << json;
  std::string text = Lsictl("access show -e site-a -v vol");
  EXPECT_NE(text.find("no (sequential whole-image read)"), std::string::npos) << text;
  EXPECT_NE(text.find("from 1 sessions"), std::string::npos) << text;
  // A check that reads a few blocks out of order looks like a restore:
  // forgotten by hand, through the running daemon.
  ReadBlocks({30, 31});
  WaitSessionEnded(3);
  EXPECT_NE(Lsictl("access show -e site-a -v vol").find("from 2 sessions"), std::string::npos);
  int rc = 0;
  std::string out = Lsictl("access forget -e site-a -v vol --session 3 --json", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"relearned_sessions\":1"), std::string::npos) << out;
  text = Lsictl("access show -e site-a -v vol");
  EXPECT_NE(text.find("no (forgotten)"), std::string::npos) << text;
  EXPECT_NE(text.find("from 1 sessions"), std::string::npos) << text;
  out = Lsictl("access show -e site-a -v vol --json");
  EXPECT_EQ(out.find("\"block\":30,"), std::string::npos) << "forgotten block still hot: " << out;
  // Reset: nothing of site-a's is left.
  out = Lsictl("access reset -e site-a -v vol", &rc);
  ASSERT_EQ(rc, 0) << out;
  text = Lsictl("access show -e site-a -v vol");
  EXPECT_NE(text.find("No sessions yet"), std::string::npos) << text;
  EXPECT_NE(Lsictl("access forget -e site-a -v vol --session 0", &rc).find("session"),
            std::string::npos);
  EXPECT_NE(rc, 0);
}

TEST_F(AccessTest, KillDashNineLosesAtMostTheLastBatchAndTheDatabaseOpensAfter) {
  f_->Mount("site-a");
  std::vector<uint64_t> early = {10, 11, 12, 13, 14, 15};
  ReadBlocks(early);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // > one flush interval
  ReadBlocks({30, 31});                                          // may be lost with the last batch
  ASSERT_EQ(::kill(f_->daemon_pid(), SIGKILL), 0);
  EXPECT_EQ(f_->WaitExit(10), 128 + SIGKILL);
  RunShell("fusermount3 -u -z " + f_->mountpoint() + " 2>/dev/null");

  int rc = 0;
  std::string out = Lsictl("access show -e site-a -v vol --session 1 --json", &rc);
  ASSERT_EQ(rc, 0) << out;
  std::vector<uint64_t> logged = JsonNumbers(out, "blocks");
  ASSERT_GE(logged.size(), early.size()) << out;
  EXPECT_TRUE(std::equal(early.begin(), early.end(), logged.begin())) << out;
  EXPECT_NE(out.find("recovered"), std::string::npos) << out;
  // Statistics were folded in at recovery.
  out = Lsictl("access show -e site-a -v vol --json", &rc);
  EXPECT_EQ(JsonCounter(out, "model\":{\"sessions"), 1u) << out;
}

TEST_F(AccessTest, ReadsSucceedWhenTheDatabaseIsUnavailable) {
  std::unique_ptr<AccessDb> held;
  ASSERT_TRUE(AccessDb::Open(f_->store().db_dir(), CoAccessSettings(), &held).ok());
  f_->Mount("site-a");
  Bytes source = f_->image();
  Bytes got;
  ASSERT_EQ(ReadRange(image_, 0, source.size(), &got), 0);
  EXPECT_TRUE(got == source);
  EXPECT_NE(f_->log().find("access recording off"), std::string::npos) << f_->log();
  EXPECT_NE(ReadText(f_->mountpoint() + "/.lsifs/mount").find("recording:   off"),
            std::string::npos);
}

TEST_F(AccessTest, ReadsSucceedWhenTheDatabaseFailsWhileMounted) {
  // The database lives on a tiny tmpfs that fills up under the daemon.
  tmpfs_ = f_->store().db_dir();
  std::string saved = f_->dir() / "db-copy";
  ASSERT_EQ(RunShell("cp -a " + tmpfs_ + " " + saved), 0);
  ASSERT_EQ(::mount("tmpfs", tmpfs_.c_str(), "tmpfs", 0, "size=256k"), 0);
  tmpfs_mounted_ = true;
  ASSERT_EQ(RunShell("cp -a " + saved + "/. " + tmpfs_ + "/"), 0);
  f_->Mount("site-a", "session_idle=200ms");
  RunShell("dd if=/dev/zero of=" + tmpfs_ + "/filler bs=4k status=none 2>/dev/null");
  Bytes source = f_->image();
  Bytes got;
  ASSERT_EQ(ReadRange(image_, 0, source.size(), &got), 0);
  EXPECT_TRUE(got == source);
  std::string state;
  for (int i = 0; i < 50; ++i) {
    state = ReadText(f_->mountpoint() + "/.lsifs/mount");
    if (state.find(" 0 database errors") == std::string::npos &&
        state.find(" 0 dropped") == std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(state.find(" 0 database errors"), std::string::npos) << state;
  EXPECT_EQ(state.find(" 0 dropped"), std::string::npos) << state;
  // Still serving.
  ASSERT_EQ(ReadRange(image_, kBlock * 7, 100, &got), 0);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), source.begin() + kBlock * 7));
}

}  // namespace
}  // namespace lsifs::testing
