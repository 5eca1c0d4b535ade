// Snapshot maps: the facts (header and trailer) and the streamed entries,
// of any bytes.
#include "core/origin/snapshot.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lsifs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& fx = fuzz::TheFixture();
  static fuzz::MemoryFile file;
  file.Set(data, size);
  SnapshotInfo info;
  (void)ReadSnapshotInfo(file.path(), *fx.origin_keys, &info);
  SnapshotMapReader reader;
  if (!reader.Open(file.path(), *fx.origin_keys).ok()) return 0;
  BlockLocation loc;
  while (reader.Next(&loc)) {
  }
  return 0;
}
