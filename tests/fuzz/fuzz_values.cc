// Option and size values, ids and control-socket fields: every parser of a
// value a user or a client sends.
#include <chrono>
#include <string>

#include "core/access/coaccess.h"
#include "core/origin/link.h"
#include "core/store/store.h"
#include "core/util/hex.h"
#include "core/util/numbers.h"

using namespace lsifs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  uint64_t n = 0;
  uint32_t block_size = 0;
  double share = 0;
  std::chrono::microseconds latency;
  (void)ParseByteSize(text, &n);
  (void)ParseBlockSize(text, &block_size);
  (void)ParseUnsigned(text, "n", 0, UINT64_MAX, &n);
  (void)ParseUnsigned(text, "n", 2, 1024, &n);
  (void)ParseLatency(text, &latency);
  (void)ParseBandwidth(text, &n);
  (void)ParseShare(text, &share);
  (void)ParseId(text);
  (void)HexDecode(text);
  for (const char* key :
       {"half_life", "successor_window", "successor_top_k", "max_stat_blocks", "keep_sessions"}) {
    CoAccessSettings settings;
    Status s;
    (void)settings.Parse(key, text, &s);
  }
  return 0;
}
