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
  ASSERT_TRUE(Store::Init(dir / "s", 128 * 1024, &config).ok());
  for (const char* p :
       {"config", "provider.key", "keys", "snapshots", "layers", "lsi", "db", "tmp"}) {
    EXPECT_TRUE(PathExists(dir / ("s/" + std::string(p)))) << p;
  }
  struct stat st;
  ASSERT_EQ(::stat((dir / "s/provider.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(dir / "s", &store).ok());
  EXPECT_EQ(store->block_size(), 128u * 1024);
  EXPECT_EQ(store->config().store_id, config.store_id);
  SecretKey key;
  EXPECT_TRUE(store->LoadProviderKey(&key).ok());
}

TEST(Store, InitIntoAnEmptyDirectoryWorksButNeverOverANonEmptyOne) {
  TempDir dir;
  ASSERT_EQ(::mkdir((dir / "empty").c_str(), 0755), 0);
  EXPECT_TRUE(Store::Init(dir / "empty", kDefaultBlockSize, nullptr).ok());
  Status s = Store::Init(dir / "empty", kDefaultBlockSize, nullptr);
  EXPECT_EQ(s.code(), Status::Code::kExists) << s.ToString();
  // Nothing of the failed attempt is left beside it.
  EXPECT_EQ(testing::TreeListing(dir.path()).size(),
            testing::TreeListing(dir / "empty").size() + 1);
}

TEST(Store, RejectsBadBlockSizes) {
  TempDir dir;
  EXPECT_FALSE(Store::Init(dir / "s", 3000, nullptr).ok());
  EXPECT_FALSE(Store::Init(dir / "s", 2u << 20, nullptr).ok());
  EXPECT_FALSE(PathExists(dir / "s"));
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

}  // namespace
}  // namespace lsifs
