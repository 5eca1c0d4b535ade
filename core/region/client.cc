#include "core/region/client.h"

#include <openssl/ssl.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <condition_variable>
#include <random>
#include <set>

#include "core/region/certs.h"
#include "core/region/tls.h"
#include "core/util/encoding.h"
#include "core/util/file.h"
#include "core/util/hex.h"
#include "core/util/numbers.h"

namespace lsifs {

namespace http = boost::beast::http;
using region_internal::TlsConnection;
namespace beast = region_internal::beast;
namespace ssl = region_internal::ssl;

namespace {

// The largest answer taken: a batch of blocks or a layer range, with room.
constexpr uint64_t kMaxAnswerBytes = 64ull << 20;
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);

struct Endpoint {
  std::string host, port;
};

Status ParseUrl(const std::string& url, Endpoint* out) {
  const std::string scheme = "https://";
  const Status bad = Status::InvalidArgument("region '" + url +
                                             "' is not https://HOST:PORT (e.g. "
                                             "https://region.example:8443)");
  if (url.compare(0, scheme.size(), scheme) != 0) return bad;
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || rest.find('/') != std::string::npos) return bad;
  out->host = rest.substr(0, colon);
  if (out->host.size() > 2 && out->host.front() == '[' && out->host.back() == ']') {
    out->host = out->host.substr(1, out->host.size() - 2);
  }
  uint64_t port = 0;
  LSIFS_RETURN_IF_ERROR(
      ParseUnsigned(rest.substr(colon + 1), "the region's port", 1, 65535, &port));
  out->port = std::to_string(port);
  return Status::Ok();
}

// Retried (a request safe to repeat): the region was busy or not reached.
bool Transient(const Status& s, unsigned http_status) {
  return http_status == 429 || http_status == 503 || (http_status == 0 && !s.ok());
}

}  // namespace

struct RegionClient::Impl {
  RegionClientOptions options;
  Endpoint endpoint;
  std::unique_ptr<ssl::context> tls;
  std::string extension;  // the certificate's

  struct Connection {
    explicit Connection(ssl::context& ctx) : tls(ctx) {}
    TlsConnection tls;
    beast::flat_buffer buffer;
  };

  mutable std::mutex mu;
  std::condition_variable stop_cv;
  bool stopped = false;
  std::vector<std::unique_ptr<Connection>> idle;
  std::set<Connection*> busy;
  RegionClientStats stats;
  std::chrono::steady_clock::time_point outage_since;

  Status Connect(std::unique_ptr<Connection>* out) {
    auto c = std::make_unique<Connection>(*tls);
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopped) return Status::Unavailable("stopping");
      busy.insert(c.get());
      ++stats.connections;
    }
    Status s = Handshake(*c);
    if (!s.ok()) {
      Release(std::move(c), false);
      return s;
    }
    *out = std::move(c);
    return Status::Ok();
  }

  Status Handshake(Connection& c) {
    const std::string where = options.url;
    beast::error_code ec = c.tls.Connect(endpoint.host, endpoint.port, options.connect_timeout);
    if (ec) return Status::Unavailable("region " + where + " not reached: " + ec.message());
    if (c.tls.ExpectHost(endpoint.host)) {
      return Status::InvalidArgument("region host '" + endpoint.host + "' is not a valid name");
    }
    ec = c.tls.Handshake(false, options.connect_timeout);
    if (ec) {
      const long verify = SSL_get_verify_result(c.tls.ssl());
      if (verify != X509_V_OK) {
        return Status::Permission(
            "region " + where +
            "'s certificate is refused: " + X509_verify_cert_error_string(verify) +
            " (is --ca the region's CA? does its certificate name " + endpoint.host + "?)");
      }
      // A region that closes the handshake has refused this site's
      // certificate; one that never finishes it is hung.
      const bool refused = ec != beast::error::timeout;
      return Status::Unavailable("TLS with region " + where + " failed: " + ec.message() +
                                 (refused ? " (is this site's certificate revoked, or of "
                                            "another CA?)"
                                          : ""));
    }
    return Status::Ok();
  }

  void Release(std::unique_ptr<Connection> c, bool reusable) {
    std::lock_guard<std::mutex> lock(mu);
    busy.erase(c.get());
    if (reusable && !stopped && idle.size() < options.max_idle_connections) {
      idle.push_back(std::move(c));
    }
  }

  // One try: over an idle connection when there is one (`*reused` says so),
  // else a new one. `*http_status` is 0 when no answer came.
  Status Try(const RegionCall& call, RegionAnswer* answer, bool* reused) {
    std::unique_ptr<Connection> c;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopped) return Status::Unavailable("the site is stopping");
      if (!idle.empty()) {
        c = std::move(idle.back());
        idle.pop_back();
        busy.insert(c.get());
      }
    }
    *reused = c != nullptr;
    if (c == nullptr) LSIFS_RETURN_IF_ERROR(Connect(&c));
    http::request<http::string_body> req{call.method == "POST" ? http::verb::post : http::verb::get,
                                         call.target, 11};
    req.set(http::field::host, endpoint.host);
    req.set(http::field::user_agent, "lsifs");
    req.set("Lsifs-Class", LinkClassName(call.link_class));
    if (!call.range.empty()) req.set(http::field::range, call.range);
    if (call.method == "POST") {
      req.set(http::field::content_type, "application/octet-stream");
      req.body() = call.body;
    }
    req.keep_alive(true);
    req.prepare_payload();
    beast::error_code ec = c->tls.WriteMessage(req, options.request_timeout);
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxAnswerBytes);
    if (!ec) ec = c->tls.ReadMessage(c->buffer, parser, options.request_timeout);
    if (ec) {
      Release(std::move(c), false);
      return Status::Unavailable("region " + options.url + ": " + ec.message());
    }
    auto& res = parser.get();
    answer->status = res.result_int();
    answer->body = std::move(res.body());
    auto cr = res.find(http::field::content_range);
    answer->content_range = cr == res.end() ? "" : std::string(cr->value());
    auto ra = res.find(http::field::retry_after);
    uint64_t retry_after = 0;
    if (ra != res.end() &&
        ParseUnsigned(std::string(ra->value()), "Retry-After", 0, 3600, &retry_after).ok()) {
      answer->retry_after = retry_after;
    }
    Release(std::move(c), res.keep_alive());
    return StatusOfHttp(answer->status, answer->body);
  }

  // Notes whether a call got an answer; logs the start and end of an
  // outage. Returns `status`.
  Status Answered(bool answered, Status status = Status::Ok()) {
    std::string line;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (answered && !stats.reachable) {
        const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::steady_clock::now() - outage_since)
                                 .count();
        line = "region " + options.url + " answers again (unreachable for " +
               std::to_string(seconds) + " s)";
      } else if (!answered && stats.reachable && !stopped) {
        ++stats.outages;
        outage_since = std::chrono::steady_clock::now();
        line = "region " + options.url + " unreachable: " + status.message() +
               " (reads of blocks not held here fail until it answers)";
      }
      if (!stopped) stats.reachable = answered;
    }
    if (!line.empty() && options.log) options.log(line);
    return status;
  }

  // Sleeps `delay` unless stopped; false when stopped.
  bool Backoff(std::chrono::milliseconds delay) {
    std::unique_lock<std::mutex> lock(mu);
    return !stop_cv.wait_for(lock, delay, [&] { return stopped; });
  }
};

RegionClient::RegionClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RegionClient::~RegionClient() {
  Stop();
}

Status RegionClient::Open(RegionClientOptions options, std::unique_ptr<RegionClient>* out) {
  auto impl = std::make_unique<Impl>();
  LSIFS_RETURN_IF_ERROR(ParseUrl(options.url, &impl->endpoint));
  LSIFS_RETURN_IF_ERROR(region_internal::MakeTlsContext(false, options.ca_path, options.cert_path,
                                                        options.key_path, &impl->tls));
  PeerIdentity self;
  Status named = IdentifySite(SSL_CTX_get0_certificate(impl->tls->native_handle()), &self);
  if (!named.ok()) return Status::InvalidArgument(options.cert_path + ": " + named.message());
  impl->extension = self.extension;
  if (options.attempts < 1) options.attempts = 1;
  impl->options = std::move(options);
  out->reset(new RegionClient(std::move(impl)));
  return Status::Ok();
}

Status RegionClient::Call(const RegionCall& call, RegionAnswer* answer) {
  Impl& im = *impl_;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    ++im.stats.requests;
  }
  thread_local std::minstd_rand jitter(std::random_device{}());
  auto delay = im.options.backoff;
  Status s;
  for (int attempt = 1;; ++attempt) {
    *answer = RegionAnswer();
    bool reused = false;
    s = im.Try(call, answer, &reused);
    if (s.ok()) return im.Answered(true);
    // A pooled connection the region closed while idle: once more on a new
    // one, at once (nothing reached the region).
    if (reused && answer->status == 0) {
      s = im.Try(call, answer, &reused);
      if (s.ok()) return im.Answered(true);
    }
    const bool again =
        call.idempotent && Transient(s, answer->status) && attempt < im.options.attempts;
    if (!again) break;
    {
      std::lock_guard<std::mutex> lock(im.mu);
      ++im.stats.retries;
    }
    // Jittered around the backoff; at least what a Retry-After asked.
    const auto wait =
        std::max(std::chrono::milliseconds(
                     delay.count() / 2 +
                     static_cast<int64_t>(jitter() % static_cast<uint64_t>(delay.count() + 1))),
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::min(std::chrono::seconds(answer->retry_after),
                              std::chrono::duration_cast<std::chrono::seconds>(kMaxBackoff))));
    if (!im.Backoff(wait)) {
      s = Status::Unavailable("the site is stopping");
      break;
    }
    delay = std::min(delay * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kMaxBackoff));
  }
  {
    std::lock_guard<std::mutex> lock(im.mu);
    ++im.stats.failures;
  }
  // An answer, even an error, says the region is there.
  (void)im.Answered(answer->status != 0, s);
  return s;
}

void RegionClient::Stop() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->stopped = true;
  impl_->idle.clear();
  for (auto* c : impl_->busy) c->tls.Abort();
  impl_->stop_cv.notify_all();
}

RegionClientStats RegionClient::Stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

const std::string& RegionClient::extension() const {
  return impl_->extension;
}

const std::string& RegionClient::url() const {
  return impl_->options.url;
}

// --- RemoteOrigin ----------------------------------------------------------

namespace {

std::string SnapshotTarget(const std::string& volume, uint64_t id) {
  return "/v1/volumes/" + volume + "/snapshots/" + (id == 0 ? "latest" : FormatId(id));
}

class RemoteSnapshot : public OriginSnapshot {
 public:
  RemoteSnapshot(RegionClient& client, const std::string& extension,
                 const std::vector<SecretKey>& keys, SnapshotInfo info,
                 std::vector<uint64_t> present)
      : client_(client),
        extension_(extension),
        keys_(keys),
        info_(std::move(info)),
        present_(std::move(present)),
        target_(SnapshotTarget(info_.volume, info_.id) + "/blocks") {}

  const SnapshotInfo& info() const override { return info_; }
  const std::vector<uint64_t>& present() const override { return present_; }
  Status Fetch(std::span<const uint64_t> blocks, std::span<uint8_t* const> outs) override {
    return FetchIn(LinkClass::kDemand, blocks, outs);
  }

  Status FetchIn(LinkClass cls, std::span<const uint64_t> blocks,
                 std::span<uint8_t* const> outs) override {
    const size_t bs = info_.block_size, record = bs + kSealOverhead;
    const size_t per_batch =
        std::max<size_t>(1, std::min<size_t>(kMaxBatchBlocks, kMaxBatchBytes / record));
    thread_local Aead aead;
    for (size_t at = 0; at < blocks.size(); at += per_batch) {
      const size_t n = std::min(per_batch, blocks.size() - at);
      RegionCall call;
      call.method = "POST";
      call.target = target_;
      call.link_class = cls;
      const auto part = blocks.subspan(at, n);
      call.body = EncodeBlockList(std::vector<uint64_t>(part.begin(), part.end()));
      RegionAnswer answer;
      LSIFS_RETURN_IF_ERROR(client_.Call(call, &answer));
      if (answer.body.size() != n * record) {
        return Status::Corruption("region sent " + std::to_string(answer.body.size()) +
                                  " bytes for " + std::to_string(n) + " blocks of snapshot " +
                                  FormatId(info_.id) + " of '" + info_.volume + "'");
      }
      for (size_t i = 0; i < n; ++i) {
        const uint64_t block = blocks[at + i];
        const std::string aad = RegionBlockAad(extension_, info_.volume, info_.id, block);
        const ByteSpan sealed(reinterpret_cast<const uint8_t*>(answer.body.data()) + i * record,
                              record);
        Status opened = Status::Permission("no key");
        for (const SecretKey& key : keys_) {
          opened = aead.Open(key, AsBytes(aad), sealed, MutableByteSpan(outs[at + i], bs));
          if (opened.ok()) break;
        }
        if (!opened.ok()) {
          return Status::Corruption("block " + std::to_string(block) + " of snapshot " +
                                    FormatId(info_.id) + " of '" + info_.volume +
                                    "' from the region failed authentication for extension '" +
                                    extension_ + "'");
        }
      }
    }
    return Status::Ok();
  }

 private:
  RegionClient& client_;
  const std::string& extension_;
  const std::vector<SecretKey>& keys_;
  const SnapshotInfo info_;
  const std::vector<uint64_t> present_;
  const std::string target_;
};

Status ReadFacts(const std::string& json, SnapshotInfo* info) {
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  const Status bad = Status::Corruption("the region's snapshot facts are not valid");
  if (ec || !v.is_object()) return bad;
  const auto& o = v.as_object();
  auto str = [&](const char* k) -> std::string {
    const auto* x = o.if_contains(k);
    return x != nullptr && x->is_string() ? std::string(x->as_string()) : "";
  };
  auto num = [&](const char* k, uint64_t* out) {
    const auto* x = o.if_contains(k);
    if (x == nullptr) return false;
    if (x->is_uint64())
      *out = x->as_uint64();
    else if (x->is_int64() && x->as_int64() >= 0)
      *out = static_cast<uint64_t>(x->as_int64());
    else
      return false;
    return true;
  };
  info->volume = str("volume");
  std::optional<uint64_t> id = ParseId(str("id"));
  std::optional<uint64_t> parent = ParseId(str("parent"));
  uint64_t block_size = 0, created = 0;
  if (!id || !num("size", &info->size) || !num("block_size", &block_size) ||
      !num("created_us", &created) || !num("present_blocks", &info->present_blocks) ||
      !IsValidBlockSize(block_size)) {
    return bad;
  }
  info->id = *id;
  info->parent = parent.value_or(0);
  info->block_size = static_cast<uint32_t>(block_size);
  info->created_us = static_cast<int64_t>(created);
  return Status::Ok();
}

}  // namespace

RemoteOrigin::RemoteOrigin(RegionClient& client, const ExtensionKeys& keys, const Store* site)
    : client_(client), site_(site), extension_(keys.info.name) {
  transport_keys_.push_back(RegionTransportKey(keys.key));
  if (keys.has_next) transport_keys_.push_back(RegionTransportKey(keys.next_key));
  facts_key_ = DeriveKey(keys.key, "lsifs site snapshot facts v1");
}

Status RemoteOrigin::OpenFromRegion(const std::string& volume, uint64_t id, SnapshotInfo* info,
                                    std::vector<uint64_t>* present) {
  RegionCall call;
  call.target = SnapshotTarget(volume, id);
  RegionAnswer answer;
  LSIFS_RETURN_IF_ERROR(client_.Call(call, &answer));
  LSIFS_RETURN_IF_ERROR(ReadFacts(answer.body, info));
  if (info->volume != volume || (id != 0 && info->id != id)) {
    return Status::Corruption("the region answered for another snapshot than " +
                              SnapshotTarget(volume, id));
  }
  const std::string facts = answer.body;
  call.target += "/present";
  LSIFS_RETURN_IF_ERROR(client_.Call(call, &answer));
  LSIFS_RETURN_IF_ERROR(DecodeBlockList(answer.body, present));
  if (present->size() != info->present_blocks ||
      !std::is_sorted(present->begin(), present->end()) ||
      (!present->empty() && present->back() >= info->block_count())) {
    return Status::Corruption("the region's present blocks of " + SnapshotTarget(volume, id) +
                              " do not match its facts");
  }
  // A snapshot never changes: its facts are kept once, not at every open.
  if (site_ != nullptr && id != 0 && !PathExists(site_->site_snapshot_path(volume, id))) {
    // Kept: facts (JSON), u32 LE length first; the present blocks; a MAC of
    // both. Not keeping it costs only the offline open.
    std::string kept(4, '\0');
    EncodeFixed32(reinterpret_cast<uint8_t*>(kept.data()), static_cast<uint32_t>(facts.size()));
    kept += facts + answer.body;
    const auto mac = ComputeMac(facts_key_, AsBytes(kept));
    kept.append(reinterpret_cast<const char*>(mac.data()), mac.size());
    (void)::mkdir(site_->volume_dir(volume).c_str(), 0755);
    (void)WriteFileAtomically(site_->tmp_dir(), site_->site_snapshot_path(volume, id),
                              AsBytes(kept), 0644, /*replace=*/true);
  }
  return Status::Ok();
}

Status RemoteOrigin::OpenSnapshot(const std::string& volume, uint64_t id,
                                  std::unique_ptr<OriginSnapshot>* out) {
  SnapshotInfo info;
  std::vector<uint64_t> present;
  Status s = OpenFromRegion(volume, id, &info, &present);
  if (s.code() == Status::Code::kUnavailable && site_ != nullptr && id != 0) {
    // The region is unreachable: what it told before, if it is intact.
    std::string kept;
    if (ReadWholeFile(site_->site_snapshot_path(volume, id), 1ull << 30, &kept).ok() &&
        kept.size() >= 4 + kMacSize) {
      const size_t body = kept.size() - kMacSize;
      const auto mac =
          ComputeMac(facts_key_, ByteSpan(reinterpret_cast<const uint8_t*>(kept.data()), body));
      const uint32_t facts_len = DecodeFixed32(reinterpret_cast<const uint8_t*>(kept.data()));
      if (EqualConstantTime(
              ByteSpan(mac.data(), mac.size()),
              ByteSpan(reinterpret_cast<const uint8_t*>(kept.data()) + body, kMacSize)) &&
          4 + uint64_t{facts_len} <= body && ReadFacts(kept.substr(4, facts_len), &info).ok() &&
          DecodeBlockList(std::string_view(kept).substr(4 + facts_len, body - 4 - facts_len),
                          &present)
              .ok() &&
          info.volume == volume && info.id == id && present.size() == info.present_blocks) {
        s = Status::Ok();
      }
    }
  }
  LSIFS_RETURN_IF_ERROR(s);
  *out = std::make_unique<RemoteSnapshot>(client_, extension_, transport_keys_, std::move(info),
                                          std::move(present));
  return Status::Ok();
}

}  // namespace lsifs
