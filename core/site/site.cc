#include "core/site/site.h"

#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <ctime>
#include <set>

#include "core/catalog/delivery_record.h"
#include "core/lsi/layer.h"
#include "core/lsi/manifest.h"
#include "core/util/file.h"
#include "core/util/hex.h"
#include "core/util/numbers.h"

namespace lsifs {
namespace {

Status ReadRegionStore(RegionClient& region, StoreConfig* out) {
  RegionCall call;
  call.target = "/v1/store";
  RegionAnswer answer;
  LSIFS_RETURN_IF_ERROR(region.Call(call, &answer));
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(answer.body, ec);
  const Status bad = Status::Corruption("the region's store facts are not valid");
  if (ec || !v.is_object()) return bad;
  const auto& o = v.as_object();
  const auto* id = o.if_contains("store_id");
  const auto* bs = o.if_contains("block_size");
  if (id == nullptr || !id->is_string() || bs == nullptr || !bs->is_int64()) return bad;
  std::optional<uint64_t> store_id = ParseId(id->as_string());
  if (!store_id || !IsValidBlockSize(static_cast<uint64_t>(bs->as_int64()))) return bad;
  out->store_id = *store_id;
  out->block_size = static_cast<uint32_t>(bs->as_int64());
  return Status::Ok();
}

// True when the byte cap evicted the LSI of `e` and it has not been
// delivered again since (its marker names the delivery it had then).
bool EvictedSince(const Store& site, const DeliveryEntry& e) {
  const std::string marker = site.site_evicted_path(e.lsi_id);
  std::string text;
  if (!ReadWholeFile(marker, 64, &text).ok()) return false;
  uint64_t delivered = 0;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  if (ParseUnsigned(text, "an eviction mark", 0, INT64_MAX, &delivered).ok() &&
      static_cast<int64_t>(delivered) >= e.last_delivered) {
    return true;
  }
  ::unlink(marker.c_str());  // delivered again: it is pulled
  return false;
}

}  // namespace

Status OpenSiteClient(RegionClientOptions options, const std::string& site_dir,
                      const std::string& extension, std::unique_ptr<RegionClient>* out) {
  std::string named = extension;
  if (named.empty() && (options.cert_path.empty() || options.key_path.empty())) {
    const std::vector<std::string> found = Store::SiteTlsExtensions(site_dir);
    if (found.size() != 1) {
      return Status::InvalidArgument(
          site_dir + "/tls holds " +
          (found.empty() ? std::string("no site certificate") : "certificates of several") +
          ": name the extension, or pass --cert and --key (lsictl cert issue EXT --out " +
          site_dir + "/tls makes them)");
    }
    named = found[0];
  }
  const Store::SiteTls tls = Store::SiteTlsPaths(site_dir, named);
  if (options.cert_path.empty() && !PathExists(tls.cert)) {
    return Status::NotFound(site_dir + "/tls holds no certificate of extension '" + named +
                            "': at the region, lsictl cert issue " + named + " --out DIR makes " +
                            "one; copy DIR to " + site_dir + "/tls");
  }
  if (options.cert_path.empty()) options.cert_path = tls.cert;
  if (options.key_path.empty()) options.key_path = tls.key;
  if (options.ca_path.empty()) options.ca_path = tls.ca;
  const std::string cert = options.cert_path;
  LSIFS_RETURN_IF_ERROR(RegionClient::Open(std::move(options), out));
  named = (*out)->extension();  // a copy: the client may go below
  if (!extension.empty() && named != extension) {
    out->reset();
    return Status::InvalidArgument(cert + " is the certificate of extension '" + named +
                                   "', not of '" + extension + "': the region serves it as '" +
                                   named + "' (pass that extension's --cert and --key)");
  }
  return Status::Ok();
}

Status OpenOrInitSite(RegionClient& region, const std::string& site_dir,
                      std::unique_ptr<Store>* out) {
  StoreConfig config;
  LSIFS_RETURN_IF_ERROR(ReadRegionStore(region, &config).WithContext("region " + region.url()));
  if (!PathExists(site_dir + "/config")) {
    LSIFS_RETURN_IF_ERROR(Store::InitSite(site_dir, config));
  }
  std::unique_ptr<Store> site;
  LSIFS_RETURN_IF_ERROR(Store::Open(site_dir, &site));
  if (PathExists(site->provider_key_path())) {
    return Status::Exists(site_dir + " holds a provider key: it is a region's store, not a site");
  }
  if (site->config().store_id != config.store_id || site->block_size() != config.block_size) {
    return Status::Exists(site_dir + " is a site of another store (" +
                          FormatId(site->config().store_id) + ") than the region's (" +
                          FormatId(config.store_id) + "): use a new folder");
  }
  *out = std::move(site);
  return Status::Ok();
}

Periodic::Periodic(std::string what, std::function<Status()> pass,
                   std::function<void(const std::string&)> log)
    : what_(std::move(what)), pass_(std::move(pass)), log_(std::move(log)) {}

Periodic::~Periodic() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void Periodic::Start(std::chrono::milliseconds interval) {
  thread_ = std::thread([this, interval] {
    for (;;) {
      const Status s = pass_();
      std::unique_lock<std::mutex> lock(mu_);
      ++passes_;
      if (!s.ok()) {
        ++failures_;
        if (!failing_ && log_) log_(what_ + " failed (retrying every pass): " + s.message());
        failing_ = true;
      } else if (failing_) {
        failing_ = false;
        if (log_) log_(what_ + " works again");
      }
      cv_.wait_for(lock, interval, [&] { return stop_ || wake_; });
      wake_ = false;
      if (stop_) return;
    }
  });
}

void Periodic::Wake() {
  std::lock_guard<std::mutex> lock(mu_);
  wake_ = true;
  cv_.notify_all();
}

uint64_t Periodic::passes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return passes_;
}

uint64_t Periodic::failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

SiteSync::SiteSync(const Store& site, const Catalog& catalog, RegionClient& region,
                   const ExtensionKeys& keys, SiteSyncOptions options)
    : site_(site),
      catalog_(catalog),
      region_(region),
      keys_(keys),
      options_(std::move(options)),
      periodic_(
          "pulling from the region",
          [this] {
            SiteSyncReport report;
            return Pull(&report);
          },
          options_.log) {}

SiteSync::~SiteSync() = default;

// A layer's bytes so far, in its temporary file.
struct SiteSync::PartialLayer {
  uint64_t layer = 0;
  AtomicFileWriter out;
  uint64_t at = 0, size = UINT64_MAX;
};

Status SiteSync::PullLayer(uint64_t lsi, uint64_t layer, uint64_t wakes, uint64_t* bytes,
                           bool* preempted) {
  *preempted = false;
  std::unique_ptr<PartialLayer> p;
  if (partial_ != nullptr && partial_->layer == layer) {
    p = std::move(partial_);
  } else {
    p = std::make_unique<PartialLayer>();
    p->layer = layer;
    LSIFS_RETURN_IF_ERROR(p->out.Open(site_.tmp_dir(), site_.layer_path(layer)));
  }
  const std::string target = "/v1/lsis/" + FormatId(lsi) + "/layers/" + FormatId(layer);
  while (p->at < p->size) {
    if (wakes_.load() != wakes) {
      partial_ = std::move(p);
      *preempted = true;
      return Status::Ok();
    }
    RegionCall call;
    call.target = target;
    call.link_class = LinkClass::kLayerPull;
    call.range =
        "bytes=" + std::to_string(p->at) + "-" + std::to_string(p->at + options_.layer_chunk - 1);
    RegionAnswer answer;
    Status s = region_.Call(call, &answer);
    if (!s.ok()) {
      partial_ = std::move(p);  // taken up where it was when the region is back
      return s;
    }
    // "bytes FIRST-LAST/SIZE": the size fixes when the layer is whole.
    const size_t slash = answer.content_range.rfind('/');
    uint64_t total = 0;
    if (answer.status != 206 || slash == std::string::npos ||
        !ParseUnsigned(answer.content_range.substr(slash + 1), "layer size", 1, UINT64_MAX / 2,
                       &total)
             .ok() ||
        (p->size != UINT64_MAX && total != p->size) || answer.body.empty() ||
        answer.content_range.rfind("bytes " + std::to_string(p->at) + "-", 0) != 0) {
      return Status::Corruption("the region's answer for layer " + FormatId(layer) +
                                " is not the range asked for");
    }
    p->size = total;
    LSIFS_RETURN_IF_ERROR(p->out.Write(AsBytes(answer.body)));
    p->at += answer.body.size();
    if (options_.on_chunk) options_.on_chunk(lsi, layer, p->at, p->size);
  }
  // Checked with the extension's key before it takes its place: a layer of
  // another extension, another LSI, or altered, never does.
  std::unique_ptr<LayerReader> reader;
  LSIFS_RETURN_IF_ERROR(keys_
                            .WithEither([&](const KeyInfo& info, const SecretKey& key) {
                              return LayerReader::Open(p->out.temp_path(), info, key, &reader);
                            })
                            .WithContext("layer " + FormatId(layer) + " from the region"));
  if (reader->header().layer_id != layer) {
    return Status::Corruption("the region sent another layer for " + FormatId(layer));
  }
  reader.reset();
  *bytes = p->size;
  return p->out.Commit(/*replace=*/true);
}

Status SiteSync::Pull(SiteSyncReport* report) {
  std::lock_guard<std::mutex> one(pull_mu_);
  *report = SiteSyncReport();
  // What Wake calls after this are deliveries this pass may not have seen.
  const uint64_t wakes = wakes_.load();
  // Counted whatever this pass ends in.
  struct Count {
    SiteSync* self;
    SiteSyncReport* report;
    ~Count() {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->counters_.manifests += report->manifests;
      self->counters_.layers += report->layers;
      self->counters_.layer_bytes += report->layer_bytes;
      self->counters_.evicted += report->evicted;
    }
  } count{this, report};
  const std::string& ext = keys_.info.name;
  RegionCall call;
  call.target = "/v1/deliveries";
  call.link_class = LinkClass::kLayerPull;
  RegionAnswer answer;
  Status s = region_.Call(call, &answer);
  if (s.IsNotFound()) return Status::Ok();
  LSIFS_RETURN_IF_ERROR(s);
  report->delivered = true;
  DeliveryRecord record;
  const std::string path = site_.deliveries_path(ext);
  LSIFS_RETURN_IF_ERROR(keys_
                            .WithEither([&](const KeyInfo& info, const SecretKey& key) {
                              return DecodeDeliveryRecord(path, AsBytes(answer.body), &info, &key,
                                                          &record);
                            })
                            .WithContext("the deliveries record from the region"));
  // Manifests first, so that the catalog lists what is delivered at once
  // (its layers pending until they arrive), then the record.
  std::vector<DeliveryEntry> entries = record.entries;
  std::sort(entries.begin(), entries.end(), [](const DeliveryEntry& a, const DeliveryEntry& b) {
    return a.last_delivered > b.last_delivered;
  });
  std::vector<Manifest> manifests;
  for (const DeliveryEntry& e : entries) {
    const std::string mpath = site_.manifest_path(e.lsi_id);
    Manifest m;
    if (!PathExists(mpath)) {
      if (EvictedSince(site_, e)) continue;
      RegionCall get;
      get.target = "/v1/lsis/" + FormatId(e.lsi_id) + "/manifest";
      get.link_class = LinkClass::kLayerPull;
      RegionAnswer got;
      Status fetched = region_.Call(get, &got);
      // Dropped at the region since the record was read: the next pass sees.
      if (fetched.IsNotFound()) continue;
      LSIFS_RETURN_IF_ERROR(fetched);
      AtomicFileWriter w;
      LSIFS_RETURN_IF_ERROR(w.Open(site_.tmp_dir(), mpath));
      LSIFS_RETURN_IF_ERROR(w.Write(AsBytes(got.body)));
      LSIFS_RETURN_IF_ERROR(
          keys_
              .WithEither([&](const KeyInfo& info, const SecretKey& key) {
                return ReadManifest(w.temp_path(), info, key, &m);
              })
              .WithContext("the manifest of LSI " + FormatId(e.lsi_id) + " from the region"));
      if (m.lsi_id != e.lsi_id) {
        return Status::Corruption("the region sent another manifest for LSI " + FormatId(e.lsi_id));
      }
      LSIFS_RETURN_IF_ERROR(w.Commit(/*replace=*/true));
      ++report->manifests;
    } else {
      Status read = keys_.WithEither([&](const KeyInfo& info, const SecretKey& key) {
        return ReadManifest(mpath, info, key, &m);
      });
      if (!read.ok()) continue;  // the catalog reports it; not ours to mend
    }
    manifests.push_back(std::move(m));
  }
  // Rewritten (and fsynced) only when the region's record changed: a pass
  // runs every few seconds.
  std::string held;
  if (!ReadWholeFile(path, answer.body.size() + 1, &held).ok() || held != answer.body) {
    LSIFS_RETURN_IF_ERROR(
        WriteFileAtomically(site_.tmp_dir(), path, AsBytes(answer.body), 0644, /*replace=*/true));
  }
  for (const Manifest& m : manifests) {
    for (const auto& layer : m.layers) {
      if (PathExists(site_.layer_path(layer.layer_id))) continue;
      uint64_t bytes = 0;
      bool preempted = false;
      LSIFS_RETURN_IF_ERROR(PullLayer(m.lsi_id, layer.layer_id, wakes, &bytes, &preempted));
      if (preempted) {
        report->preempted = true;
        return Status::Ok();  // the wake runs the next pass at once
      }
      ++report->layers;
      report->layer_bytes += bytes;
    }
  }
  return Evict(entries, &report->evicted);
}

Status SiteSync::Evict(const std::vector<DeliveryEntry>& entries, uint64_t* evicted) {
  // `entries` newest first: the first of each volume is what it restores.
  std::vector<uint64_t> keep;
  std::set<std::string> volumes;
  for (const DeliveryEntry& e : entries) {
    if (volumes.insert(e.volume).second) keep.push_back(e.lsi_id);
  }
  CatalogContext context;
  context.now = static_cast<int64_t>(std::time(nullptr));
  EvictionReport report;
  LSIFS_RETURN_IF_ERROR(catalog_.Evict(context, &report, keep));
  for (const auto& victim : report.dropped) {
    auto e = std::find_if(entries.begin(), entries.end(),
                          [&](const DeliveryEntry& d) { return d.lsi_id == victim.lsi_id; });
    const int64_t delivered = e == entries.end() ? 0 : e->last_delivered;
    LSIFS_RETURN_IF_ERROR(WriteFileAtomically(site_.tmp_dir(),
                                              site_.site_evicted_path(victim.lsi_id),
                                              AsBytes(std::to_string(delivered) + "\n"), 0644,
                                              /*replace=*/true));
  }
  *evicted = report.dropped.size();
  return Status::Ok();
}

SiteSyncCounters SiteSync::Counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  SiteSyncCounters c = counters_;
  c.passes = periodic_.passes();
  c.failures = periodic_.failures();
  return c;
}

SessionUploader::SessionUploader(RegionClient& region, std::string extension, WithDb with_db,
                                 std::function<void(const std::string&)> log)
    : region_(region),
      extension_(std::move(extension)),
      with_db_(std::move(with_db)),
      periodic_(
          "sending sessions to the region",
          [this] {
            uint32_t sent = 0;
            return UploadPending(&sent);
          },
          std::move(log)) {}

Status SessionUploader::UploadPending(uint32_t* sent) {
  std::lock_guard<std::mutex> one(upload_mu_);
  *sent = 0;
  struct Pending {
    std::string volume;
    SessionRecord record;
    std::vector<AccessEvent> log;
  };
  // What to send is read under the database's lock; the sending is not.
  std::vector<Pending> pending;
  auto gather = [&](AccessDb& db) -> Status {
    std::vector<std::pair<std::string, std::string>> pairs;
    LSIFS_RETURN_IF_ERROR(db.ListPairs(&pairs));
    for (const auto& [ext, vol] : pairs) {
      if (ext != extension_) continue;
      std::vector<SessionRecord> sessions;
      LSIFS_RETURN_IF_ERROR(db.ListSessions(ext, vol, &sessions));
      for (const SessionRecord& rec : sessions) {
        if (rec.state == SessionState::kOpen || !rec.log_kept) continue;
        uint32_t region_number = 0;
        LSIFS_RETURN_IF_ERROR(
            db.FindUpload(ext, vol, "site:" + std::to_string(rec.number), &region_number));
        if (region_number != 0) continue;
        Pending p{vol, rec, {}};
        LSIFS_RETURN_IF_ERROR(db.SessionLog(ext, vol, rec.number, &p.log));
        pending.push_back(std::move(p));
      }
    }
    return Status::Ok();
  };
  LSIFS_RETURN_IF_ERROR(with_db_(gather));
  for (const Pending& p : pending) {
    boost::json::array events;
    for (const AccessEvent& e : p.log) events.push_back(boost::json::array{e.block, e.t_us});
    boost::json::object body{
        {"key", FormatId(p.record.lsi) + "-" + std::to_string(p.record.number) + "-" +
                    std::to_string(p.record.started_us)},
        {"volume", p.volume},
        {"lsi", FormatId(p.record.lsi)},
        {"snapshot", FormatId(p.record.snapshot)},
        {"reads", p.record.reads},
        {"dropped", p.record.dropped},
        {"events", std::move(events)}};
    RegionCall call;
    call.method = "POST";
    call.target = "/v1/sessions";
    call.body = boost::json::serialize(body);
    call.link_class = LinkClass::kLow;
    call.idempotent = true;  // the region takes a key once
    RegionAnswer answer;
    LSIFS_RETURN_IF_ERROR(region_.Call(call, &answer));
    boost::json::error_code ec;
    boost::json::value v = boost::json::parse(answer.body, ec);
    const boost::json::value* n =
        !ec && v.is_object() ? v.as_object().if_contains("session") : nullptr;
    uint64_t number = 0;
    if (n == nullptr || !(n->is_uint64() || n->is_int64()) ||
        (number = n->to_number<uint64_t>()) == 0 || number > UINT32_MAX) {
      return Status::Corruption("the region's answer to a session upload names no session");
    }
    LSIFS_RETURN_IF_ERROR(with_db_([&](AccessDb& db) {
      return db.RecordUpload(extension_, p.volume, "site:" + std::to_string(p.record.number),
                             static_cast<uint32_t>(number));
    }));
    ++*sent;
    ++sent_;
  }
  return Status::Ok();
}

Status FetchSuccessorTable(RegionClient& region, const std::string& volume, size_t max_entries,
                           SuccessorTable* out) {
  RegionCall call;
  call.target = "/v1/successors/" + volume;
  call.link_class = LinkClass::kExpansion;
  RegionAnswer answer;
  LSIFS_RETURN_IF_ERROR(region.Call(call, &answer));
  return DecodeSuccessorTable(answer.body, volume, max_entries, out);
}

}  // namespace lsifs
