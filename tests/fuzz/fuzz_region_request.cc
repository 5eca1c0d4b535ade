// Requests to lsid: any bytes a site sends after the TLS handshake go
// through Beast's HTTP parser with the region's limits, then the region's
// request parser, as in core/region/server.cc. Whatever is accepted must
// keep the parser's promises.
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <string>

#include "core/region/protocol.h"
#include "core/util/names.h"

using namespace lsifs;
namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(kMaxRequestHeaderBytes);
  parser.body_limit(kMaxUploadBodyBytes);  // then ParseRegionRequest: per route
  parser.eager(true);
  boost::beast::error_code ec;
  const size_t used = parser.put(boost::asio::buffer(data, size), ec);
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done() || used > size) return 0;
  const auto& req = parser.get();
  auto header = [&](const char* name) -> std::string_view {
    auto it = req.find(name);
    return it == req.end() ? std::string_view()
                           : std::string_view(it->value().data(), it->value().size());
  };
  RegionRequest r;
  Status s = ParseRegionRequest(std::string_view(req.method_string().data(), req.method_string().size()),
                                std::string_view(req.target().data(), req.target().size()),
                                req.body(), header("Lsifs-Class"), header("Range"), &r);
  if (!s.ok()) {
    if (s.message().empty()) std::abort();  // every refusal says why
    return 0;
  }
  if (r.blocks.size() > kMaxBatchBlocks) std::abort();
  if (r.route == RegionRoute::kBlocks && r.blocks.empty()) std::abort();
  if (!r.volume.empty() && !ValidateName("volume", r.volume).ok()) std::abort();
  if (r.range && r.range->last && *r.range->last < r.range->first) std::abort();
  return 0;
}
