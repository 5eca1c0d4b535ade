#include "core/region/server.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/beast/http.hpp>
#include <cmath>
#include <list>
#include <thread>

#include "core/region/tls.h"
#include "core/util/file.h"
#include "core/util/json.h"
#include "core/util/listen.h"

namespace lsifs {

namespace http = boost::beast::http;
using region_internal::TlsConnection;
namespace beast = region_internal::beast;
namespace ssl = region_internal::ssl;

void ErrorReply(const Status& status, RegionReply* reply) {
  reply->status = HttpStatusOf(status);
  reply->content_type = "application/json";
  reply->file.clear();
  JsonWriter j;
  j.BeginObject()
      .Field("error", static_cast<int>(status.code()))
      .Field("message", status.message())
      .EndObject();
  reply->body = j.str() + "\n";
}

// --- FairShare -------------------------------------------------------------

bool FairShare::Acquire(const std::string& extension, LinkClass cls) {
  std::unique_lock<std::mutex> lock(mu_);
  Waiter me{extension, cls, next_ticket_++};
  waiting_.push_back(&me);
  GrantLocked();
  cv_.wait(lock, [&] { return me.granted || stopped_; });
  if (!me.granted) {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &me));
    return false;
  }
  return true;
}

void FairShare::Release(const std::string& extension) {
  std::lock_guard<std::mutex> lock(mu_);
  --busy_;
  if (--held_[extension] == 0) held_.erase(extension);
  GrantLocked();
}

void FairShare::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  cv_.notify_all();
}

size_t FairShare::Held(const std::string& extension) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = held_.find(extension);
  return it == held_.end() ? 0 : it->second;
}

void FairShare::GrantLocked() {
  bool granted = false;
  while (busy_ < slots_ && !waiting_.empty() && !stopped_) {
    // The extension holding the fewest slots goes first (max-min fairness);
    // within it, the first link class, then the oldest ticket.
    auto held = [&](const std::string& ext) {
      auto it = held_.find(ext);
      return it == held_.end() ? size_t{0} : it->second;
    };
    auto last = [&](const std::string& ext) {
      auto it = last_grant_.find(ext);
      return it == last_grant_.end() ? uint64_t{0} : it->second;
    };
    auto best = std::min_element(waiting_.begin(), waiting_.end(), [&](Waiter* a, Waiter* b) {
      if (a->extension != b->extension) {
        const size_t ha = held(a->extension), hb = held(b->extension);
        if (ha != hb) return ha < hb;
        const uint64_t la = last(a->extension), lb = last(b->extension);
        if (la != lb) return la < lb;
        return a->extension < b->extension;
      }
      if (a->cls != b->cls) return a->cls < b->cls;
      return a->ticket < b->ticket;
    });
    Waiter* w = *best;
    waiting_.erase(best);
    w->granted = true;
    ++busy_;
    ++held_[w->extension];
    last_grant_[w->extension] = ++grants_;
    granted = true;
  }
  if (granted) cv_.notify_all();
}

// --- RegionServer ----------------------------------------------------------

namespace {

// Requests per second per extension, with a burst.
class RateLimiter {
 public:
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst > 0 ? burst : rate) {}
  // True when the request may go; else `*retry_after` seconds to wait.
  bool Take(const std::string& extension, uint64_t* retry_after) {
    if (rate_ <= 0) return true;
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    auto [it, fresh] = buckets_.try_emplace(extension, Bucket{burst_, now});
    Bucket& b = it->second;
    if (!fresh) {
      const double elapsed = std::chrono::duration<double>(now - b.at).count();
      b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    *retry_after = static_cast<uint64_t>(std::ceil((1 - b.tokens) / rate_));
    if (*retry_after == 0) *retry_after = 1;
    return false;
  }

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  const double rate_, burst_;
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

struct FileIdentity {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

FileIdentity IdentifyFile(const std::string& path) {
  FileIdentity id;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return id;
  id.exists = true;
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.size = st.st_size;
  id.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return id;
}

}  // namespace

struct RegionServer::Impl {
  RegionServerOptions options;
  RegionHandler* service = nullptr;
  std::unique_ptr<ssl::context> tls;
  int listen_fd = -1;
  std::string endpoint;
  int wake[2] = {-1, -1};
  std::thread acceptor;
  std::atomic<bool> stopping{false};
  FairShare share{4};
  std::unique_ptr<RateLimiter> rate;

  // The revocation list in force, reread when its file changes.
  std::mutex crl_mu;
  std::shared_ptr<const RevocationList> revoked;
  FileIdentity crl_file;
  std::chrono::steady_clock::time_point crl_checked;

  struct Connection {
    std::thread thread;
    TlsConnection* tls = nullptr;  // set while the connection runs, under conn_mu
    bool done = false;
  };
  std::mutex conn_mu;
  std::list<Connection> connections;

  mutable std::mutex stats_mu;
  RegionServerStats stats;

  Impl(RegionServerOptions o) : options(std::move(o)), share(options.workers) {}

  void Log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  Status LoadRevocations(bool log_change) {
    const FileIdentity file = IdentifyFile(options.crl_path);
    auto list = std::make_shared<RevocationList>();
    Status s = RevocationList::Load(options.crl_path, options.ca_cert_path, list.get());
    std::lock_guard<std::mutex> lock(crl_mu);
    crl_checked = std::chrono::steady_clock::now();
    if (!s.ok()) {
      // The list in force stays: a damaged file must not lift revocations.
      if (!(file == crl_file)) Log("revocation list not reloaded: " + s.message());
      crl_file = file;
      return s;
    }
    if (log_change && !(file == crl_file)) {
      Log("revocation list reloaded: " + std::to_string(list->size()) + " certificates revoked");
    }
    crl_file = file;
    revoked = std::move(list);
    return Status::Ok();
  }

  bool Revoked(const std::string& serial) {
    std::shared_ptr<const RevocationList> list;
    bool check = false;
    {
      std::lock_guard<std::mutex> lock(crl_mu);
      check = std::chrono::steady_clock::now() - crl_checked > std::chrono::seconds(1);
      list = revoked;
    }
    if (check && !(IdentifyFile(options.crl_path) == crl_file)) {
      (void)LoadRevocations(true);
      std::lock_guard<std::mutex> lock(crl_mu);
      list = revoked;
    } else if (check) {
      std::lock_guard<std::mutex> lock(crl_mu);
      crl_checked = std::chrono::steady_clock::now();
    }
    return list != nullptr && list->Revoked(serial);
  }

  template <typename Fn>
  void Count(Fn fn) {
    std::lock_guard<std::mutex> lock(stats_mu);
    fn(stats);
  }

  void AcceptLoop() {
    for (;;) {
      pollfd p[2] = {{listen_fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
      if (::poll(p, 2, 1000) < 0 && errno != EINTR) break;
      if (stopping) break;
      Reap();
      if (!(p[0].revents & POLLIN)) continue;
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE)
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      std::lock_guard<std::mutex> lock(conn_mu);
      if (connections.size() >= options.max_connections) {
        ::close(fd);
        Count([](RegionServerStats& s) { ++s.refused_busy; });
        continue;
      }
      Count([](RegionServerStats& s) { ++s.connections; });
      connections.emplace_back();
      Connection* c = &connections.back();
      c->thread = std::thread([this, c, fd] { Serve(c, fd); });
    }
  }

  // Joins the threads of connections that have ended.
  void Reap() {
    std::list<Connection> ended;
    {
      std::lock_guard<std::mutex> lock(conn_mu);
      for (auto it = connections.begin(); it != connections.end();) {
        auto next = std::next(it);
        if (it->done) ended.splice(ended.end(), connections, it);
        it = next;
      }
    }
    for (auto& c : ended) c.thread.join();
  }

  void Serve(Connection* c, int fd) {
    {
      TlsConnection conn(*tls);
      beast::error_code ec = conn.Adopt(fd);
      {
        std::lock_guard<std::mutex> lock(conn_mu);
        c->tls = &conn;
      }
      if (!stopping && !ec) ServeConnection(conn);
      std::lock_guard<std::mutex> lock(conn_mu);
      c->tls = nullptr;
    }
    std::lock_guard<std::mutex> lock(conn_mu);
    c->done = true;
    (void)::write(wake[1], "r", 1);  // the acceptor reaps it
  }

  void ServeConnection(TlsConnection& conn) {
    beast::error_code ec = conn.Handshake(true, options.handshake_timeout);
    PeerIdentity peer;
    Status identified;
    if (!ec) {
      X509* cert = SSL_get0_peer_certificate(conn.ssl());
      identified =
          cert == nullptr ? Status::Permission("no client certificate") : IdentifySite(cert, &peer);
    }
    if (ec || !identified.ok()) {
      Count([](RegionServerStats& s) { ++s.handshake_failures; });
      return;
    }
    size_t open_for_extension = 0;
    Count([&](RegionServerStats& s) {
      open_for_extension = ++s.extensions[peer.extension].connections;
    });
    ServeRequests(conn, peer, open_for_extension > options.max_per_extension);
    Count([&](RegionServerStats& s) { --s.extensions[peer.extension].connections; });
    (void)conn.Shutdown(std::chrono::milliseconds(1000));
  }

  void ServeRequests(TlsConnection& conn, const PeerIdentity& peer, bool over_connection_cap) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(kMaxRequestHeaderBytes);
      // The largest any route takes, until the header names the route.
      parser.body_limit(kMaxUploadBodyBytes);
      beast::error_code ec = conn.ReadHeader(buffer, parser, options.idle_timeout);
      if (!ec) {
        const auto& target = parser.get().target();
        const size_t limit = BodyLimitOf(std::string_view(target.data(), target.size()));
        if (region_internal::DeclaredLength(parser.get()) > limit) {
          ec = http::error::body_limit;
        } else {
          parser.body_limit(limit);
          ec = conn.ReadMessage(buffer, parser, options.io_timeout);
        }
      }
      RegionReply reply;
      bool keep_alive = true;
      if (region_internal::PeerLeft(ec) || stopping) {
        return;
      }
      if (ec) {
        Count([](RegionServerStats& s) { ++s.malformed; });
        const bool too_large = ec == http::error::body_limit || ec == http::error::header_limit;
        ErrorReply(Status::InvalidArgument(too_large ? "the request is too large"
                                                     : "the request is not valid HTTP/1.1"),
                   &reply);
        reply.status = ec == http::error::body_limit     ? 413
                       : ec == http::error::header_limit ? 431
                                                         : 400;
        keep_alive = false;
      } else {
        const auto& req = parser.get();
        keep_alive = req.keep_alive();
        Handle(peer, req, over_connection_cap, &reply, &keep_alive);
      }
      if (!WriteReply(conn, reply, keep_alive) || !keep_alive) return;
    }
  }

  void Handle(const PeerIdentity& peer, const http::request<http::string_body>& req,
              bool over_connection_cap, RegionReply* reply, bool* keep_alive) {
    auto refuse = [&](const Status& status, unsigned http_status) {
      ErrorReply(status, reply);
      reply->status = http_status;
      Count([&](RegionServerStats& s) { ++s.extensions[peer.extension].errors; });
    };
    Count([&](RegionServerStats& s) { ++s.extensions[peer.extension].requests; });
    if (Revoked(peer.serial)) {
      Count([](RegionServerStats& s) { ++s.refused_revoked; });
      Log("refused revoked certificate " + peer.serial + " of '" + peer.extension + "'");
      refuse(Status::Permission("the certificate of '" + peer.extension + "' (serial " +
                                peer.serial + ") is revoked: ask the region for a new one"),
             403);
      *keep_alive = false;
      return;
    }
    if (over_connection_cap) {
      Count([](RegionServerStats& s) { ++s.refused_busy; });
      refuse(Status::Unavailable("'" + peer.extension + "' holds more than " +
                                 std::to_string(options.max_per_extension) +
                                 " connections: reuse them"),
             503);
      *keep_alive = false;
      return;
    }
    uint64_t retry_after = 0;
    if (rate && !rate->Take(peer.extension, &retry_after)) {
      Count([&](RegionServerStats& s) { ++s.extensions[peer.extension].rate_limited; });
      refuse(Status::Unavailable("'" + peer.extension + "' is over its request rate; retry in " +
                                 std::to_string(retry_after) + " s"),
             429);
      reply->retry_after = retry_after;
      return;
    }
    RegionRequest request;
    Status parsed =
        ParseRegionRequest(std::string_view(req.method_string().data(), req.method_string().size()),
                           std::string_view(req.target().data(), req.target().size()), req.body(),
                           HeaderOf(req, "Lsifs-Class"), HeaderOf(req, "Range"), &request);
    if (!parsed.ok()) {
      Count([](RegionServerStats& s) { ++s.malformed; });
      refuse(parsed, HttpStatusOf(parsed));
      return;
    }
    if (!share.Acquire(peer.extension, request.link_class)) {
      refuse(Status::Unavailable("the region is stopping"), 503);
      *keep_alive = false;
      return;
    }
    service->Serve(peer, request, reply);
    share.Release(peer.extension);
    Count([&](RegionServerStats& s) {
      auto& e = s.extensions[peer.extension];
      if (reply->status >= 400)
        ++e.errors;
      else
        e.bytes += reply->payload_bytes();
    });
  }

  static std::string_view HeaderOf(const http::request<http::string_body>& req, const char* name) {
    auto it = req.find(name);
    if (it == req.end()) return {};
    return std::string_view(it->value().data(), it->value().size());
  }

  template <typename Response>
  void Decorate(Response& res, const RegionReply& reply, bool keep_alive) {
    res.set(http::field::server, "lsid");
    res.set(http::field::content_type, reply.content_type);
    res.keep_alive(keep_alive);
    if (reply.retry_after > 0) res.set(http::field::retry_after, std::to_string(reply.retry_after));
  }

  bool WriteReply(TlsConnection& conn, RegionReply& reply, bool keep_alive) {
    if (!reply.file.empty() && reply.status < 300) return WriteFileReply(conn, reply, keep_alive);
    http::response<http::string_body> res{static_cast<http::status>(reply.status), 11};
    Decorate(res, reply, keep_alive);
    res.body() = std::move(reply.body);
    res.prepare_payload();
    return !conn.WriteMessage(res, options.io_timeout);
  }

  bool WriteFileReply(TlsConnection& conn, RegionReply& reply, bool keep_alive) {
    const bool partial = reply.status == 206;
    if (!partial) {
      // A whole file streams from disk.
      http::response<http::file_body> res{http::status::ok, 11};
      Decorate(res, reply, keep_alive);
      beast::error_code ec;
      res.body().open(reply.file.c_str(), beast::file_mode::scan, ec);
      if (ec) {
        RegionReply error;
        ErrorReply(Status::IOError("cannot read " + reply.file + ": " + ec.message()), &error);
        return WriteReply(conn, error, false);
      }
      res.set(http::field::accept_ranges, "bytes");
      res.prepare_payload();
      return !conn.WriteMessage(res, options.io_timeout);
    }
    http::response<http::string_body> res{http::status::partial_content, 11};
    Decorate(res, reply, keep_alive);
    std::string& body = res.body();
    body.resize(reply.file_length);
    File file;
    Status s = File::OpenRead(reply.file, &file);
    if (s.ok()) {
      s = file.PreadExact(reply.file_offset,
                          MutableByteSpan(reinterpret_cast<uint8_t*>(body.data()), body.size()));
    }
    if (!s.ok()) {
      RegionReply error;
      ErrorReply(s, &error);
      return WriteReply(conn, error, false);
    }
    res.set(http::field::content_range,
            "bytes " + std::to_string(reply.file_offset) + "-" +
                std::to_string(reply.file_offset + reply.file_length - 1) + "/" +
                std::to_string(reply.file_size));
    res.prepare_payload();
    return !conn.WriteMessage(res, options.io_timeout);
  }

  void Stop() {
    stopping = true;
    share.Stop();
    if (wake[1] >= 0) (void)::write(wake[1], "s", 1);
    if (acceptor.joinable()) acceptor.join();
    {
      std::lock_guard<std::mutex> lock(conn_mu);
      for (auto& c : connections) {
        if (c.tls != nullptr) c.tls->Abort();
      }
    }
    std::list<Connection> all;
    {
      std::lock_guard<std::mutex> lock(conn_mu);
      all.swap(connections);
    }
    for (auto& c : all) c.thread.join();
  }

  ~Impl() {
    for (int fd : {listen_fd, wake[0], wake[1]}) {
      if (fd >= 0) ::close(fd);
    }
  }
};

RegionServer::RegionServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RegionServer::~RegionServer() {
  impl_->Stop();
}

Status RegionServer::Start(RegionServerOptions options, RegionHandler& handler,
                           std::unique_ptr<RegionServer>* out) {
  auto impl = std::make_unique<Impl>(std::move(options));
  impl->service = &handler;
  const RegionServerOptions& o = impl->options;
  LSIFS_RETURN_IF_ERROR(
      region_internal::MakeTlsContext(true, o.ca_cert_path, o.cert_path, o.key_path, &impl->tls));
  LSIFS_RETURN_IF_ERROR(impl->LoadRevocations(false).WithContext("revocation list"));
  if (o.rate_per_extension > 0) {
    impl->rate = std::make_unique<RateLimiter>(o.rate_per_extension, o.rate_burst);
  }
  ListeningSocket listening;
  LSIFS_RETURN_IF_ERROR(ListenTcp(o.listen, "listen address", &listening));
  impl->listen_fd = listening.fd;
  impl->endpoint = listening.endpoint;
  if (::pipe2(impl->wake, O_CLOEXEC | O_NONBLOCK) != 0) return Status::FromErrno("pipe", errno);
  Impl* raw = impl.get();
  impl->acceptor = std::thread([raw] { raw->AcceptLoop(); });
  out->reset(new RegionServer(std::move(impl)));
  return Status::Ok();
}

std::string RegionServer::endpoint() const {
  return impl_->endpoint;
}

RegionServerStats RegionServer::Stats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mu);
  return impl_->stats;
}

Status RegionServer::ReloadRevocations() {
  return impl_->LoadRevocations(true);
}

}  // namespace lsifs
