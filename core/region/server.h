// lsid's transport: HTTPS over TLS 1.3 only, with mutual authentication
// (a client certificate of the store's CA, not revoked, naming an
// extension: region/certs.h), on Boost.Beast and OpenSSL. It reads and
// validates requests (region/protocol.h), keeps each extension within its
// limits, and hands what passes to a RegionHandler (region/region.h) for
// the extension the certificate names.
//
// One thread per connection (at most max_connections, max_per_extension of
// them for one extension), keep-alive, every read and write bounded by a
// timeout. Handling is shared fairly: at most `workers` requests are
// handled at once, and when more wait, the next slot goes to the waiting
// extension holding the fewest slots, and within it to the first class on
// the link (demand before assemblies). An extension over its request rate
// is told 429 with Retry-After. The revocation list is reread when its file
// changes, and checked at every request, so a revoked site is cut off
// without a restart, also on a connection it already holds.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/origin/link.h"
#include "core/region/certs.h"
#include "core/region/protocol.h"
#include "core/util/status.h"

namespace lsifs {

// A request's answer: a body in memory, or a range of a file.
struct RegionReply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string file;  // when set, the body is bytes [file_offset, +file_length) of it
  uint64_t file_offset = 0;
  uint64_t file_length = 0;
  uint64_t file_size = 0;    // for Content-Range when the reply is partial (206)
  uint64_t retry_after = 0;  // seconds, for a 429 or 503
  // Counted as the extension's bytes served.
  uint64_t payload_bytes() const { return file.empty() ? body.size() : file_length; }
};

// Sets `reply` to the error `status` (JSON {"error", "message"}).
void ErrorReply(const Status& status, RegionReply* reply);

class RegionHandler {
 public:
  virtual ~RegionHandler() = default;
  // Serves `request` for `peer`'s extension. Runs on a connection's thread;
  // must be thread-safe.
  virtual void Serve(const PeerIdentity& peer, const RegionRequest& request,
                     RegionReply* reply) = 0;
};

// The slots requests are handled in, shared between extensions: a free
// slot goes to the waiting extension holding the fewest, then to the one
// served least recently (so two extensions alternate however many requests
// one of them queues); within an extension, by link class, then in order.
class FairShare {
 public:
  explicit FairShare(size_t slots) : slots_(slots == 0 ? 1 : slots) {}
  // Waits for a slot; false when stopped.
  bool Acquire(const std::string& extension, LinkClass cls);
  void Release(const std::string& extension);
  void Stop();
  // Slots held by `extension` now.
  size_t Held(const std::string& extension) const;

 private:
  struct Waiter {
    std::string extension;
    LinkClass cls;
    uint64_t ticket;
    bool granted = false;
  };
  void GrantLocked();

  const size_t slots_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t busy_ = 0;
  uint64_t next_ticket_ = 0;
  bool stopped_ = false;
  uint64_t grants_ = 0;
  std::map<std::string, size_t> held_;
  std::map<std::string, uint64_t> last_grant_;  // the grant number of each one's latest
  std::vector<Waiter*> waiting_;
};

struct RegionServerOptions {
  std::string listen;  // ADDR:PORT ("0.0.0.0:8443", "[::]:8443"; port 0 picks one)
  std::string ca_cert_path, cert_path, key_path, crl_path;
  size_t max_connections = 256;
  size_t max_per_extension = 32;
  size_t workers = 4;             // requests handled at once
  double rate_per_extension = 0;  // requests per second, 0: no limit
  double rate_burst = 0;          // 0: one second's worth
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  // How long reading a request or writing a reply may go without a byte
  // moving (a large reply on a slow link goes on while bytes move, at
  // region_internal::kMinBytesPerSecond at least: a client dripping bytes
  // holds no connection thread for long).
  std::chrono::milliseconds io_timeout{30000};
  std::function<void(const std::string&)> log;
};

struct RegionExtensionStats {
  uint64_t requests = 0;
  uint64_t errors = 0;        // answered with a 4xx or 5xx
  uint64_t rate_limited = 0;  // answered 429
  uint64_t bytes = 0;         // payload served
  uint64_t connections = 0;   // open now
};

struct RegionServerStats {
  uint64_t connections = 0;         // accepted since start
  uint64_t handshake_failures = 0;  // no valid certificate, not TLS 1.3, timeouts
  uint64_t refused_revoked = 0;     // requests and handshakes of revoked certificates
  uint64_t refused_busy = 0;        // over max_connections or max_per_extension
  uint64_t malformed = 0;           // requests that could not be read or parsed
  std::map<std::string, RegionExtensionStats> extensions;
};

class RegionServer {
 public:
  // Loads the certificates, binds and starts serving at once.
  static Status Start(RegionServerOptions options, RegionHandler& handler,
                      std::unique_ptr<RegionServer>* out);
  ~RegionServer();  // stops: closes every connection and joins its thread
  RegionServer(const RegionServer&) = delete;
  RegionServer& operator=(const RegionServer&) = delete;

  std::string endpoint() const;  // ADDR:PORT bound
  RegionServerStats Stats() const;
  // Rereads the revocation list now (it is also reread when it changes).
  Status ReloadRevocations();

 private:
  struct Impl;
  explicit RegionServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lsifs
