#include "core/region/protocol.h"

#include <boost/json.hpp>
#include <charconv>
#include <cstring>

#include "core/assembler/assemble.h"
#include "core/util/encoding.h"
#include "core/util/hex.h"
#include "core/util/json.h"
#include "core/util/names.h"

namespace lsifs {
namespace {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 1;  // past the leading '/'
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

Status ParseIdPart(std::string_view text, const char* what, uint64_t* out) {
  std::optional<uint64_t> id = ParseId(text);
  if (!id) {
    return Status::InvalidArgument(std::string(what) + " id '" + std::string(text.substr(0, 32)) +
                                   "' is not 16 hex digits");
  }
  *out = *id;
  return Status::Ok();
}

Status ParseSnapshotPart(std::string_view text, uint64_t* out) {
  if (text == "latest") {
    *out = 0;
    return Status::Ok();
  }
  return ParseIdPart(text, "snapshot", out);
}

Status ParseLinkClass(std::string_view text, LinkClass* out) {
  if (text.empty()) {
    *out = LinkClass::kDemand;
    return Status::Ok();
  }
  for (size_t i = 0; i < kLinkClasses; ++i) {
    if (text == LinkClassName(static_cast<LinkClass>(i))) {
      *out = static_cast<LinkClass>(i);
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("Lsifs-Class '" + std::string(text.substr(0, 32)) +
                                 "' is not a link class (demand, expansion, layer-pull, high, "
                                 "normal, low, hydration)");
}

bool ParseDecimal(std::string_view text, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

Status ParseRange(std::string_view text, std::optional<ByteRange>* out) {
  out->reset();
  if (text.empty()) return Status::Ok();
  constexpr std::string_view kUnit = "bytes=";
  const Status bad = Status::InvalidArgument("Range '" + std::string(text.substr(0, 64)) +
                                             "' is not one range bytes=FIRST-[LAST]");
  if (text.substr(0, kUnit.size()) != kUnit) return bad;
  text.remove_prefix(kUnit.size());
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) return bad;
  ByteRange range;
  if (!ParseDecimal(text.substr(0, dash), &range.first)) return bad;
  std::string_view last = text.substr(dash + 1);
  if (!last.empty()) {
    uint64_t l = 0;
    if (!ParseDecimal(last, &l) || l < range.first) return bad;
    range.last = l;
  }
  *out = range;
  return Status::Ok();
}

// A JSON object body, or an empty one.
Status ParseObject(std::string_view body, boost::json::object* out) {
  if (body.empty()) {
    out->clear();
    return Status::Ok();
  }
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return Status::InvalidArgument("the body is not a JSON object");
  *out = std::move(v.as_object());
  return Status::Ok();
}

Status StringField(const boost::json::object& o, const char* key, bool required, std::string* out) {
  const boost::json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) return Status::InvalidArgument(std::string("the body has no \"") + key + "\"");
    return Status::Ok();
  }
  if (!v->is_string())
    return Status::InvalidArgument(std::string("\"") + key + "\" is not a string");
  *out = std::string(v->as_string());
  return Status::Ok();
}

bool NumberOf(const boost::json::value& v, uint64_t* out) {
  if (v.is_uint64()) {
    *out = v.as_uint64();
  } else if (v.is_int64() && v.as_int64() >= 0) {
    *out = static_cast<uint64_t>(v.as_int64());
  } else {
    return false;
  }
  return true;
}

Status ParseRestoreBody(std::string_view body, RegionRequest* r) {
  boost::json::object o;
  LSIFS_RETURN_IF_ERROR(ParseObject(body, &o));
  LSIFS_RETURN_IF_ERROR(StringField(o, "volume", true, &r->volume));
  LSIFS_RETURN_IF_ERROR(ValidateName("volume", r->volume));
  std::string snapshot;
  LSIFS_RETURN_IF_ERROR(StringField(o, "snapshot", false, &snapshot));
  if (!snapshot.empty()) LSIFS_RETURN_IF_ERROR(ParseSnapshotPart(snapshot, &r->snapshot));
  if (r->route == RegionRoute::kRestore) return Status::Ok();
  LSIFS_RETURN_IF_ERROR(StringField(o, "strategy", false, &r->strategy));
  if (!r->strategy.empty()) LSIFS_RETURN_IF_ERROR(ValidateName("strategy", r->strategy));
  LSIFS_RETURN_IF_ERROR(StringField(o, "priority", false, &r->priority));
  Priority priority;
  LSIFS_RETURN_IF_ERROR(ParsePriority(r->priority, &priority));
  if (const boost::json::value* b = o.if_contains("budget");
      b != nullptr && !b->is_null() && !NumberOf(*b, &r->budget)) {
    return Status::InvalidArgument("\"budget\" is not a number of bytes");
  }
  if (const boost::json::value* e = o.if_contains("explain"); e != nullptr && !e->is_null()) {
    if (!e->is_bool()) return Status::InvalidArgument("\"explain\" is not true or false");
    r->explain = e->as_bool();
  }
  return Status::Ok();
}

Status ParseUploadBody(std::string_view body, RegionRequest* r) {
  boost::json::object o;
  LSIFS_RETURN_IF_ERROR(ParseObject(body, &o));
  LSIFS_RETURN_IF_ERROR(StringField(o, "key", true, &r->upload_key));
  if (r->upload_key.empty() || r->upload_key.size() > 128 ||
      r->upload_key.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                      "0123456789._:-") != std::string::npos) {
    return Status::InvalidArgument("\"key\" is 1 to 128 characters of [A-Za-z0-9._:-]");
  }
  LSIFS_RETURN_IF_ERROR(StringField(o, "volume", true, &r->volume));
  LSIFS_RETURN_IF_ERROR(ValidateName("volume", r->volume));
  std::string lsi, snapshot;
  LSIFS_RETURN_IF_ERROR(StringField(o, "lsi", true, &lsi));
  LSIFS_RETURN_IF_ERROR(ParseIdPart(lsi, "LSI", &r->lsi));
  LSIFS_RETURN_IF_ERROR(StringField(o, "snapshot", true, &snapshot));
  LSIFS_RETURN_IF_ERROR(ParseIdPart(snapshot, "snapshot", &r->snapshot));
  for (auto [key, field] : {std::pair{"reads", &r->reads}, std::pair{"dropped", &r->dropped}}) {
    const boost::json::value* v = o.if_contains(key);
    if (v == nullptr || !NumberOf(*v, field)) {
      return Status::InvalidArgument(std::string("\"") + key + "\" is not a count");
    }
  }
  const boost::json::value* events = o.if_contains("events");
  if (events == nullptr || !events->is_array()) {
    return Status::InvalidArgument("\"events\" is not an array of [block, t_us]");
  }
  const auto& list = events->as_array();
  if (list.size() > kMaxUploadEvents) {
    return Status::InvalidArgument("a session upload holds at most " +
                                   std::to_string(kMaxUploadEvents) + " events");
  }
  r->events.reserve(list.size());
  for (const auto& e : list) {
    uint64_t block = 0, t_us = 0;
    if (!e.is_array() || e.as_array().size() != 2 || !NumberOf(e.as_array()[0], &block) ||
        !NumberOf(e.as_array()[1], &t_us)) {
      return Status::InvalidArgument("\"events\" is not an array of [block, t_us]");
    }
    r->events.emplace_back(block, t_us);
  }
  return Status::Ok();
}

}  // namespace

size_t BodyLimitOf(std::string_view target) {
  return target == "/v1/sessions" ? kMaxUploadBodyBytes : kMaxRequestBodyBytes;
}

const char* RegionRouteName(RegionRoute route) {
  switch (route) {
    case RegionRoute::kStore:
      return "store";
    case RegionRoute::kDeliveries:
      return "deliveries";
    case RegionRoute::kVolumes:
      return "volumes";
    case RegionRoute::kSnapshot:
      return "snapshot";
    case RegionRoute::kPresent:
      return "present";
    case RegionRoute::kBlocks:
      return "blocks";
    case RegionRoute::kRestore:
      return "restore";
    case RegionRoute::kPreassemble:
      return "preassemble";
    case RegionRoute::kAssemblies:
      return "assemblies";
    case RegionRoute::kAssemblyCancel:
      return "assembly-cancel";
    case RegionRoute::kLsis:
      return "lsis";
    case RegionRoute::kLsi:
      return "lsi";
    case RegionRoute::kManifest:
      return "manifest";
    case RegionRoute::kLayer:
      return "layer";
    case RegionRoute::kSuccessors:
      return "successors";
    case RegionRoute::kUpload:
      return "upload";
  }
  return "?";
}

Status ParseRegionRequest(std::string_view method, std::string_view target, std::string_view body,
                          std::string_view link_class, std::string_view range, RegionRequest* out) {
  *out = RegionRequest();
  if (body.size() > BodyLimitOf(target)) {
    return Status::InvalidArgument("the body is larger than " +
                                   std::to_string(BodyLimitOf(target)) + " bytes");
  }
  if (target.size() > 256 || target.substr(0, 4) != "/v1/" ||
      target.find_first_of("?#%") != std::string_view::npos) {
    return Status::NotFound("no such resource (lsid serves /v1/...; see lsid(8))");
  }
  const bool get = method == "GET", post = method == "POST";
  if (!get && !post)
    return Status::InvalidArgument("method " + std::string(method.substr(0, 16)) +
                                   " is not served");
  LSIFS_RETURN_IF_ERROR(ParseLinkClass(link_class, &out->link_class));
  const std::vector<std::string_view> p = SplitPath(target);  // p[0] == "v1"
  const size_t n = p.size();
  const Status none = Status::NotFound("no such resource: " + std::string(target));
  auto expect = [&](bool want_get, RegionRoute route) -> Status {
    if (want_get != get) {
      return Status::InvalidArgument(std::string(RegionRouteName(route)) + " takes " +
                                     (want_get ? "GET" : "POST"));
    }
    if (want_get && !body.empty()) {
      return Status::InvalidArgument(std::string(RegionRouteName(route)) + " takes no body");
    }
    out->route = route;
    return Status::Ok();
  };
  if (n < 2) return none;
  const std::string_view what = p[1];
  if (what == "store" && n == 2) return expect(true, RegionRoute::kStore);
  if (what == "deliveries" && n == 2) return expect(true, RegionRoute::kDeliveries);
  if (what == "volumes") {
    if (n == 2) return expect(true, RegionRoute::kVolumes);
    if (n < 5 || p[3] != "snapshots" || n > 6) return none;
    out->volume = std::string(p[2]);
    LSIFS_RETURN_IF_ERROR(ValidateName("volume", out->volume));
    LSIFS_RETURN_IF_ERROR(ParseSnapshotPart(p[4], &out->snapshot));
    if (n == 5) return expect(true, RegionRoute::kSnapshot);
    if (p[5] == "present") return expect(true, RegionRoute::kPresent);
    if (p[5] != "blocks") return none;
    LSIFS_RETURN_IF_ERROR(expect(false, RegionRoute::kBlocks));
    LSIFS_RETURN_IF_ERROR(DecodeBlockList(body, &out->blocks));
    if (out->blocks.empty()) return Status::InvalidArgument("the batch names no block");
    if (out->blocks.size() > kMaxBatchBlocks) {
      return Status::InvalidArgument("a batch holds at most " + std::to_string(kMaxBatchBlocks) +
                                     " blocks");
    }
    return Status::Ok();
  }
  if (what == "restore" && n == 2) {
    LSIFS_RETURN_IF_ERROR(expect(false, RegionRoute::kRestore));
    return ParseRestoreBody(body, out);
  }
  if (what == "preassemble" && n == 2) {
    LSIFS_RETURN_IF_ERROR(expect(false, RegionRoute::kPreassemble));
    return ParseRestoreBody(body, out);
  }
  if (what == "assemblies") {
    if (n == 2) return expect(true, RegionRoute::kAssemblies);
    if (n != 4 || p[3] != "cancel") return none;
    if (!ParseDecimal(p[2], &out->assembly)) {
      return Status::InvalidArgument("assembly id '" + std::string(p[2].substr(0, 32)) +
                                     "' is not a number");
    }
    return expect(false, RegionRoute::kAssemblyCancel);
  }
  if (what == "lsis") {
    if (n == 2) return expect(true, RegionRoute::kLsis);
    LSIFS_RETURN_IF_ERROR(ParseIdPart(p[2], "LSI", &out->lsi));
    if (n == 3) return expect(true, RegionRoute::kLsi);
    if (n == 4 && p[3] == "manifest") return expect(true, RegionRoute::kManifest);
    if (n != 5 || p[3] != "layers") return none;
    LSIFS_RETURN_IF_ERROR(ParseIdPart(p[4], "layer", &out->layer));
    LSIFS_RETURN_IF_ERROR(expect(true, RegionRoute::kLayer));
    LSIFS_RETURN_IF_ERROR(ParseRange(range, &out->range));
    if (out->range && out->range->last && *out->range->last - out->range->first >= kMaxRangeBytes) {
      return Status::InvalidArgument("a range spans at most " + std::to_string(kMaxRangeBytes) +
                                     " bytes");
    }
    return Status::Ok();
  }
  if (what == "sessions" && n == 2) {
    LSIFS_RETURN_IF_ERROR(expect(false, RegionRoute::kUpload));
    return ParseUploadBody(body, out);
  }
  if (what == "successors" && n == 3) {
    out->volume = std::string(p[2]);
    LSIFS_RETURN_IF_ERROR(ValidateName("volume", out->volume));
    return expect(true, RegionRoute::kSuccessors);
  }
  return none;
}

std::string EncodeBlockList(const std::vector<uint64_t>& blocks) {
  std::string out(blocks.size() * 8, '\0');
  for (size_t i = 0; i < blocks.size(); ++i) {
    EncodeFixed64(reinterpret_cast<uint8_t*>(out.data()) + i * 8, blocks[i]);
  }
  return out;
}

Status DecodeBlockList(std::string_view bytes, std::vector<uint64_t>* out) {
  if (bytes.size() % 8 != 0) {
    return Status::InvalidArgument("a block list is a multiple of 8 bytes (u64 LE each)");
  }
  out->resize(bytes.size() / 8);
  for (size_t i = 0; i < out->size(); ++i) {
    (*out)[i] = DecodeFixed64(reinterpret_cast<const uint8_t*>(bytes.data()) + i * 8);
  }
  return Status::Ok();
}

std::string EncodeSuccessorTable(std::string_view volume, const SuccessorTable& table) {
  JsonWriter j;
  j.BeginObject().Field("volume", volume).Key("seeds").BeginArray();
  for (size_t i = 0; i < table.seeds(); ++i) {
    j.BeginArray().Uint(table.seed(i)).BeginArray();
    for (uint64_t next : table.successors(i)) j.Uint(next);
    j.EndArray().EndArray();
  }
  j.EndArray().EndObject();
  return j.str();
}

Status DecodeSuccessorTable(std::string_view body, std::string_view volume, size_t max_entries,
                            SuccessorTable* out) {
  auto bad = [](const std::string& why) {
    return Status::Corruption("the region's successor table is unreadable: " + why);
  };
  boost::json::object o;
  if (!ParseObject(body, &o).ok()) return bad("not a JSON object");
  std::string named;
  if (!StringField(o, "volume", true, &named).ok() || named != volume) {
    return bad("it is not the table of volume '" + std::string(volume) + "'");
  }
  const boost::json::value* seeds = o.if_contains("seeds");
  if (seeds == nullptr || !seeds->is_array()) return bad("no \"seeds\" array");
  SuccessorTable table;
  std::vector<uint64_t> next;
  for (const boost::json::value& entry : seeds->as_array()) {
    const boost::json::array* pair = entry.if_array();
    uint64_t seed = 0;
    if (pair == nullptr || pair->size() != 2 || !NumberOf((*pair)[0], &seed) ||
        !(*pair)[1].is_array()) {
      return bad("a seed is not [block, [successors]]");
    }
    next.clear();
    for (const boost::json::value& n : (*pair)[1].as_array()) {
      uint64_t block = 0;
      if (!NumberOf(n, &block)) return bad("a successor is not a block number");
      next.push_back(block);
    }
    if (table.entries() + next.size() > max_entries) break;
    if (!table.Append(seed, next)) return bad("seeds are not in ascending order");
  }
  *out = std::move(table);
  return Status::Ok();
}

SecretKey RegionTransportKey(const SecretKey& extension_key) {
  return DeriveKey(extension_key, "lsifs region blocks v1");
}

std::string RegionBlockAad(std::string_view extension, std::string_view volume, uint64_t snapshot,
                           uint64_t block) {
  // Names are at most 64 bytes of a safe alphabet (no NUL): NUL separates.
  std::string aad = "lsifs-region-block";
  aad.push_back('\0');
  aad.append(extension);
  aad.push_back('\0');
  aad.append(volume);
  aad.push_back('\0');
  for (uint64_t v : {snapshot, block}) {
    uint8_t le[8];
    EncodeFixed64(le, v);
    aad.append(reinterpret_cast<const char*>(le), sizeof le);
  }
  return aad;
}

unsigned HttpStatusOf(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk:
      return 200;
    case Status::Code::kNotFound:
      return 404;
    case Status::Code::kInvalidArgument:
      return 400;
    case Status::Code::kPermission:
      return 403;
    case Status::Code::kExists:
      return 409;
    case Status::Code::kUnavailable:
      return 503;
    case Status::Code::kCancelled:
      return 409;
    case Status::Code::kCorruption:
      return 500;
    default:
      return 500;
  }
}

Status StatusOfHttp(unsigned http_status, std::string_view body) {
  if (http_status == 200 || http_status == 206) return Status::Ok();
  // lsid's errors carry the status code itself; anything else (a proxy,
  // a limit hit before the request was read) is judged by the HTTP status.
  std::string message;
  int code = -1;
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(body.substr(0, 4096), ec);
  if (!ec && v.is_object()) {
    const boost::json::object& o = v.as_object();
    if (const boost::json::value* m = o.if_contains("message"); m != nullptr && m->is_string()) {
      message = std::string(m->as_string());
    }
    if (const boost::json::value* c = o.if_contains("error"); c != nullptr && c->is_int64()) {
      code = static_cast<int>(c->as_int64());
    }
  }
  if (message.empty()) message = "the region answered HTTP " + std::to_string(http_status);
  if (code > 0) return Status::FromCode(code, message);
  switch (http_status) {
    case 400:
    case 413:
    case 416:
    case 431:
      return Status::InvalidArgument(message);
    case 401:
    case 403:
      return Status::Permission(message);
    case 404:
      return Status::NotFound(message);
    case 429:
    case 503:
      return Status::Unavailable(message);
    default:
      return Status::IOError(message);
  }
}

}  // namespace lsifs
