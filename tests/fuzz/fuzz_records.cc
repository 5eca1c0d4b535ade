// Sealed block records (snapshot data files, layers, spills) and the
// access database's records: opening or decoding any bytes never crashes.
#include <array>

#include "core/access/coaccess.h"
#include "core/crypto/aead.h"
#include "core/origin/snapshot.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lsifs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& fx = fuzz::TheFixture();
  ByteSpan in(data, size);
  std::array<uint8_t, 128> aad;
  size_t aad_size = OriginBlockAad("disk", 1, 2, &aad);
  if (size >= kSealOverhead) {
    Bytes plain(size - kSealOverhead);
    Aead aead;
    (void)aead.Open(fx.origin_keys->block, ByteSpan(aad.data(), aad_size), in, plain);
  }
  CoAccessParams params;
  (void)CoAccessParams::Decode(in, &params);
  BlockStats stats;
  (void)BlockStats::Decode(in, &stats);
  ModelMeta meta;
  (void)ModelMeta::Decode(in, &meta);
  return 0;
}
