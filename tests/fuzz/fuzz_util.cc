#include "tests/fuzz/fuzz_util.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace lsifs::fuzz {

MemoryFile::MemoryFile() {
  fd_ = ::memfd_create("lsifs-fuzz", MFD_CLOEXEC);
  if (fd_ < 0) std::abort();
  ::fchmod(fd_, 0600);  // key files are refused when others may read them
  path_ = "/proc/self/fd/" + std::to_string(fd_);
}

MemoryFile::~MemoryFile() {
  ::close(fd_);
}

void MemoryFile::Set(const uint8_t* data, size_t size) {
  if (::ftruncate(fd_, 0) != 0) std::abort();
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
}

const Fixture& TheFixture() {
  static const Fixture* fixture = [] {
    char dir[] = "/tmp/lsifs-fuzz.XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    std::string cmd = std::string("tar -C ") + dir +
                      " -xzf " LSIFS_SOURCE_DIR "/tests/data/store-format1.tar.gz store";
    if (std::system(cmd.c_str()) != 0) std::abort();
    auto* f = new Fixture();
    if (!Store::Open(std::string(dir) + "/store", &f->store).ok()) std::abort();
    if (!f->store->keyring().Load("site", &f->site_info, &f->site_key).ok()) std::abort();
    SecretKey provider;
    if (!f->store->LoadProviderKey(&provider).ok()) std::abort();
    f->origin_keys = std::make_unique<OriginKeys>(OriginKeys::Derive(provider));
    return f;
  }();
  return *fixture;
}

}  // namespace lsifs::fuzz
