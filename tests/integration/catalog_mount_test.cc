// The catalog through a real mount and the real programs: only delivered
// LSIs are shown, VOLUME.img follows restores without --snapshot, a drop
// waits for the mount that holds the LSI, eviction spares what is in use,
// and lsictl asks the running daemon.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "tests/integration/mount_fixture.h"

namespace lsifs::testing {
namespace {

constexpr uint32_t kBlock = 64 * 1024;
constexpr uint64_t kVolumeBytes = 24ull * 1024 * 1024;

class CatalogMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_FAIL() << "these tests need root (FUSE, loop devices)";
    f_ = std::make_unique<MountFixture>(kBlock);
    f_->CreateExtension("site-a");
    f_->CreateExtension("site-b");
    f_->ImportExt4("vol", kVolumeBytes);
    source_ = f_->image();
  }

  std::string Lsictl(const std::string& args, int expect_rc = 0) {
    int rc = -1;
    std::string out = f_->Lsictl(args, &rc);
    EXPECT_EQ(rc, expect_rc) << "lsictl " << args << ": " << out;
    return out;
  }

  // The LSI id lsictl prints on stdout (what it says goes to stderr).
  std::string Id(const std::string& args) {
    std::string id = Capture(f_->bin("lsictl") + " -s " + f_->store().root() + " " + args + " 2>>" +
                             (f_->dir() / "lsictl.err"));
    EXPECT_EQ(id.size(), 16u) << "lsictl " << args << ": " << id << " "
                              << ReadText(f_->dir() / "lsictl.err");
    return id;
  }

  boost::json::object LsiJson(const std::string& id) {
    std::string out = Lsictl("lsi show " + id + " --json");
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(out, ec);
    EXPECT_FALSE(ec) << out;
    return ec ? boost::json::object() : v.as_object();
  }

  bool Exists(const std::string& rel) {
    struct stat st;
    return ::stat((f_->mountpoint() + "/" + rel).c_str(), &st) == 0;
  }

  // Both names exist and are the same image.
  bool Same(const std::string& a, const std::string& b) { return Ino(a) != 0 && Ino(a) == Ino(b); }

  // What the mount shows follows the catalog within about a second (a
  // refresh tick, and the half second the kernel keeps a name's absence):
  // true as soon as `shown` holds, false if it never does in 5 s.
  bool Eventually(const std::function<bool()>& shown) {
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
         std::chrono::steady_clock::now() < end;
         std::this_thread::sleep_for(std::chrono::milliseconds(50))) {
      if (shown()) return true;
    }
    return shown();
  }
  // For what must NOT change: long enough for any change to have shown.
  void Settle() { std::this_thread::sleep_for(std::chrono::milliseconds(1500)); }

  // stat of VOLUME.img: which LSI it is (by inode, shared with by-id).
  ino_t Ino(const std::string& rel) {
    struct stat st;
    return ::stat((f_->mountpoint() + "/" + rel).c_str(), &st) == 0 ? st.st_ino : 0;
  }

  std::unique_ptr<MountFixture> f_;
  Bytes source_;
};

TEST_F(CatalogMountTest, OnlyDeliveredLsisAreShownAndTheVolumeImageFollowsRestores) {
  // The whole image is read below to check its bytes; such a read is
  // learned from here (sequential=learn), as the staleness checked later
  // needs a learned session.
  f_->Mount("site-a", "session_idle=200ms,sequential=learn");
  // Assembled ahead of time: in the catalog, not in the mount. (No history
  // yet: the predictor plans nothing, and the LSI is base-only.)
  std::string pre = Id("preassemble -e site-a -v vol");
  ASSERT_EQ(pre.size(), 16u) << pre;
  EXPECT_EQ(std::string(LsiJson(pre)["state"].as_string()), "assembled");
  EXPECT_FALSE(Exists("by-id/" + pre + ".img"));
  EXPECT_FALSE(Exists("vol.img"));

  // The restore (done by the daemon, which holds the models) delivers it.
  std::string restored = Id("restore -e site-a -v vol");
  EXPECT_EQ(restored, pre);
  EXPECT_EQ(std::string(LsiJson(pre)["state"].as_string()), "delivered");
  EXPECT_TRUE(LsiJson(pre)["alias"].as_bool());
  EXPECT_TRUE(Eventually([&] { return Exists("by-id/" + pre + ".img"); }));
  EXPECT_TRUE(Eventually([&] { return Same("vol.img", "by-id/" + pre + ".img"); }));
  Bytes got;
  ASSERT_EQ(ReadRange(f_->mountpoint() + "/vol.img", 0, source_.size(), &got), 0);
  EXPECT_TRUE(got == source_);

  // A new snapshot, not yet restored: the image stays on what was delivered.
  std::string old_snapshot = std::string(LsiJson(pre)["snapshot"].as_string());
  ASSERT_EQ(RunShell("debugfs -w -R 'write /etc/hostname added' " + f_->image_path() +
                     " >/dev/null 2>&1"),
            0);
  Lsictl("import vol " + f_->image_path());
  Settle();
  EXPECT_TRUE(Same("vol.img", "by-id/" + pre + ".img"));

  // Restored: a new LSI on the new snapshot becomes vol.img.
  std::string fresh = Id("restore -e site-a -v vol");
  EXPECT_NE(fresh, pre);
  EXPECT_NE(std::string(LsiJson(fresh)["snapshot"].as_string()), old_snapshot);
  EXPECT_TRUE(Eventually([&] { return Same("vol.img", "by-id/" + fresh + ".img"); }));
  Bytes now_source = f_->image();
  ASSERT_EQ(ReadRange(f_->mountpoint() + "/vol.img", 0, now_source.size(), &got), 0);
  EXPECT_TRUE(got == now_source);

  // An older snapshot asked for by id: by-id only; vol.img does not move.
  // (The session that read vol.img was learned: the first LSI is stale, so
  // a new one is made for that snapshot.)
  std::string by_id = Id("restore -e site-a -v vol --snapshot " + old_snapshot);
  EXPECT_NE(by_id, pre);
  EXPECT_EQ(std::string(LsiJson(by_id)["snapshot"].as_string()), old_snapshot);
  EXPECT_FALSE(LsiJson(by_id)["alias"].as_bool());
  EXPECT_TRUE(Eventually([&] { return Exists("by-id/" + by_id + ".img"); }));
  EXPECT_TRUE(Same("vol.img", "by-id/" + fresh + ".img"));

  // Dropping vol.img's LSI removes vol.img: no older one takes its place.
  Lsictl("lsi drop " + fresh);
  EXPECT_TRUE(Eventually([&] { return !Exists("vol.img"); }));
  EXPECT_TRUE(Eventually([&] { return !Exists("by-id/" + fresh + ".img"); }));
  EXPECT_TRUE(Exists("by-id/" + by_id + ".img"));

  // Another extension's restore shows nothing here.
  std::string theirs = Id("restore -e site-b -v vol");
  Settle();
  EXPECT_FALSE(Exists("by-id/" + theirs + ".img"));
  EXPECT_EQ(f_->Unmount(), 0);
}

TEST_F(CatalogMountTest, AnLsiInUseIsDroppedOnlyWhenReleasedAndEvictionSparesIt) {
  std::string held = Id("restore -e site-a -v vol");
  std::string other = Id("preassemble -e site-a -v vol --strategy none");
  f_->Mount("site-a", "session_idle=300ms");
  std::string path = f_->mountpoint() + "/by-id/" + held + ".img";
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(LsiJson(held)["in_use"].as_bool());

  // Eviction down to nothing: everything but the open LSI goes.
  Lsictl("config set lsi_cap 1");
  std::string gc = Lsictl("gc --json");
  EXPECT_NE(gc.find(other), std::string::npos) << gc;
  EXPECT_EQ(gc.find(held), std::string::npos) << gc;
  EXPECT_NE(gc.find("\"satisfied\":false"), std::string::npos) << gc;

  // Dropped while open: gone from listings at once, still readable here.
  std::string out = Lsictl("lsi drop " + held);
  EXPECT_NE(out.find("a mount has it open"), std::string::npos) << out;
  EXPECT_TRUE(Eventually([&] { return !Exists("by-id/" + held + ".img"); }));
  EXPECT_EQ(std::string(LsiJson(held)["state"].as_string()), "dropped");
  Bytes buf(kBlock);
  for (uint64_t off = 0; off + kBlock <= source_.size(); off += 7 * kBlock) {
    ASSERT_EQ(::pread(fd, buf.data(), kBlock, static_cast<off_t>(off)),
              static_cast<ssize_t>(kBlock));
    ASSERT_TRUE(std::equal(buf.begin(), buf.end(), source_.begin() + static_cast<long>(off)))
        << off;
  }
  Manifest m;
  ASSERT_TRUE(PeekManifest(f_->store().manifest_path(*ParseId(held)), &m).ok());

  // Released: the session ends after session_idle, and the files go.
  ::close(fd);
  bool gone = false;
  for (int i = 0; i < 50 && !gone; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    gone = !PathExists(f_->store().manifest_path(*ParseId(held)));
  }
  EXPECT_TRUE(gone) << f_->log();
  for (const auto& l : m.layers) EXPECT_FALSE(PathExists(f_->store().layer_path(l.layer_id)));
  // Nor does the daemon hold any of its files open (once the release that
  // removed them has closed them too): their space is free.
  std::string held_files;
  for (int i = 0; i < 40; ++i) {
    held_files.clear();
    for (const auto& fd_link :
         std::filesystem::directory_iterator("/proc/" + std::to_string(f_->daemon_pid()) + "/fd")) {
      std::error_code ec;
      std::string target = std::filesystem::read_symlink(fd_link.path(), ec);
      if (target.find("(deleted)") != std::string::npos) held_files += target + "\n";
    }
    if (held_files.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(held_files.empty()) << held_files;
  int rc = 0;
  f_->Lsictl("lsi show " + held, &rc);
  EXPECT_NE(rc, 0);
  EXPECT_EQ(f_->Unmount(), 0);
}

// One restore session as a user runs it: restore, losetup the volume's
// image, mount the ext4 inside, read files, unmount, detach; it ends after
// session_idle. Returns the LSI it read.
// Mounts the ext4 inside `image` through a loop device and reads `files`.
void ReadFilesOf(MountFixture& f, const std::string& image, const std::vector<std::string>& files);

std::string RunSession(MountFixture& f, const std::vector<std::string>& files,
                       const std::function<std::string(const std::string&)>& id) {
  std::string lsi = id("restore -e site-a -v vol");
  // The restore may have moved vol.img: wait until the mount shows it.
  for (int i = 0; i < 100; ++i) {
    struct stat a, b;
    if (::stat((f.mountpoint() + "/vol.img").c_str(), &a) == 0 &&
        ::stat((f.mountpoint() + "/by-id/" + lsi + ".img").c_str(), &b) == 0 &&
        a.st_ino == b.st_ino) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ReadFilesOf(f, f.mountpoint() + "/vol.img", files);
  return lsi;
}

TEST_F(CatalogMountTest, ExpansionBringsWhatFollowedAMissInPastSessions) {
  auto id = [&](const std::string& args) { return Id(args); };
  const std::vector<std::string> files = {"random.bin", "common-licenses/GPL-3"};
  // A session on a base-only LSI (nothing pre-assembled): what waited?
  auto lazy_session = [&](const std::string& options) {
    f_->Mount("site-a", options);
    std::string lsi = Id("preassemble -e site-a -v vol --strategy none");
    Lsictl("lsi deliver " + lsi);
    std::string image = f_->mountpoint() + "/by-id/" + lsi + ".img";
    for (int i = 0; i < 100 && ::access(image.c_str(), R_OK) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // The successor table is built when the session starts and handed to
    // it a moment later: open the image first.
    int fd = ::open(image.c_str(), O_RDONLY);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    ReadFilesOf(*f_, image, files);
    std::string counters = ReadText(f_->mountpoint() + "/.lsifs/" + lsi + ".json");
    if (fd >= 0) ::close(fd);
    EXPECT_EQ(f_->Unmount(), 0);
    return counters;
  };
  f_->Mount("site-a", "session_idle=200ms,preassemble=off");
  for (int i = 0; i < 3; ++i) RunSession(*f_, files, id);
  EXPECT_EQ(f_->Unmount(), 0);
  std::string with = lazy_session("session_idle=200ms,preassemble=off,record=0");
  std::string without = lazy_session("session_idle=200ms,preassemble=off,record=0,expand=off");
  EXPECT_GT(JsonCounter(with, "expanded_read"), 0u) << with;
  EXPECT_EQ(JsonCounter(without, "expanded_blocks"), 0u) << without;
  EXPECT_LT(JsonCounter(with, "waited_blocks"), JsonCounter(without, "waited_blocks"))
      << with << "\n"
      << without;
}

void ReadFilesOf(MountFixture& f, const std::string& image, const std::vector<std::string>& files) {
  std::string dev = f.AttachLoop(image, /*direct_io=*/true);
  std::string inner = f.dir() / "inner";
  ::mkdir(inner.c_str(), 0755);
  EXPECT_EQ(RunShell("echo 3 > /proc/sys/vm/drop_caches; mount -o ro,noload " + dev + " " + inner),
            0);
  f.TrackInnerMount(inner);
  for (const auto& file : files)
    EXPECT_EQ(RunShell("cat " + inner + "/" + file + " >/dev/null"), 0);
  EXPECT_EQ(RunShell("umount " + inner), 0);
  f.DetachLoop(dev);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // session_idle, then folded
}

TEST_F(CatalogMountTest, APredictedRestoreServesTheNextSessionFromItsDeltaLayers) {
  f_->Mount("site-a", "session_idle=200ms");
  auto id = [&](const std::string& args) { return Id(args); };
  std::vector<std::string> files = {"random.bin", "common-licenses/GPL-3",
                                    "common-licenses/Apache-2.0"};
  // Three sessions of history: the first LSI has nothing to go on.
  std::string first = RunSession(*f_, files, id);
  EXPECT_EQ(LsiJson(first)["prefetched_blocks"].to_number<uint64_t>(), 0u);
  RunSession(*f_, files, id);
  RunSession(*f_, files, id);
  // The fourth restore is composed from what was learned, and its session
  // is served from the delta layers.
  std::string predicted = RunSession(*f_, files, id);
  auto lsi = LsiJson(predicted);
  EXPECT_EQ(std::string(lsi["strategy"].as_string()), "predicted");
  EXPECT_GT(lsi["prefetched_blocks"].to_number<uint64_t>(), 70u);  // random.bin alone is 77
  std::string counters = ReadText(f_->mountpoint() + "/.lsifs/" + predicted + ".json");
  uint64_t from_delta = JsonCounter(counters, "from_delta");
  uint64_t from_base = JsonCounter(counters, "from_base");
  EXPECT_GT(from_delta, 0u) << counters;
  EXPECT_GE(from_delta, 9 * from_base) << counters;  // recall >= 0.9
  EXPECT_EQ(f_->Unmount(), 0);
}

TEST_F(CatalogMountTest, TheDaemonAndLsictlAloneMakeTheSamePlan) {
  f_->Mount("site-a", "session_idle=200ms,preassemble=off");
  auto id = [&](const std::string& args) { return Id(args); };
  RunSession(*f_, {"random.bin", "common-licenses/GPL-3"}, id);
  RunSession(*f_, {"random.bin", "common-licenses/BSD"}, id);
  auto plan = [&](const std::string& json) {
    boost::system::error_code ec;
    auto v = boost::json::parse(json, ec);
    EXPECT_FALSE(ec) << json;
    if (ec) return std::string();
    return boost::json::serialize(v.as_object().at("plan").as_object().at("blocks"));
  };
  // In the daemon (it holds the database)...
  std::string by_daemon = Lsictl("preassemble -e site-a -v vol --explain --json");
  std::string first = std::string(boost::json::parse(by_daemon).as_object().at("lsi").as_string());
  Lsictl("lsi drop " + first);
  EXPECT_EQ(f_->Unmount(), 0);
  // ... and in lsictl alone, on the same history.
  std::string alone = Lsictl("preassemble -e site-a -v vol --explain --json");
  EXPECT_FALSE(plan(by_daemon).empty());
  EXPECT_NE(plan(by_daemon), "[]");
  EXPECT_EQ(plan(by_daemon), plan(alone));
}

TEST_F(CatalogMountTest, ListingsAndStatsSpeakJsonAndText) {
  std::string id = Id("restore -e site-a -v vol");
  std::string list = Lsictl("lsi list");
  EXPECT_NE(list.find(id), std::string::npos) << list;
  EXPECT_NE(list.find("delivered, image"), std::string::npos) << list;
  boost::system::error_code ec;
  auto arr = boost::json::parse(Lsictl("lsi list --json"), ec);
  ASSERT_FALSE(ec);
  ASSERT_EQ(arr.as_array().size(), 1u);
  EXPECT_FALSE(arr.as_array()[0].as_object().at("expires").is_null());
  auto stats = boost::json::parse(Lsictl("stats --json"), ec);
  ASSERT_FALSE(ec);
  const auto& vol = stats.as_object().at("volumes").as_array().at(0).as_object();
  EXPECT_EQ(std::string(vol.at("volume").as_string()), "vol");
  EXPECT_EQ(vol.at("snapshots").to_number<uint64_t>(), 1u);
  const auto& ext = vol.at("extensions").as_array().at(0).as_object();
  EXPECT_EQ(ext.at("restores").to_number<uint64_t>(), 1u);
  EXPECT_EQ(
      ext.at("lsis").as_object().at("delivered").as_object().at("count").to_number<uint64_t>(), 1u);
  std::string text = Lsictl("stats");
  EXPECT_NE(text.find("site-a"), std::string::npos) << text;
  std::string config = Lsictl("config --json");
  EXPECT_NE(config.find("lsi_cap"), std::string::npos) << config;
  Lsictl("config set lsi_cap 0x1", 1);
  Lsictl("config set nonsense 1G", 1);
}

}  // namespace
}  // namespace lsifs::testing
