// The successor tables read-time expansion follows, one per (extension,
// volume), kept in memory by the daemon that holds the co-access database
// (built from its models) or, at a site, by the site's lsifs (fetched from
// the region, which holds the models): built when a session first asks
// (never on the read path: a session starts without one and gets it a
// moment later), rebuilt when the volume's model changed.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/access/access_db.h"
#include "core/predictor/predictor.h"
#include "core/util/status.h"

namespace lsifs {

class SuccessorCache {
 public:
  // `confidence`: which successors are confident (min_support, min_share);
  // `max_entries`: successors per table, at most.
  SuccessorCache(PlanOptions confidence, size_t max_entries)
      : confidence_(confidence), max_entries_(max_entries) {}

  // The table of (extension, volume), or null until it is built.
  std::shared_ptr<const SuccessorTable> Get(const std::string& extension,
                                            const std::string& volume);
  // True when a table was asked for and is not built yet.
  bool Wanted() const;
  // Where a table comes from.
  using Source = std::function<Status(const std::string& extension, const std::string& volume,
                                      SuccessorTable* out)>;
  // Builds the tables asked for and missing and, when `volume` is not
  // empty, rebuilds those of that volume (its models changed). A table
  // `source` fails to give stays as it was, and is asked for again at the
  // next Build; the first such failure is returned.
  Status Build(const Source& source, const std::string& volume = "");
  // Rebuilds every table (a site: the region's models changed).
  Status Refresh(const Source& source);
  // Builds from `db`'s models.
  void Build(AccessDb& db, const std::string& volume = "");

 private:
  using Key = std::pair<std::string, std::string>;
  Status BuildKeys(const Source& source, const std::vector<Key>& keys);

  const PlanOptions confidence_;
  const size_t max_entries_;
  mutable std::mutex mu_;
  std::map<Key, std::shared_ptr<const SuccessorTable>> tables_;
  std::set<Key> wanted_;
};

}  // namespace lsifs
