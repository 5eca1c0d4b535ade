#include "core/service/successors.h"

#include <vector>

namespace lsifs {

std::shared_ptr<const SuccessorTable> SuccessorCache::Get(const std::string& extension,
                                                          const std::string& volume) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tables_.find({extension, volume});
  if (it != tables_.end()) return it->second;
  wanted_.insert({extension, volume});
  return nullptr;
}

bool SuccessorCache::Wanted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !wanted_.empty();
}

Status SuccessorCache::Build(const Source& source, const std::string& volume) {
  std::vector<Key> keys;
  {
    std::lock_guard<std::mutex> lock(mu_);
    keys.assign(wanted_.begin(), wanted_.end());
    for (const auto& [key, table] : tables_) {
      if (!volume.empty() && key.second == volume) keys.push_back(key);
    }
  }
  return BuildKeys(source, keys);
}

Status SuccessorCache::Refresh(const Source& source) {
  std::vector<Key> keys;
  {
    std::lock_guard<std::mutex> lock(mu_);
    keys.assign(wanted_.begin(), wanted_.end());
    for (const auto& [key, table] : tables_) keys.push_back(key);
  }
  return BuildKeys(source, keys);
}

Status SuccessorCache::BuildKeys(const Source& source, const std::vector<Key>& keys) {
  Status first = Status::Ok();
  for (const auto& key : keys) {
    auto table = std::make_shared<SuccessorTable>();
    Status s = source(key.first, key.second, table.get());
    if (!s.ok()) {
      if (first.ok()) first = s;
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    tables_[key] = std::move(table);
    wanted_.erase(key);
  }
  return first;
}

void SuccessorCache::Build(AccessDb& db, const std::string& volume) {
  // A volume without a model yet has an empty table: nothing to follow.
  (void)Build(
      [&](const std::string& extension, const std::string& vol, SuccessorTable* out) {
        ModelView own, all;
        if (db.LoadModel(extension, vol, &own.meta, &own.blocks).ok() &&
            db.LoadModel(kAllExtensions, vol, &all.meta, &all.blocks).ok()) {
          *out = BuildSuccessorTable(own, all, db.params(), confidence_, max_entries_);
        }
        return Status::Ok();
      },
      volume);
}

}  // namespace lsifs
