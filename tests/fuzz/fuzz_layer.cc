// Delta layers: header, wrapped key, sealed index, records, and the keyless
// size check listings use, of any bytes.
#include "core/crypto/aead.h"
#include "core/lsi/layer.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lsifs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& fx = fuzz::TheFixture();
  static fuzz::MemoryFile file;
  file.Set(data, size);
  (void)CheckLayerFile(file.path(), 19, 4096);
  std::unique_ptr<LayerReader> layer;
  if (!LayerReader::Open(file.path(), fx.site_info, fx.site_key, &layer).ok()) return 0;
  Bytes record(layer->record_size()), plain(layer->header().block_size);
  Aead aead;
  for (size_t slot = 0; slot < layer->blocks().size() && slot < 64; ++slot) {
    (void)layer->ReadBlock(slot, layer->blocks()[slot], aead, record, plain);
  }
  return 0;
}
