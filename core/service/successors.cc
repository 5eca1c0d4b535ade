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

void SuccessorCache::Build(AccessDb& db, const std::string& volume) {
  std::vector<Key> keys;
  {
    std::lock_guard<std::mutex> lock(mu_);
    keys.assign(wanted_.begin(), wanted_.end());
    for (const auto& [key, table] : tables_) {
      if (!volume.empty() && key.second == volume) keys.push_back(key);
    }
  }
  for (const auto& key : keys) {
    ModelView own, all;
    auto table = std::make_shared<SuccessorTable>();
    if (db.LoadModel(key.first, key.second, &own.meta, &own.blocks).ok() &&
        db.LoadModel(kAllExtensions, key.second, &all.meta, &all.blocks).ok()) {
      *table = BuildSuccessorTable(own, all, db.params(), confidence_, max_entries_);
    }
    std::lock_guard<std::mutex> lock(mu_);
    tables_[key] = std::move(table);
    wanted_.erase(key);
  }
}

}  // namespace lsifs
