// Per-block encryption throughput: AES-256-GCM seal and open of one block at
// a time, as import, the PSA and the read path do it, on one core.
// Prints a table and, with --json FILE, writes the figures.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/crypto/aead.h"
#include "core/util/json.h"

using namespace lsifs;

namespace {

double Measure(double seconds, size_t block, bool seal) {
  Aead aead;
  SecretKey key = SecretKey::Random();
  Bytes plain(block, 0x5a), record(block + kSealOverhead), out(block);
  uint8_t aad[64] = {};
  (void)aead.Seal(key, ByteSpan(aad, sizeof aad), plain, record);
  uint64_t bytes = 0;
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 64; ++i) {
      Status s = seal ? aead.Seal(key, ByteSpan(aad, sizeof aad), plain, record)
                      : aead.Open(key, ByteSpan(aad, sizeof aad), record, out);
      if (!s.ok()) {
        std::fprintf(stderr, "crypto_bench: %s\n", s.message().c_str());
        std::exit(1);
      }
      bytes += block;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(bytes) / secs / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::stod(argv[++i]);
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: crypto_bench [--seconds S] [--json FILE]\n");
      return 2;
    }
  }
  JsonWriter j;
  j.BeginObject().Field("benchmark", "per_block_aes_256_gcm").Key("results").BeginArray();
  std::printf("%-8s %-6s %12s\n", "BLOCK", "OP", "MB/s (1 core)");
  for (size_t block : {4096u, 65536u, 1048576u}) {
    for (bool seal : {true, false}) {
      double mbps = Measure(seconds, block, seal);
      std::printf("%-8zu %-6s %12.0f\n", block, seal ? "seal" : "open", mbps);
      j.BeginObject()
          .Field("block_size", static_cast<uint64_t>(block))
          .Field("op", seal ? "seal" : "open")
          .Field("mb_per_s", mbps)
          .EndObject();
    }
  }
  j.EndArray().EndObject();
  if (!json_path.empty()) {
    FILE* f = std::fopen(json_path.c_str(), "w");
    if (f == nullptr) {
      std::perror(json_path.c_str());
      return 1;
    }
    std::fprintf(f, "%s\n", j.str().c_str());
    std::fclose(f);
  }
  return 0;
}
