#include "core/metrics/http_server.h"

#include <unistd.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <thread>

#include "core/util/listen.h"

namespace lsifs {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// One request and its answer; a slow or silent client is cut off.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(tcp::socket socket, const std::function<std::string()>& render)
      : stream_(std::move(socket)), render_(render) {}

  void Start() {
    stream_.expires_after(std::chrono::seconds(5));
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (!ec) self->Answer();
                     });
  }

 private:
  void Answer() {
    response_.version(request_.version());
    response_.keep_alive(false);
    response_.set(http::field::server, "lsifs");
    const bool get = request_.method() == http::verb::get || request_.method() == http::verb::head;
    if (!get) {
      response_.result(http::status::method_not_allowed);
      response_.set(http::field::allow, "GET, HEAD");
      response_.set(http::field::content_type, "text/plain; charset=utf-8");
      response_.body() = "only GET /metrics is served here\n";
    } else if (request_.target() != "/metrics") {
      response_.result(http::status::not_found);
      response_.set(http::field::content_type, "text/plain; charset=utf-8");
      response_.body() = "lsifs serves its metrics at /metrics\n";
    } else {
      response_.result(http::status::ok);
      response_.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response_.body() = render_();
    }
    response_.prepare_payload();
    if (request_.method() == http::verb::head) response_.body().clear();
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  const std::function<std::string()>& render_;
  beast::flat_buffer buffer_{8192};
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

struct MetricsServer::Impl {
  // Bound in Listen (before a daemon forks); the io_context and everything
  // on it are made in Serve, after: an epoll set must not cross a fork.
  int fd = -1;
  bool ipv6 = false;
  std::string endpoint;
  std::unique_ptr<net::io_context> io;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<net::steady_timer> pause;
  std::function<std::string()> render;
  std::thread thread;

  ~Impl() {
    if (fd >= 0) ::close(fd);
  }

  void Accept() {
    acceptor->async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors, say: try again a little later, not at once.
        pause->expires_after(std::chrono::milliseconds(200));
        pause->async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec) Accept();
        });
        return;
      }
      std::make_shared<Exchange>(std::move(socket), render)->Start();
      Accept();
    });
  }
};

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  if (impl_->io) impl_->io->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Status MetricsServer::Serve(std::function<std::string()> render) {
  if (impl_->io) return Status::InvalidArgument("already serving");
  impl_->render = std::move(render);
  impl_->io = std::make_unique<net::io_context>(1);
  impl_->acceptor = std::make_unique<tcp::acceptor>(*impl_->io);
  impl_->pause = std::make_unique<net::steady_timer>(*impl_->io);
  beast::error_code ec;
  impl_->acceptor->assign(impl_->ipv6 ? tcp::v6() : tcp::v4(), impl_->fd, ec);
  if (ec) return Status::IOError("serving metrics on " + endpoint() + ": " + ec.message());
  impl_->fd = -1;  // the acceptor owns it now
  impl_->Accept();
  Impl* raw = impl_.get();
  impl_->thread = std::thread([raw] { raw->io->run(); });
  return Status::Ok();
}

Status MetricsServer::Listen(const std::string& address, std::unique_ptr<MetricsServer>* out) {
  auto impl = std::make_unique<Impl>();
  ListeningSocket listening;
  LSIFS_RETURN_IF_ERROR(ListenTcp(address, "metrics address", &listening));
  impl->fd = listening.fd;
  impl->ipv6 = listening.ipv6;
  impl->endpoint = listening.endpoint;
  out->reset(new MetricsServer(std::move(impl)));
  return Status::Ok();
}

std::string MetricsServer::endpoint() const {
  return impl_->endpoint;
}

}  // namespace lsifs
