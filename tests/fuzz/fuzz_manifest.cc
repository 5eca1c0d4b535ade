// Manifests: the authenticated read (head, then block lists) and the
// unauthenticated peeks listings use, of any bytes.
#include "core/lsi/manifest.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lsifs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& fx = fuzz::TheFixture();
  static fuzz::MemoryFile file;
  file.Set(data, size);
  Manifest m;
  (void)ReadManifest(file.path(), fx.site_info, fx.site_key, &m);
  (void)PeekManifest(file.path(), &m, ManifestPart::kHead);
  (void)PeekManifest(file.path(), &m, ManifestPart::kWhole);
  return 0;
}
