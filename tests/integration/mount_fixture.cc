#include "tests/integration/mount_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/control/control.h"

namespace lsifs::testing {
std::string Capture(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

namespace {

bool IsMountPoint(const std::string& path) {
  std::ifstream in("/proc/self/mounts");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string dev, mp;
    f >> dev >> mp;
    if (mp == path) return true;
  }
  return false;
}

}  // namespace

MountFixture::MountFixture(uint32_t block_size) {
  store_ = MakeStore(dir_, block_size);
  SecretKey provider;
  if (!store_->LoadProviderKey(&provider).ok()) throw std::runtime_error("provider key");
  keys_ = std::make_unique<OriginKeys>(OriginKeys::Derive(provider));
  mountpoint_ = dir_ / "mnt";
  ::mkdir(mountpoint_.c_str(), 0755);
  log_path_ = dir_ / "lsifs.log";
}

MountFixture::~MountFixture() {
  Teardown();
}

std::string MountFixture::bin(const std::string& program) const {
  return std::string(LSIFS_BIN_DIR) + "/" + program;
}

void MountFixture::CreateExtension(const std::string& name) {
  KeyInfo info;
  Status s = store_->keyring().Create(name, &info);
  if (!s.ok()) throw std::runtime_error(s.ToString());
}

void MountFixture::ImportExt4(const std::string& volume, uint64_t bytes) {
  tree_ = dir_ / "tree";
  // A real tree: licenses, apt configuration, headers, and a few
  // generated files of awkward sizes.
  std::string cmd = "mkdir -p " + tree_ + " && cp -r /usr/share/common-licenses /etc/apt " +
                    "/usr/include/openssl /usr/include/boost/asio " + tree_ + "/ 2>/dev/null; " +
                    "head -c 5000001 /dev/urandom > " + tree_ + "/random.bin && " +
                    "head -c 70000 /dev/zero > " + tree_ + "/zeros.bin";
  if (RunShell(cmd) != 0) throw std::runtime_error("building the tree failed");
  image_path_ = dir_ / (volume + ".img");
  // mke2fs wants whole 1 KiB blocks; the image is then cut to `bytes`.
  uint64_t fs_bytes = bytes / 4096 * 4096;
  cmd = "truncate -s " + std::to_string(fs_bytes) + " " + image_path_ +
        " && mke2fs -q -t ext4 -b 4096 -d " + tree_ + " " + image_path_ + " && truncate -s " +
        std::to_string(bytes) + " " + image_path_;
  if (RunShell(cmd) != 0) throw std::runtime_error("mke2fs failed");
  ImportResult r;
  Status s = ImportImage(*store_, *keys_, volume, image_path_, ImportOptions(), &r);
  if (!s.ok()) throw std::runtime_error(s.ToString());
}

std::string MountFixture::Deliver(const std::string& ext, const std::string& volume,
                                  const std::vector<std::vector<uint64_t>>& layers) {
  KeyInfo info;
  SecretKey key;
  Status s = store_->keyring().Load(ext, &info, &key);
  std::vector<SnapshotInfo> snaps;
  if (s.ok()) s = ListSnapshots(*store_, *keys_, volume, &snaps);
  if (!s.ok() || snaps.empty()) throw std::runtime_error("deliver: " + s.ToString());
  LocalOrigin origin(*store_, *keys_);
  std::unique_ptr<OriginSnapshot> base;
  s = origin.OpenSnapshot(volume, snaps.back().id, &base);
  std::unique_ptr<Catalog> catalog;
  if (s.ok()) s = Catalog::Open(*store_, &catalog);
  Manifest m;
  if (s.ok()) s = AssembleLsi(*catalog, *base, info, key, layers, AssembleOptions(), &m);
  // Delivered as a restore without --snapshot would: it becomes VOLUME.img.
  if (s.ok()) s = catalog->Deliver(m.lsi_id, info, key, /*alias=*/true, std::time(nullptr));
  if (!s.ok()) throw std::runtime_error("deliver: " + s.ToString());
  return FormatId(m.lsi_id);
}

std::string MountFixture::Lsictl(const std::string& args, int* rc) const {
  std::string out_path = dir_ / "lsictl.out";
  int r =
      RunShell(bin("lsictl") + " -s " + store_->root() + " " + args + " > " + out_path + " 2>&1");
  if (rc) *rc = r;
  return ReadText(out_path);
}

void MountFixture::Mount(const std::string& ext, const std::string& options) {
  struct stat before;
  ::stat(mountpoint_.c_str(), &before);
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 2);
    ::dup2(fd, 1);
    std::string lsifs = bin("lsifs");
    std::vector<std::string> args = {lsifs, store_->root(), mountpoint_, "-e", ext, "-f"};
    if (!options.empty()) {
      args.push_back("-o");
      args.push_back(options);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(lsifs.c_str(), argv.data());
    ::_exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    if (IsMountPoint(mountpoint_)) {
      // The kernel mount comes before the control socket: a test that asks
      // lsictl right away must find the daemon answering, not lsictl alone
      // against a database the daemon holds.
      for (int j = 0; j < 100; ++j) {
        std::string reply;
        if (ControlCall(store_->control_socket_path(), {"ping"}, &reply, std::chrono::seconds(1))
                .ok()) {
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      return;
    }
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("lsifs exited at start: " + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("lsifs did not mount within 10 s: " + log());
}

int MountFixture::Unmount() {
  if (pid_ < 0) return -1;
  RunShell("fusermount3 -u " + mountpoint_ + " 2>/dev/null || fusermount3 -u -z " + mountpoint_ +
           " 2>/dev/null");
  return WaitExit(10);
}

int MountFixture::WaitExit(double seconds) {
  if (pid_ < 0) return -1;
  int status = 0;
  for (int i = 0; i < static_cast<int>(seconds * 20); ++i) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      // A daemon that died (a sanitizer's report, an abort) says why in its
      // log, which goes with the test's folder: show it now.
      if (rc > 128) std::fprintf(stderr, "lsifs died (%d); its log:\n%s\n", rc, log().c_str());
      return rc;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -2;  // still running: teardown will abort the connection
}

std::string MountFixture::AttachLoop(const std::string& file, bool direct_io) {
  std::string dev =
      Capture(std::string("losetup -r -f --show ") + (direct_io ? "--direct-io=on " : "") + file);
  if (dev.rfind("/dev/loop", 0) != 0) throw std::runtime_error("losetup failed: " + dev);
  loops_.push_back(dev);
  return dev;
}

void MountFixture::DetachLoop(const std::string& device) {
  RunShell("losetup -d " + device + " 2>/dev/null");
  loops_.erase(std::remove(loops_.begin(), loops_.end(), device), loops_.end());
}

std::string MountFixture::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void MountFixture::Teardown() {
  // Order matters (see shared/FUSE.md): inner mounts, loop devices, then the
  // FUSE mount, then the daemon; a hung daemon is aborted through fusectl.
  for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it)
    RunShell("umount " + *it + " 2>/dev/null");
  for (const auto& dev : loops_) RunShell("losetup -d " + dev + " 2>/dev/null");
  loops_.clear();
  if (pid_ > 0) {
    if (Unmount() == -2) {
      struct stat st;
      if (::stat(mountpoint_.c_str(), &st) == 0) {
        RunShell("echo 1 > /sys/fs/fuse/connections/" + std::to_string(minor(st.st_dev)) +
                 "/abort 2>/dev/null");
      }
      RunShell("fusermount3 -u -z " + mountpoint_ + " 2>/dev/null");
      ::kill(pid_, SIGKILL);
      int status;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }
  if (IsMountPoint(mountpoint_)) RunShell("fusermount3 -u -z " + mountpoint_ + " 2>/dev/null");
}

int ReadRange(const std::string& path, uint64_t offset, size_t len, Bytes* out) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return errno;
  out->resize(len);
  size_t done = 0;
  int err = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, out->data() + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      err = errno;
      break;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  out->resize(done);
  return err;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint64_t JsonCounter(const std::string& json, const std::string& key) {
  size_t at = json.find("\"" + key + "\":");
  if (at == std::string::npos) throw std::runtime_error("no " + key + " in " + json);
  return std::stoull(json.substr(at + key.size() + 3));
}

std::vector<uint64_t> JsonNumbers(const std::string& json, const std::string& key) {
  size_t at = json.find("\"" + key + "\":[");
  if (at == std::string::npos) throw std::runtime_error("no " + key + " array in " + json);
  std::vector<uint64_t> out;
  size_t pos = at + key.size() + 4;
  while (pos < json.size() && json[pos] != ']') {
    size_t used = 0;
    out.push_back(std::stoull(json.substr(pos), &used));
    pos += used;
    if (json[pos] == ',') ++pos;
  }
  return out;
}

}  // namespace lsifs::testing
