#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/store/store.h"
#include "core/util/file.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

using testing::TempDir;

TEST(Store, InitCreatesTheLayoutAndOpens) {
  TempDir dir;
  StoreConfig config;
  config.block_size = 128 * 1024;
  ASSERT_TRUE(Store::Init(dir / "s", &config).ok());
  for (const char* p : {"config", "provider.key", "keys", "snapshots", "layers", "lsi", "catalog",
                        "run", "db", "tmp"}) {
    EXPECT_TRUE(PathExists(dir / ("s/" + std::string(p)))) << p;
  }
  struct stat st;
  ASSERT_EQ(::stat((dir / "s/provider.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(dir / "s", &store).ok());
  EXPECT_EQ(store->block_size(), 128u * 1024);
  EXPECT_EQ(store->config().store_id, config.store_id);
  // Caps chosen from the disk, and kept.
  EXPECT_GE(config.lsi_cap, 256u << 20);
  EXPECT_EQ(store->config().lsi_cap, config.lsi_cap);
  EXPECT_EQ(store->config().free_floor, config.free_floor);
  SecretKey key;
  EXPECT_TRUE(store->LoadProviderKey(&key).ok());
}

TEST(Store, AccessLogsCountersAndKeysAreTheOwnersAlone) {
  TempDir dir;
  StoreConfig config;
  ASSERT_TRUE(Store::Init(dir / "s", &config).ok());
  auto mode = [&](const std::string& sub) {
    struct stat st;
    EXPECT_EQ(::stat((dir / ("s/" + sub)).c_str(), &st), 0) << sub;
    return st.st_mode & 0777;
  };
  for (const char* sub : {"keys", "db", "run"}) EXPECT_EQ(mode(sub), 0700u) << sub;
  EXPECT_EQ(mode("layers"), 0755u);
  // A store made when they were open is closed at the next open.
  for (const char* sub : {"db", "run"}) ::chmod((dir / ("s/" + std::string(sub))).c_str(), 0755);
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(dir / "s", &store).ok());
  for (const char* sub : {"db", "run"}) EXPECT_EQ(mode(sub), 0700u) << sub;
}

TEST(Store, InitIntoAnEmptyDirectoryWorksButNeverOverANonEmptyOne) {
  TempDir dir;
  ASSERT_EQ(::mkdir((dir / "empty").c_str(), 0755), 0);
  StoreConfig config;
  EXPECT_TRUE(Store::Init(dir / "empty", &config).ok());
  Status s = Store::Init(dir / "empty", &config);
  EXPECT_EQ(s.code(), Status::Code::kExists) << s.ToString();
  // Nothing of the failed attempt is left beside it.
  EXPECT_EQ(testing::TreeListing(dir.path()).size(),
            testing::TreeListing(dir / "empty").size() + 1);
}

TEST(Store, RejectsBadBlockSizes) {
  TempDir dir;
  StoreConfig config;
  config.block_size = 3000;
  EXPECT_FALSE(Store::Init(dir / "s", &config).ok());
  config.block_size = 2u << 20;
  EXPECT_FALSE(Store::Init(dir / "s", &config).ok());
  EXPECT_FALSE(PathExists(dir / "s"));
}

TEST(Store, CapsAreChangedAtomicallyAndKept) {
  TempDir dir;
  StoreConfig config;
  config.lsi_cap = 3ull << 30;
  config.free_floor = 100ull << 20;
  ASSERT_TRUE(Store::Init(dir / "s", &config).ok());
  EXPECT_EQ(config.lsi_cap, 3ull << 30);
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(dir / "s", &store).ok());
  EXPECT_EQ(store->config().free_floor, 100ull << 20);
  ASSERT_TRUE(store->UpdateCaps(5ull << 30, 1ull << 30).ok());
  ASSERT_TRUE(Store::Open(dir / "s", &store).ok());
  EXPECT_EQ(store->config().lsi_cap, 5ull << 30);
  EXPECT_EQ(store->config().free_floor, 1ull << 30);
  EXPECT_EQ(store->config().store_id, config.store_id);
}

TEST(Store, AStoreMadeBeforeCapsGetsCapsChosenAtOpen) {
  TempDir dir;
  auto store = testing::MakeStore(dir);
  Bytes text = testing::ReadFileBytes(store->config_path());
  std::string old(text.begin(), text.end());
  old = old.substr(0, old.find("lsi_cap:"));  // as written before eviction existed
  testing::WriteFileBytes(store->config_path(), AsBytes(old));
  ASSERT_TRUE(Store::Open(dir / "store", &store).ok());
  EXPECT_GE(store->config().lsi_cap, 256u << 20);
  uint64_t cap = 0, floor = 0;
  store->CurrentCaps(&cap, &floor);
  EXPECT_EQ(cap, store->config().lsi_cap);  // and written down
  EXPECT_FALSE(store->UpdateCaps(0, 0).ok());
}

TEST(Store, NamesAndRecognisesItsFiles) {
  TempDir dir;
  auto store = testing::MakeStore(dir);
  StoreFile kind;
  uint64_t id = 0;
  std::string ext;
  auto name = [](const std::string& path) { return path.substr(path.rfind('/') + 1); };
  ASSERT_TRUE(Store::ParseFileName(name(store->manifest_path(0xabc)), &kind, &id));
  EXPECT_EQ(kind, StoreFile::kManifest);
  EXPECT_EQ(id, 0xabcu);
  ASSERT_TRUE(Store::ParseFileName(name(store->tombstone_path(7)), &kind, &id));
  EXPECT_EQ(kind, StoreFile::kTombstone);
  ASSERT_TRUE(Store::ParseFileName(name(store->layer_path(9)), &kind, &id));
  EXPECT_EQ(kind, StoreFile::kLayer);
  EXPECT_EQ(id, 9u);
  ASSERT_TRUE(Store::ParseFileName(name(store->deliveries_path("site-a")), &kind, &id, &ext));
  EXPECT_EQ(kind, StoreFile::kDeliveries);
  EXPECT_EQ(ext, "site-a");
  ASSERT_TRUE(Store::ParseFileName(name(store->claim_path(3)), &kind, &id));
  EXPECT_EQ(kind, StoreFile::kClaim);
  EXPECT_EQ(id, static_cast<uint64_t>(::getpid()));
  EXPECT_FALSE(Store::ParseFileName("0123.lsi", &kind, &id));
  EXPECT_FALSE(Store::ParseFileName("zzzzzzzzzzzzzzzz.lsi", &kind, &id));
  EXPECT_FALSE(Store::ParseFileName("x.layer.12.0.tmp", &kind, &id));
}

TEST(Store, OpeningSomethingElseSaysWhatToDo) {
  TempDir dir;
  std::unique_ptr<Store> store;
  Status s = Store::Open(dir.path(), &store);
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_NE(s.message().find("lsictl init"), std::string::npos) << s.message();
  s = Store::Open("", &store);
  EXPECT_NE(s.message().find("LSIFS_STORE"), std::string::npos) << s.message();
}

TEST(Store, SweepsTemporariesOfDeadProcessesOnly) {
  TempDir dir;
  auto store = testing::MakeStore(dir);
  // A pid that cannot be alive: the child of a fork that has exited.
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status;
  ::waitpid(child, &status, 0);
  std::string dead = store->tmp_dir() + "/x.layer." + std::to_string(child) + ".0.tmp";
  std::string alive = store->tmp_dir() + "/y.layer." + std::to_string(::getpid()) + ".0.tmp";
  testing::WriteFileBytes(dead, AsBytes("x"));
  testing::WriteFileBytes(alive, AsBytes("y"));
  EXPECT_EQ(store->SweepTemporaries(), 1);
  EXPECT_FALSE(PathExists(dead));
  EXPECT_TRUE(PathExists(alive));
}

TEST(AtomicFile, UncommittedWriterLeavesNothing) {
  TempDir dir;
  {
    AtomicFileWriter w;
    ASSERT_TRUE(w.Open(dir.path(), dir / "final").ok());
    ASSERT_TRUE(w.Write(AsBytes("half")).ok());
  }
  EXPECT_TRUE(testing::TreeListing(dir.path()).empty());
  AtomicFileWriter w;
  ASSERT_TRUE(w.Open(dir.path(), dir / "final").ok());
  ASSERT_TRUE(w.Write(AsBytes("whole")).ok());
  ASSERT_TRUE(w.Commit().ok());
  EXPECT_EQ(testing::ReadFileBytes(dir / "final"), Bytes({'w', 'h', 'o', 'l', 'e'}));
  AtomicFileWriter again;
  ASSERT_TRUE(again.Open(dir.path(), dir / "final").ok());
  EXPECT_EQ(again.Commit().code(), Status::Code::kExists);
  EXPECT_EQ(testing::TreeListing(dir.path()).size(), 1u);
}

TEST(AtomicFile, AnErrorNamesTheFileNotItsTemporary) {
  TempDir dir;
  AtomicFileWriter w;
  Status s = w.Open(dir / "no-such-folder", dir / "final");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("writing " + (dir / "final")), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find(".tmp"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace lsifs
