// A real lsifs mount for tests: a store with a real ext4 image imported,
// the daemon started in the foreground, and teardown that always unmounts,
// detaches loop devices and reaps the daemon, even when a test fails.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "core/assembler/assemble.h"
#include "core/origin/import.h"
#include "core/origin/origin.h"
#include "core/util/hex.h"
#include "tests/core/test_util.h"

namespace lsifs::testing {

class MountFixture {
 public:
  explicit MountFixture(uint32_t block_size = 64 * 1024);
  ~MountFixture();

  // Builds a real ext4 image of size `bytes` from a real directory tree
  // (copied into dir/tree) and imports it as volume `volume`.
  void ImportExt4(const std::string& volume, uint64_t bytes);
  // Creates an extension key.
  void CreateExtension(const std::string& name);
  // An LSI of the latest snapshot of `volume` for `ext` with these layers.
  std::string Deliver(const std::string& ext, const std::string& volume,
                      const std::vector<std::vector<uint64_t>>& layers);

  // Starts lsifs -f; waits until the mount answers. `options` go to -o.
  void Mount(const std::string& ext, const std::string& options = "");
  // Unmounts (fusermount3 -u) and waits for the daemon; returns its exit code.
  int Unmount();
  // Waits up to `seconds` for the daemon to exit by itself; its exit code,
  // 128+signal, or -2 if it is still running.
  int WaitExit(double seconds);
  // Attaches `file` read-only to a loop device; detached in teardown.
  std::string AttachLoop(const std::string& file, bool direct_io = false);
  void DetachLoop(const std::string& device);

  const Store& store() const { return *store_; }
  const OriginKeys& keys() const { return *keys_; }
  const std::string& mountpoint() const { return mountpoint_; }
  const std::string& image_path() const { return image_path_; }
  const std::string& tree() const { return tree_; }
  std::string log() const;  // what the daemon printed
  pid_t daemon_pid() const { return pid_; }
  const TempDir& dir() const { return dir_; }
  std::string bin(const std::string& program) const;
  // Runs lsictl on this store with `args`; its stdout and stderr, and its
  // exit code in `*rc`.
  std::string Lsictl(const std::string& args, int* rc = nullptr) const;
  Bytes image() const { return ReadFileBytes(image_path_); }

 private:
  void Teardown();

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<OriginKeys> keys_;
  std::string mountpoint_;
  std::string image_path_;
  std::string tree_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::vector<std::string> loops_;
  std::vector<std::string> mounts_;  // inner mounts (ext4 on loop)
 public:
  void TrackInnerMount(const std::string& path) { mounts_.push_back(path); }
};

// Reads [offset, offset+len) of `path` with pread; errno on failure.
int ReadRange(const std::string& path, uint64_t offset, size_t len, Bytes* out);
// Reads a whole (control) file.
std::string ReadText(const std::string& path);
// Extracts an unsigned counter from a JSON text by key (first occurrence).
uint64_t JsonCounter(const std::string& json, const std::string& key);
// Extracts an array of unsigned numbers from a JSON text by key.
std::vector<uint64_t> JsonNumbers(const std::string& json, const std::string& key);
// Runs a command and returns its standard output.
std::string Capture(const std::string& command);

}  // namespace lsifs::testing
