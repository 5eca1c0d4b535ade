// Key files and delivery records: text and binary files read with keys.
#include "core/catalog/delivery_record.h"
#include "core/crypto/keyfile.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lsifs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& fx = fuzz::TheFixture();
  static fuzz::MemoryFile file;
  file.Set(data, size);
  KeyInfo info;
  SecretKey key;
  (void)ReadKeyFile(file.path(), &info, &key);
  DeliveryRecord record;
  (void)ReadDeliveryRecord(file.path(), &fx.site_info, &fx.site_key, &record);
  (void)ReadDeliveryRecord(file.path(), nullptr, nullptr, &record);
  return 0;
}
