// The region's client (a site's side of lsid): HTTPS over mutually
// authenticated TLS 1.3 with the site's certificate, reused connections,
// deadlines on every step, and retries with backoff for requests that are
// safe to repeat. RemoteOrigin puts the origin interface (origin.h) on it:
// base blocks arrive sealed for the site's extension and are opened with
// nothing but its own key, so the read path and the assembler use a region
// exactly as they use the in-process origin.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/crypto/keyfile.h"
#include "core/origin/origin.h"
#include "core/region/protocol.h"
#include "core/store/store.h"
#include "core/util/status.h"

namespace lsifs {

struct RegionClientOptions {
  std::string url;  // https://HOST:PORT
  std::string ca_path, cert_path, key_path;
  std::chrono::milliseconds connect_timeout{5000};
  // How long one request may go without a byte moving: a silent or hung
  // region fails it; a large answer on a slow link goes on while bytes come,
  // at region_internal::kMinBytesPerSecond at least (a dripping one fails).
  std::chrono::milliseconds request_timeout{30000};
  // Tries of a request that is safe to repeat (GET, block batches): the
  // first, then retries after backoff, backoff x 2, ... (capped at 5 s,
  // jittered; at least what a Retry-After asks), on a dropped connection, a
  // timeout, 429 or 503.
  int attempts = 4;
  std::chrono::milliseconds backoff{100};
  size_t max_idle_connections = 16;
  // Told once when the region stops answering (a call failed after every
  // try) and once when it answers again: one line per outage.
  std::function<void(const std::string&)> log;
};

struct RegionClientStats {
  uint64_t requests = 0;
  uint64_t retries = 0;
  uint64_t failures = 0;     // requests that failed after every try
  uint64_t connections = 0;  // TLS connections made
  uint64_t outages = 0;      // times the region stopped answering
  bool reachable = true;     // the last call got an answer
};

struct RegionCall {
  std::string method = "GET";
  std::string target;  // "/v1/..."
  std::string body;
  LinkClass link_class = LinkClass::kDemand;
  std::string range;  // "bytes=A-B", or empty
  bool idempotent = true;
};

struct RegionAnswer {
  unsigned status = 0;
  std::string body;
  std::string content_range;
  uint64_t retry_after = 0;  // seconds the region asked to wait (429, 503)
};

class RegionClient {
 public:
  // Checks the options and loads the TLS material (the key must be 0600);
  // connects at the first call.
  static Status Open(RegionClientOptions options, std::unique_ptr<RegionClient>* out);
  ~RegionClient();

  // One request. Ok with the answer for 2xx; otherwise the region's error
  // as a Status (region/protocol.h StatusOfHttp), Unavailable when it could
  // not be reached.
  Status Call(const RegionCall& call, RegionAnswer* answer);
  // Fails every call in flight and later (the site is stopping).
  void Stop();

  RegionClientStats Stats() const;
  const std::string& url() const;
  // The extension the certificate names: what the region serves this
  // client as, whatever else it is told.
  const std::string& extension() const;

 private:
  struct Impl;
  explicit RegionClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The origin interface on a region. `client` and `keys` (the site's
// extension keys) must outlive it and its snapshots. With `site` (the
// site's replica of the store), each snapshot's facts and present blocks
// are kept there (authenticated with a key derived from the extension key)
// when first told, so that its images open while the region is
// unreachable: what the site holds is read, what it does not fails.
class RemoteOrigin : public Origin {
 public:
  RemoteOrigin(RegionClient& client, const ExtensionKeys& keys, const Store* site = nullptr);
  Status OpenSnapshot(const std::string& volume, uint64_t id,
                      std::unique_ptr<OriginSnapshot>* out) override;

 private:
  Status OpenFromRegion(const std::string& volume, uint64_t id, SnapshotInfo* info,
                        std::vector<uint64_t>* present);

  RegionClient& client_;
  const Store* site_;
  std::string extension_;
  std::vector<SecretKey> transport_keys_;  // the key's, then a rotation's next key's
  SecretKey facts_key_;                    // authenticates what is kept at the site
};

}  // namespace lsifs
