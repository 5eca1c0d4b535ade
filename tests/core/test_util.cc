#include "tests/core/test_util.h"

#include "core/origin/import.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>

namespace lsifs::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/lsifs-test.XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  RemoveTree(path_);
}

void RemoveTree(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d != nullptr) {
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      std::string child = path + "/" + n;
      struct stat st;
      if (::lstat(child.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        RemoveTree(child);
      } else {
        ::unlink(child.c_str());
      }
    }
    ::closedir(d);
  }
  ::rmdir(path.c_str());
}

Bytes ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFileBytes(const std::string& path, ByteSpan data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

Bytes PseudoRandom(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes out(n);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t k = 0; k < 8 && i + k < n; ++k) out[i + k] = static_cast<uint8_t>(v >> (8 * k));
  }
  return out;
}

int RunShell(const std::string& command) {
  int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

namespace {
void ListInto(const std::string& root, const std::string& rel, std::vector<std::string>* out) {
  DIR* d = ::opendir((root + rel).c_str());
  if (d == nullptr) return;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string child = rel + "/" + n;
    struct stat st;
    if (::lstat((root + child).c_str(), &st) != 0) continue;
    out->push_back(child + " " + std::to_string(st.st_size) + " " +
                   std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
    if (S_ISDIR(st.st_mode)) ListInto(root, child, out);
  }
  ::closedir(d);
}
}  // namespace

std::vector<std::string> TreeListing(const std::string& root) {
  std::vector<std::string> out;
  ListInto(root, "", &out);
  std::sort(out.begin(), out.end());
  return out;
}

std::unique_ptr<Store> MakeStore(const TempDir& dir, uint32_t block_size) {
  StoreConfig config;
  config.block_size = block_size;
  Status s = Store::Init(dir / "store", &config);
  if (!s.ok()) throw std::runtime_error(s.ToString());
  std::unique_ptr<Store> store;
  s = Store::Open(dir / "store", &store);
  if (!s.ok()) throw std::runtime_error(s.ToString());
  return store;
}

std::unique_ptr<OriginKeys> OriginKeysOf(const Store& store) {
  SecretKey provider;
  Status s = store.LoadProviderKey(&provider);
  if (!s.ok()) throw std::runtime_error(s.ToString());
  return std::make_unique<OriginKeys>(OriginKeys::Derive(provider));
}

StoreTest::StoreTest() {
  store_ = MakeStore(dir_, kBlock);
  keys_ = OriginKeysOf(*store_);
  local_ = std::make_unique<LocalOrigin>(*store_, *keys_);
  origin_ = std::make_unique<CountingOrigin>(*local_);
  Status s = store_->keyring().Create("site-a", &info_);
  if (s.ok()) s = store_->keyring().Load("site-a", &info_, &key_);
  if (s.ok()) s = Catalog::Open(*store_, &catalog_);
  if (!s.ok()) throw std::runtime_error(s.ToString());
}

uint64_t StoreTest::ImportBytes(const std::string& volume, const Bytes& image) {
  std::string path = dir_ / ("image-" + volume);
  WriteFileBytes(path, image);
  ImportResult r;
  Status s = ImportImage(*store_, *keys_, volume, path, ImportOptions(), &r);
  if (!s.ok()) throw std::runtime_error(s.ToString());
  return r.snapshot.id;
}

ExtensionKeys KeysOf(const KeyInfo& info, const SecretKey& key) {
  ExtensionKeys keys;
  keys.info = info;
  keys.key = SecretKey::FromBytes(key.span());
  return keys;
}

}  // namespace lsifs::testing
