#include "core/metrics/metrics.h"

#include <boost/json.hpp>
#include <charconv>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>

#include "core/util/hex.h"
#include "core/util/json.h"
#include "core/util/progress.h"

namespace lsifs {
namespace {

// The site's figures, named once for every rendering.
struct SiteField {
  const char* name;
  uint64_t SiteMetrics::*value;
  bool gauge;
  const char* help;
};
constexpr SiteField kSiteFields[] = {
    {"region_requests", &SiteMetrics::region_requests, false, "Requests made of the region."},
    {"region_retries", &SiteMetrics::region_retries, false, "Requests to the region tried again."},
    {"region_failures", &SiteMetrics::region_failures, false,
     "Requests to the region that failed after every try."},
    {"region_outages", &SiteMetrics::region_outages, false, "Times the region stopped answering."},
    {"region_reachable", &SiteMetrics::region_reachable, true,
     "Whether the region answered the last request (1) or not (0)."},
    {"manifests_pulled", &SiteMetrics::manifests_pulled, false,
     "Manifests pulled from the region."},
    {"layers_pulled", &SiteMetrics::layers_pulled, false, "Delta layers pulled from the region."},
    {"layer_bytes_pulled", &SiteMetrics::layer_bytes_pulled, false,
     "Bytes of delta layers pulled from the region."},
    {"pull_failures", &SiteMetrics::pull_failures, false, "Pulls from the region that failed."},
    {"lsis_evicted", &SiteMetrics::lsis_evicted, false, "Pulled LSIs the site's byte cap evicted."},
    {"sessions_sent", &SiteMetrics::sessions_sent, false, "Sessions sent to the region."},
    {"upload_failures", &SiteMetrics::upload_failures, false,
     "Passes sending sessions to the region that failed."},
};

// Label values escape backslash, quote and newline (the format's rule).
std::string LabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// The shortest text that reads back as `v` ("0.0025", not 0.0025000000000000001).
std::string Number(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

__attribute__((format(printf, 2, 3))) void Appendf(std::string* out, const char* fmt, ...) {
  char line[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(line, sizeof line, fmt, args);
  va_end(args);
  *out += line;
}

class Exposition {
 public:
  void Family(const char* name, const char* type, const char* help) {
    out_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void Sample(const std::string& name, const std::string& labels, uint64_t value) {
    out_ += name + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(value) + "\n";
  }
  void Sample(const std::string& name, const std::string& labels, double value) {
    out_ += name + (labels.empty() ? "" : "{" + labels + "}") + " " + Number(value) + "\n";
  }
  std::string str() const { return out_; }

 private:
  std::string out_;
};

}  // namespace

std::string RenderPrometheus(const MountMetrics& m) {
  Exposition e;
  // Every series names its mount: two mounts on one host stay apart.
  const std::string mount = "extension=\"" + LabelValue(m.extension) + "\",mountpoint=\"" +
                            LabelValue(m.mountpoint) + "\"";
  e.Family("lsifs_mount_info", "gauge", "The mount and its store (value 1).");
  e.Sample("lsifs_mount_info", mount + ",store=\"" + LabelValue(m.store) + "\"", uint64_t{1});
  e.Family("lsifs_mount_start_time_seconds", "gauge", "When the mount started (unix seconds).");
  e.Sample("lsifs_mount_start_time_seconds", mount, static_cast<uint64_t>(m.mounted_at));

  e.Family("lsifs_lsi_open", "gauge", "Whether the LSI's image is open (1) or not (0).");
  for (const auto& l : m.lsis) {
    e.Sample("lsifs_lsi_open",
             mount + ",lsi=\"" + FormatId(l.lsi_id) + "\",volume=\"" + LabelValue(l.volume) + "\"",
             uint64_t{l.open ? 1u : 0u});
  }
  for (const auto& f : kCounterFields) {
    const std::string metric = std::string("lsifs_lsi_") + f.name + (f.gauge ? "" : "_total");
    e.Family(metric.c_str(), f.gauge ? "gauge" : "counter", f.help);
    for (const auto& l : m.lsis) {
      e.Sample(
          metric,
          mount + ",lsi=\"" + FormatId(l.lsi_id) + "\",volume=\"" + LabelValue(l.volume) + "\"",
          l.counters.*f.value);
    }
  }

  e.Family("lsifs_origin_requests_total", "counter",
           "Requests sent to the origin over the link, by class.");
  for (size_t c = 0; c < kLinkClasses; ++c) {
    e.Sample("lsifs_origin_requests_total",
             mount + ",class=\"" + LinkClassName(static_cast<LinkClass>(c)) + "\"",
             m.link[c].requests);
  }
  e.Family("lsifs_origin_bytes_total", "counter", "Bytes fetched over the link, by class.");
  for (size_t c = 0; c < kLinkClasses; ++c) {
    e.Sample("lsifs_origin_bytes_total",
             mount + ",class=\"" + LinkClassName(static_cast<LinkClass>(c)) + "\"",
             m.link[c].bytes);
  }
  e.Family("lsifs_origin_wait_seconds", "histogram",
           "How long read requests waited on the origin (only those that waited).");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < m.origin_waits.buckets.size(); ++i) {
    cumulative += m.origin_waits.buckets[i];
    const std::string le =
        i < WaitHistogram::kBounds.size() ? Number(WaitHistogram::kBounds[i]) : "+Inf";
    e.Sample("lsifs_origin_wait_seconds_bucket", mount + ",le=\"" + le + "\"", cumulative);
  }
  e.Sample("lsifs_origin_wait_seconds_sum", mount, m.origin_waits.sum_seconds);
  e.Sample("lsifs_origin_wait_seconds_count", mount, m.origin_waits.count);

  e.Family("lsifs_recorder_events_total", "counter",
           "First accesses written to the co-access database.");
  e.Sample("lsifs_recorder_events_total", mount, m.recorder.recorded);
  e.Family("lsifs_recorder_dropped_total", "counter",
           "First accesses lost (queue full, or the database failed).");
  e.Sample("lsifs_recorder_dropped_total", mount, m.recorder.dropped);
  e.Family("lsifs_recorder_errors_total", "counter", "Failed database writes.");
  e.Sample("lsifs_recorder_errors_total", mount, m.recorder.errors);

  if (!m.region.empty()) {
    for (const auto& f : kSiteFields) {
      const std::string metric = std::string("lsifs_site_") + f.name + (f.gauge ? "" : "_total");
      e.Family(metric.c_str(), f.gauge ? "gauge" : "counter", f.help);
      e.Sample(metric, mount, m.site.*f.value);
    }
  }
  e.Family("lsifs_cache_capacity_bytes", "gauge", "The decrypted-block cache's size.");
  e.Sample("lsifs_cache_capacity_bytes", mount, m.cache_capacity_bytes);
  e.Family("lsifs_cache_used_bytes", "gauge", "Bytes of the cache holding a block.");
  e.Sample("lsifs_cache_used_bytes", mount, m.cache_used_bytes);

  e.Family("lsifs_assemblies", "gauge", "Assemblies in the queue, by state.");
  e.Sample("lsifs_assemblies", mount + ",state=\"queued\"", m.assemblies_queued);
  e.Sample("lsifs_assemblies", mount + ",state=\"running\"", m.assemblies_running);
  e.Family("lsifs_assemblies_finished_total", "counter", "Assemblies finished, by outcome.");
  e.Sample("lsifs_assemblies_finished_total", mount + ",outcome=\"done\"", m.assemblies_done);
  e.Sample("lsifs_assemblies_finished_total", mount + ",outcome=\"failed\"", m.assemblies_failed);
  e.Sample("lsifs_assemblies_finished_total", mount + ",outcome=\"cancelled\"",
           m.assemblies_cancelled);
  return e.str();
}

std::string RenderMountJson(const MountMetrics& m) {
  JsonWriter j;
  j.BeginObject()
      .Field("extension", m.extension)
      .Field("mountpoint", m.mountpoint)
      .Field("store", m.store)
      .Field("mounted_at", m.mounted_at)
      .Field("key_id", FormatId(m.key_id))
      .Field("next_key_id", m.next_key_id ? FormatId(m.next_key_id) : "")
      .Field("origin", m.origin);
  j.Key("lsis").BeginArray();
  for (const auto& l : m.lsis) {
    j.BeginObject()
        .Field("lsi", FormatId(l.lsi_id))
        .Field("volume", l.volume)
        .Field("open", l.open)
        .Field("session", l.session);
    j.Key("counters").BeginObject();
    for (const auto& f : kCounterFields) j.Field(f.name, l.counters.*f.value);
    j.EndObject().EndObject();
  }
  j.EndArray().Key("link").BeginArray();
  for (size_t c = 0; c < kLinkClasses; ++c) {
    j.BeginObject()
        .Field("class", LinkClassName(static_cast<LinkClass>(c)))
        .Field("requests", m.link[c].requests)
        .Field("bytes", m.link[c].bytes)
        .EndObject();
  }
  j.EndArray().Key("origin_waits").BeginObject().Key("buckets").BeginArray();
  for (uint64_t b : m.origin_waits.buckets) j.Uint(b);
  j.EndArray()
      .Field("count", m.origin_waits.count)
      .Field("sum_seconds", m.origin_waits.sum_seconds)
      .EndObject();
  j.Key("recorder")
      .BeginObject()
      .Field("on", m.recording)
      .Field("recorded", m.recorder.recorded)
      .Field("dropped", m.recorder.dropped)
      .Field("errors", m.recorder.errors)
      .EndObject();
  j.Key("cache")
      .BeginObject()
      .Field("capacity_bytes", m.cache_capacity_bytes)
      .Field("used_bytes", m.cache_used_bytes)
      .EndObject();
  j.Key("site");
  if (m.region.empty()) {
    j.Null();
  } else {
    j.BeginObject().Field("region", m.region);
    for (const auto& f : kSiteFields) j.Field(f.name, m.site.*f.value);
    j.EndObject();
  }
  j.Key("assemblies")
      .BeginObject()
      .Field("queued", m.assemblies_queued)
      .Field("running", m.assemblies_running)
      .Field("done", m.assemblies_done)
      .Field("failed", m.assemblies_failed)
      .Field("cancelled", m.assemblies_cancelled)
      .EndObject();
  j.EndObject();
  return j.str() + "\n";
}

Status ParseMountJson(const std::string& text, MountMetrics* m) {
  *m = MountMetrics();
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return Status::Corruption("not the JSON of a mount's state");
  try {
    const auto& o = v.as_object();
    auto u64 = [](const boost::json::value& x) { return boost::json::value_to<uint64_t>(x); };
    auto str = [](const boost::json::value& x) {
      return std::string(x.as_string().data(), x.as_string().size());
    };
    m->extension = str(o.at("extension"));
    m->mountpoint = str(o.at("mountpoint"));
    m->store = str(o.at("store"));
    m->mounted_at = boost::json::value_to<int64_t>(o.at("mounted_at"));
    m->key_id = ParseId(str(o.at("key_id"))).value_or(0);
    m->next_key_id = ParseId(str(o.at("next_key_id"))).value_or(0);
    m->origin = str(o.at("origin"));
    for (const auto& lv : o.at("lsis").as_array()) {
      const auto& lo = lv.as_object();
      LsiMetrics l;
      auto id = ParseId(str(lo.at("lsi")));
      if (!id) return Status::Corruption("a bad LSI id in the mount's state");
      l.lsi_id = *id;
      l.volume = str(lo.at("volume"));
      l.open = lo.at("open").as_bool();
      l.session = str(lo.at("session"));
      const auto& c = lo.at("counters").as_object();
      for (const auto& f : kCounterFields) l.counters.*f.value = u64(c.at(f.name));
      m->lsis.push_back(std::move(l));
    }
    const auto& link = o.at("link").as_array();
    for (size_t c = 0; c < kLinkClasses && c < link.size(); ++c) {
      m->link[c].requests = u64(link[c].at("requests"));
      m->link[c].bytes = u64(link[c].at("bytes"));
    }
    const auto& waits = o.at("origin_waits").as_object();
    const auto& buckets = waits.at("buckets").as_array();
    for (size_t i = 0; i < m->origin_waits.buckets.size() && i < buckets.size(); ++i) {
      m->origin_waits.buckets[i] = u64(buckets[i]);
    }
    m->origin_waits.count = u64(waits.at("count"));
    m->origin_waits.sum_seconds = boost::json::value_to<double>(waits.at("sum_seconds"));
    const auto& rec = o.at("recorder").as_object();
    m->recording = rec.at("on").as_bool();
    m->recorder.recorded = u64(rec.at("recorded"));
    m->recorder.dropped = u64(rec.at("dropped"));
    m->recorder.errors = u64(rec.at("errors"));
    const auto& cache = o.at("cache").as_object();
    m->cache_capacity_bytes = u64(cache.at("capacity_bytes"));
    m->cache_used_bytes = u64(cache.at("used_bytes"));
    // Absent from what an older lsifs wrote: one host, then.
    if (const auto* site = o.if_contains("site"); site != nullptr && site->is_object()) {
      m->region = std::string(site->at("region").as_string());
      for (const auto& f : kSiteFields) m->site.*f.value = u64(site->at(f.name));
    }
    const auto& a = o.at("assemblies").as_object();
    m->assemblies_queued = u64(a.at("queued"));
    m->assemblies_running = u64(a.at("running"));
    m->assemblies_done = u64(a.at("done"));
    m->assemblies_failed = u64(a.at("failed"));
    m->assemblies_cancelled = u64(a.at("cancelled"));
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("the mount's state lacks a field (") + e.what() + ")");
  }
  return Status::Ok();
}

std::string RenderStatusText(const MountMetrics& m) {
  std::string out;
  Appendf(&out, "%s is active (lsifs).\n", m.mountpoint.c_str());
  Appendf(&out, "  extension:   %s (key %s%s)\n", m.extension.c_str(), FormatId(m.key_id).c_str(),
          m.next_key_id
              ? (", next key " + FormatId(m.next_key_id) + ": rotation unfinished").c_str()
              : "");
  Appendf(&out, "  store:       %s\n", m.store.c_str());
  Appendf(&out, "  mounted:     %s\n", FormatTime(m.mounted_at).c_str());
  uint64_t requests = 0, bytes = 0;
  for (const auto& c : m.link) {
    requests += c.requests;
    bytes += c.bytes;
  }
  Appendf(&out, "  origin:      %s; %" PRIu64 " requests, %s fetched\n", m.origin.c_str(), requests,
          FormatBytes(bytes).c_str());
  if (m.origin_waits.count > 0) {
    Appendf(&out, "  waits:       %" PRIu64 " reads waited on the origin, %.1f ms on average\n",
            m.origin_waits.count,
            1000 * m.origin_waits.sum_seconds / static_cast<double>(m.origin_waits.count));
  } else {
    Appendf(&out, "  waits:       no read waited on the origin\n");
  }
  Appendf(&out, "  cache:       %s of %s used\n", FormatBytes(m.cache_used_bytes).c_str(),
          FormatBytes(m.cache_capacity_bytes).c_str());
  if (!m.region.empty()) {
    const SiteMetrics& r = m.site;
    Appendf(&out,
            "  region:      %s, %s; %" PRIu64 " requests, %" PRIu64 " retried, %" PRIu64
            " failed, %" PRIu64 " outages\n",
            m.region.c_str(), r.region_reachable ? "answering" : "NOT ANSWERING", r.region_requests,
            r.region_retries, r.region_failures, r.region_outages);
    Appendf(&out,
            "  pulled:      %" PRIu64 " manifests, %" PRIu64 " layers (%s), %" PRIu64
            " failed passes, %" PRIu64 " LSIs evicted; sent %" PRIu64 " sessions, %" PRIu64
            " failed passes\n",
            r.manifests_pulled, r.layers_pulled, FormatBytes(r.layer_bytes_pulled).c_str(),
            r.pull_failures, r.lsis_evicted, r.sessions_sent, r.upload_failures);
  }
  if (m.recording) {
    Appendf(&out,
            "  recording:   on; %" PRIu64 " first accesses written, %" PRIu64 " dropped, %" PRIu64
            " database errors\n",
            m.recorder.recorded, m.recorder.dropped, m.recorder.errors);
  } else {
    Appendf(&out, "  recording:   off\n");
  }
  Appendf(&out,
          "  assemblies:  %" PRIu64 " queued, %" PRIu64 " running; %" PRIu64 " done, %" PRIu64
          " failed, %" PRIu64 " cancelled\n",
          m.assemblies_queued, m.assemblies_running, m.assemblies_done, m.assemblies_failed,
          m.assemblies_cancelled);
  if (m.lsis.empty()) {
    out += "  images:      none delivered yet\n";
    return out;
  }
  Appendf(&out, "\n  %-16s  %-14s  %-6s  %8s  %9s  %10s  %7s  %7s\n", "LSI", "VOLUME", "STATE",
          "READS", "BLOCKS", "FETCHED", "RECALL", "ERRORS");
  for (const auto& l : m.lsis) {
    Appendf(&out, "  %-16s  %-14s  %-6s  %8" PRIu64 "  %9" PRIu64 "  %10s  %6.1f%%  %7" PRIu64 "\n",
            FormatId(l.lsi_id).c_str(), l.volume.c_str(), l.open ? "open" : "closed",
            l.counters.reads, l.counters.blocks_read, FormatBytes(l.counters.origin_bytes).c_str(),
            100 * l.counters.recall(), l.counters.read_errors);
    if (!l.session.empty()) Appendf(&out, "  %16s  session %s\n", "", l.session.c_str());
  }
  return out;
}

}  // namespace lsifs
