#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/crypto/aead.h"
#include "core/crypto/key_backup.h"
#include "core/crypto/keyfile.h"
#include "core/util/file.h"
#include "core/util/hex.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

using testing::TempDir;

TEST(Aead, SealOpenRoundTrip) {
  Aead aead;
  SecretKey key = SecretKey::Random();
  Bytes plain = testing::PseudoRandom(4096, 1);
  Bytes record(plain.size() + kSealOverhead);
  ASSERT_TRUE(aead.Seal(key, AsBytes("aad"), plain, record).ok());
  Bytes out(plain.size());
  ASSERT_TRUE(aead.Open(key, AsBytes("aad"), record, out).ok());
  EXPECT_EQ(out, plain);
}

TEST(Aead, NoncesAreFreshPerSeal) {
  Aead aead;
  SecretKey key = SecretKey::Random();
  Bytes plain(64, 7);
  Bytes a(plain.size() + kSealOverhead), b(plain.size() + kSealOverhead);
  ASSERT_TRUE(aead.Seal(key, {}, plain, a).ok());
  ASSERT_TRUE(aead.Seal(key, {}, plain, b).ok());
  EXPECT_NE(Bytes(a.begin(), a.begin() + kNonceSize), Bytes(b.begin(), b.begin() + kNonceSize));
}

TEST(Aead, DetectsEveryTamperingAndWipesOutput) {
  Aead aead;
  SecretKey key = SecretKey::Random();
  Bytes plain = testing::PseudoRandom(100, 2);
  Bytes record(plain.size() + kSealOverhead);
  ASSERT_TRUE(aead.Seal(key, AsBytes("ctx"), plain, record).ok());
  Bytes out(plain.size());
  for (size_t i = 0; i < record.size(); ++i) {
    Bytes bad = record;
    bad[i] ^= 0x01;
    Status s = aead.Open(key, AsBytes("ctx"), bad, out);
    EXPECT_TRUE(s.IsCorruption()) << "byte " << i;
    EXPECT_EQ(out, Bytes(out.size(), 0)) << "unauthenticated plaintext left behind";
  }
  EXPECT_TRUE(aead.Open(key, AsBytes("other"), record, out).IsCorruption());
  EXPECT_TRUE(aead.Open(SecretKey::Random(), AsBytes("ctx"), record, out).IsCorruption());
}

TEST(Keys, DerivedKeysDifferByLabelAndAreStable) {
  SecretKey master = SecretKey::Random();
  SecretKey a = DeriveKey(master, "a");
  SecretKey a2 = DeriveKey(master, "a");
  SecretKey b = DeriveKey(master, "b");
  EXPECT_EQ(Bytes(a.span().begin(), a.span().end()), Bytes(a2.span().begin(), a2.span().end()));
  EXPECT_NE(Bytes(a.span().begin(), a.span().end()), Bytes(b.span().begin(), b.span().end()));
}

TEST(Keys, SecretKeyIsWipedWhenMovedFromOrWiped) {
  SecretKey a = SecretKey::Random();
  Bytes before(a.span().begin(), a.span().end());
  SecretKey b = std::move(a);
  EXPECT_EQ(Bytes(a.span().begin(), a.span().end()), Bytes(kKeySize, 0));
  EXPECT_EQ(Bytes(b.span().begin(), b.span().end()), before);
  b.Wipe();
  EXPECT_EQ(Bytes(b.span().begin(), b.span().end()), Bytes(kKeySize, 0));
}

TEST(Mac, IncrementalEqualsOneShotAndResetStartsOver) {
  SecretKey key = SecretKey::Random();
  Bytes data = testing::PseudoRandom(1000, 3);
  Mac mac(key);
  mac.Update(ByteSpan(data).first(10));
  mac.Update(ByteSpan(data).subspan(10));
  EXPECT_EQ(mac.Final(), ComputeMac(key, data));
  mac.Reset();
  mac.Update(data);
  EXPECT_EQ(mac.Final(), ComputeMac(key, data));
}

// A keyring in `dir`/keys, with its temporaries in `dir`/tmp.
Keyring KeyringIn(const TempDir& dir) {
  ::mkdir((dir / "keys").c_str(), 0700);
  ::mkdir((dir / "tmp").c_str(), 0700);
  return Keyring(dir / "keys", dir / "tmp");
}

TEST(KeyFile, CreatedMode0600AndReadBack) {
  TempDir dir;
  Keyring ring = KeyringIn(dir);
  ::umask(0);  // a permissive umask must not widen the key file's mode
  KeyInfo info;
  ASSERT_TRUE(ring.Create("site-a", &info).ok());
  ::umask(022);
  struct stat st;
  ASSERT_EQ(::stat(info.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  KeyInfo loaded;
  SecretKey key;
  ASSERT_TRUE(ring.Load("site-a", &loaded, &key).ok());
  EXPECT_EQ(loaded.id, info.id);
  EXPECT_EQ(loaded.name, "site-a");
  EXPECT_EQ(ring.Create("site-a", &info).code(), Status::Code::kExists);
  std::vector<KeyInfo> all;
  ASSERT_TRUE(ring.Create("site-b", &info).ok());
  ASSERT_TRUE(ring.List(&all).ok());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "site-a");
  EXPECT_EQ(all[1].name, "site-b");
}

TEST(KeyFile, AUserWhoMayNotReadTheKeysIsToldSoNotThatThereIsNoKey) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  TempDir dir;
  ::chmod(dir.path().c_str(), 0755);
  Keyring ring = KeyringIn(dir);
  KeyInfo info;
  ASSERT_TRUE(ring.Create("site-a", &info).ok());
  // As nobody, in a child: the keys folder is the owner's only.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    KeyInfo loaded;
    SecretKey key;
    Status s = ring.Load("site-a", &loaded, &key);
    std::string out = std::to_string(static_cast<int>(s.code())) + " " + s.message();
    (void)!::write(fds[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string got;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    got.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(got.rfind(std::to_string(static_cast<int>(Status::Code::kPermission)) + " ", 0), 0u)
      << got;
  EXPECT_NE(got.find("Permission denied"), std::string::npos) << got;
  EXPECT_EQ(got.find("has no key"), std::string::npos) << got;
}

TEST(KeyFile, AKeyFileThatIsAFifoOrALinkToOneIsRefusedAtOnce) {
  TempDir dir;
  Keyring ring = KeyringIn(dir);
  // A FIFO opened for reading would wait for a writer forever.
  ASSERT_EQ(::mkfifo(ring.PathFor("site-a").c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo((dir / "elsewhere").c_str(), 0600), 0);
  ASSERT_EQ(::symlink((dir / "elsewhere").c_str(), ring.PathFor("site-b").c_str()), 0);
  for (const char* name : {"site-a", "site-b"}) {
    KeyInfo info;
    SecretKey key;
    Status s = ring.Load(name, &info, &key);
    EXPECT_FALSE(s.ok()) << name;
    EXPECT_NE(s.message().find("not a regular file"), std::string::npos) << s.ToString();
  }
  File f;
  EXPECT_FALSE(File::OpenRead(dir.path(), &f).ok());  // nor a directory
}

TEST(KeyFile, GroupOrWorldReadableKeyIsRefusedWithAFix) {
  TempDir dir;
  Keyring ring = KeyringIn(dir);
  KeyInfo info;
  ASSERT_TRUE(ring.Create("site-a", &info).ok());
  for (mode_t mode : {0640u, 0604u, 0660u}) {
    ASSERT_EQ(::chmod(info.path.c_str(), mode), 0);
    KeyInfo loaded;
    SecretKey key;
    Status s = ring.Load("site-a", &loaded, &key);
    EXPECT_TRUE(s.IsPermission()) << s.ToString();
    EXPECT_NE(s.message().find("chmod 600"), std::string::npos) << s.message();
  }
}

TEST(KeyFile, AKeyAnotherUserOwnsOrCouldReplaceIsRefused) {
  TempDir dir;
  Keyring ring = KeyringIn(dir);
  KeyInfo info;
  ASSERT_TRUE(ring.Create("site-a", &info).ok());
  KeyInfo loaded;
  SecretKey key;
  ASSERT_TRUE(ring.Load("site-a", &loaded, &key).ok());

  // Owned by another user (this test runs as root, which may chown).
  ASSERT_EQ(::chown(info.path.c_str(), 4242, 4242), 0);
  Status s = ring.Load("site-a", &loaded, &key);
  EXPECT_TRUE(s.IsPermission()) << s.ToString();
  EXPECT_NE(s.message().find("owned by uid 4242"), std::string::npos) << s.message();
  ASSERT_EQ(::chown(info.path.c_str(), ::geteuid(), ::getegid()), 0);

  // A folder others may write to: the key could be swapped for theirs.
  for (mode_t mode : {0777u, 0720u, 0702u}) {
    ASSERT_EQ(::chmod((dir / "keys").c_str(), mode), 0);
    s = ring.Load("site-a", &loaded, &key);
    EXPECT_TRUE(s.IsPermission()) << std::oct << mode << " " << s.ToString();
    EXPECT_NE(s.message().find("chmod go-w"), std::string::npos) << s.message();
  }
  ASSERT_EQ(::chmod((dir / "keys").c_str(), 0700), 0);
  EXPECT_TRUE(ring.Load("site-a", &loaded, &key).ok());
}

TEST(KeyFile, MissingOrCorruptKeysGiveClearErrors) {
  TempDir dir;
  Keyring ring = KeyringIn(dir);
  KeyInfo info;
  SecretKey key;
  Status s = ring.Load("nobody", &info, &key);
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_NE(s.message().find("lsictl key create nobody"), std::string::npos) << s.message();

  std::string path = ring.PathFor("bad");
  testing::WriteFileBytes(path, AsBytes("format: lsifs-key-1\nkind: extension\nname: bad\n"
                                        "id: 0000000000000001\nkey: 1234\n"));
  ::chmod(path.c_str(), 0600);
  EXPECT_TRUE(ring.Load("bad", &info, &key).IsCorruption());
  testing::WriteFileBytes(path, AsBytes("hello\n"));
  EXPECT_TRUE(ring.Load("bad", &info, &key).IsCorruption());
}

TEST(ProviderKeyBackup, OpensOnlyWithItsPassphraseAndUnaltered) {
  KeyInfo info;
  info.kind = KeyKind::kProvider;
  info.name = "provider";
  info.id = 0x1234567890abcdefULL;
  SecretKey key = SecretKey::Random();
  ScryptCost cheap;
  cheap.n = 1 << 10;  // the format's cost is stored in it; tests need not pay the default
  std::string backup;
  ASSERT_TRUE(ExportProviderKey(info, key, "correct horse", cheap, &backup).ok());
  EXPECT_EQ(backup.find(HexEncode(key.span())), std::string::npos) << "the key is not in clear";

  KeyInfo got;
  SecretKey got_key;
  ASSERT_TRUE(ImportProviderKey(backup, "correct horse", &got, &got_key).ok());
  EXPECT_EQ(got.id, info.id);
  EXPECT_EQ(got.kind, KeyKind::kProvider);
  EXPECT_TRUE(std::equal(got_key.span().begin(), got_key.span().end(), key.span().begin()));

  EXPECT_TRUE(ImportProviderKey(backup, "wrong horse", &got, &got_key).IsPermission());
  // The id is bound to the sealed key: editing it is a wrong passphrase.
  std::string edited = backup;
  edited.replace(edited.find("1234567890abcdef"), 16, "1234567890abcdee");
  EXPECT_TRUE(ImportProviderKey(edited, "correct horse", &got, &got_key).IsPermission());
  // Not a backup, a newer one, or one asking too much of the machine.
  EXPECT_TRUE(ImportProviderKey("{}", "x", &got, &got_key).IsCorruption());
  EXPECT_TRUE(ImportProviderKey("not json", "x", &got, &got_key).IsCorruption());
  std::string newer = backup;
  newer.replace(newer.find("\"version\":1"), 11, "\"version\":9");
  Status s = ImportProviderKey(newer, "correct horse", &got, &got_key);
  EXPECT_NE(s.message().find("newer"), std::string::npos) << s.message();
  std::string greedy = backup;
  greedy.replace(greedy.find("\"n\":1024"), 8, "\"n\":1099511627776");
  EXPECT_TRUE(ImportProviderKey(greedy, "correct horse", &got, &got_key).IsCorruption());
  // Only a provider key is backed up this way.
  info.kind = KeyKind::kExtension;
  EXPECT_FALSE(ExportProviderKey(info, key, "correct horse", cheap, &backup).ok());
}

}  // namespace
}  // namespace lsifs
