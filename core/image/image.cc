#include "core/image/image.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/util/hex.h"

namespace lsifs {
namespace {

// Bytes handled per round of a request (FUSE sends at most 1 MiB); one more
// block for an unaligned start.
constexpr size_t kRoundBytes = 1 << 20;
size_t RoundBlocks(uint32_t block_size) {
  return kRoundBytes / block_size + 1;
}

// The spill's key is bound to the extension and the LSI by derivation;
// each record to its block by this.
size_t SpillAad(uint64_t block, uint8_t (&aad)[24]) {
  std::memcpy(aad, "lsifs spill v2\0\0", 16);
  EncodeFixed64(aad + 16, block);
  return sizeof aad;
}

}  // namespace

// Per-thread buffers, sized on first use and reused for every request.
struct LsiImage::Scratch {
  Aead aead;
  Bytes record;
  Bytes block;
  Bytes fetched;
  std::vector<uint8_t*> outs;
  std::vector<uint64_t> miss_blocks, miss_indexes, claim_blocks, claim_indexes;
  // Where each block of the current round comes from, found once per round.
  std::vector<const DeltaEntry*> delta;
  std::vector<int64_t> present;
  std::vector<uint8_t> waited;  // the block's read waits on the origin

  void Fit(uint32_t block_size) {
    if (block.size() == block_size) return;
    record.resize(block_size + kSealOverhead);
    block.resize(block_size);
    const size_t round = RoundBlocks(block_size);
    // A request carries a round's blocks and the successors expansion adds.
    const size_t request = round + kMaxExpandPerMiss;
    fetched.resize(request * block_size);
    outs.resize(request);
    delta.resize(round);
    present.resize(round);
    waited.resize(round);
    for (auto* v : {&miss_blocks, &miss_indexes}) v->reserve(round);
    for (auto* v : {&claim_blocks, &claim_indexes}) v->reserve(request);
  }
};

LsiImage::LsiImage(const ImageOptions& options, Manifest manifest)
    : options_(options),
      manifest_(std::move(manifest)),
      block_size_(manifest_.block_size),
      block_count_((manifest_.volume_size + block_size_ - 1) / block_size_),
      lsi_counters_(block_count_, 0),
      session_counters_(block_count_, 0) {}

LsiImage::~LsiImage() {
  {
    std::lock_guard<std::mutex> lock(follow_mu_);
    stopping_ = true;
  }
  follow_cv_.notify_all();
  if (continuation_.joinable()) continuation_.join();
  if (hydration_.joinable()) hydration_.join();
}

void LsiImage::SetSuccessors(std::shared_ptr<const SuccessorTable> table) {
  successors_.store(std::move(table));
}

void LsiImage::StartSession(AccessRecorder* recorder, int handle) {
  session_counters_.Reset();
  session_expanded_bytes_.store(0, std::memory_order_relaxed);
  session_handle_.store(handle, std::memory_order_relaxed);
  recorder_.store(recorder, std::memory_order_release);
}

std::string LsiImage::id() const {
  return FormatId(manifest_.lsi_id);
}

void LsiImage::Log(const std::string& line) const {
  log_limit_.Log(options_.log, line);
}

Status LsiImage::Open(const Store& store, Manifest m, const ExtensionKeys& keys, Origin& origin,
                      const ImageOptions& options, std::unique_ptr<LsiImage>* out) {
  const bool made_with_next = keys.has_next && m.key_id == keys.next_info.id;
  if (m.extension != keys.info.name || (m.key_id != keys.info.id && !made_with_next)) {
    return Status::Permission("LSI " + FormatId(m.lsi_id) + " was not made for " +
                              DescribeKey(keys.info));
  }
  const SecretKey& manifest_key = made_with_next ? keys.next_key : keys.key;
  if (!IsValidBlockSize(m.block_size)) {
    return Status::Corruption("LSI " + FormatId(m.lsi_id) + ": bad block size");
  }
  std::unique_ptr<OriginSnapshot> base;
  LSIFS_RETURN_IF_ERROR(origin.OpenSnapshot(m.volume, m.snapshot, &base)
                            .WithContext("LSI " + FormatId(m.lsi_id) + " base snapshot"));
  if (base->info().size != m.volume_size || base->info().block_size != m.block_size) {
    return Status::Corruption("LSI " + FormatId(m.lsi_id) +
                              ": geometry differs from its base snapshot");
  }
  std::unique_ptr<LsiImage> img(new LsiImage(options, std::move(m)));
  const Manifest& man = img->manifest_;
  img->base_ = std::move(base);

  std::vector<DeltaEntry> entries;
  for (uint32_t li = 0; li < man.layers.size(); ++li) {
    const ManifestLayer& ml = man.layers[li];
    if (options.layers_arrive_later && !PathExists(store.layer_path(ml.layer_id))) {
      // Its blocks shadow lower layers' (they may hold older versions) and
      // are then read from the base: see ImageOptions::layers_arrive_later.
      for (uint64_t b : ml.blocks) entries.push_back({b, li, kPendingSlot});
      img->layers_.push_back(nullptr);
      ++img->pending_layers_;
      continue;
    }
    std::unique_ptr<LayerReader> reader;
    Status s = keys.WithEither([&](const KeyInfo& info, const SecretKey& key) {
      return LayerReader::Open(store.layer_path(ml.layer_id), info, key, &reader);
    });
    if (s.ok()) {
      const LayerHeader& h = reader->header();
      std::vector<uint64_t> sorted = reader->blocks();
      std::sort(sorted.begin(), sorted.end());
      if (h.layer_id != ml.layer_id || h.volume != man.volume || h.snapshot != man.snapshot ||
          h.block_size != man.block_size || sorted != ml.blocks) {
        s = Status::Corruption("layer file does not match the manifest (swapped or replaced)");
      }
    }
    if (!s.ok()) {
      img->Log("LSI " + img->id() + " layer " + FormatId(ml.layer_id) +
               ": unavailable, its blocks will fail to read: " + s.message());
      for (uint64_t b : ml.blocks) entries.push_back({b, li, UINT64_MAX});
      img->layers_.push_back(nullptr);
      continue;
    }
    const auto& blocks = reader->blocks();
    for (uint64_t slot = 0; slot < blocks.size(); ++slot)
      entries.push_back({blocks[slot], li, slot});
    img->layers_.push_back(std::move(reader));
  }
  // Topmost layer first within a block, then keep one entry per block.
  std::sort(entries.begin(), entries.end(), [](const DeltaEntry& a, const DeltaEntry& b) {
    return a.block != b.block ? a.block < b.block : a.layer > b.layer;
  });
  entries.erase(
      std::unique(entries.begin(), entries.end(),
                  [](const DeltaEntry& a, const DeltaEntry& b) { return a.block == b.block; }),
      entries.end());
  for (const auto& e : entries) {
    if (e.block >= img->block_count_) {
      return Status::Corruption("LSI " + img->id() +
                                ": a layer holds a block past the volume's end");
    }
  }
  if (img->pending_layers_ > 0) {
    entries.erase(std::remove_if(entries.begin(), entries.end(),
                                 [](const DeltaEntry& e) { return e.slot == kPendingSlot; }),
                  entries.end());
    img->Log("LSI " + img->id() + ": " + std::to_string(img->pending_layers_) +
             " layer(s) not pulled yet; their blocks are read from the base meanwhile");
  }
  img->delta_ = std::move(entries);
  img->lsi_counters_.SetPrefetchedBlocks(img->delta_.size());
  img->session_counters_.SetPrefetchedBlocks(img->delta_.size());

  size_t present = img->base_->present().size();
  img->base_state_.reset(new std::atomic<uint8_t>[present]);
  for (size_t i = 0; i < present; ++i)
    img->base_state_[i].store(kAbsent, std::memory_order_relaxed);
  if (options.expansion.enabled) {
    img->expanded_.reset(new std::atomic<uint8_t>[present]);
    for (size_t i = 0; i < present; ++i) img->expanded_[i].store(0, std::memory_order_relaxed);
    if (options.expansion.origin != nullptr) {
      LSIFS_RETURN_IF_ERROR(options.expansion.origin->OpenSnapshot(
          img->manifest_.volume, img->manifest_.snapshot, &img->expansion_base_));
    }
    img->continuation_ = std::thread([raw = img.get()] { raw->ContinuationLoop(); });
  }
  // The local copy of fetched base blocks outlives the daemon: what an
  // earlier mount fetched is not fetched again. Records found there are
  // checked when read; one that fails is fetched again.
  int fd = -1;
  bool persist = options.persist_spill;
  std::string spill = store.spill_path(man.lsi_id, keys.info.name);
  if (options.persist_spill) {
    fd = ::open(spill.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  } else {
    spill = store.tmp_dir();
    fd = ::open(spill.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  }
  if (fd < 0) {
    // Not fatal: the image works without keeping what it fetches for the
    // next mount.
    img->Log("LSI " + img->id() + ": " +
             Status::FromErrno("opening the local block file " + spill, errno).message() +
             "; fetched blocks are kept in memory until the image is released");
    fd = ::memfd_create("lsifs-spill", MFD_CLOEXEC);
    if (fd < 0) return Status::FromErrno("memory spill", errno);
    persist = false;
  }
  img->spill_ = File(fd);
  img->spill_key_ = persist ? DeriveKey(manifest_key, "lsifs spill v2 " + FormatId(man.lsi_id))
                            : SecretKey::Random();
  // Each record starts a filesystem block of its own (SpillStride), so the
  // file's allocated ranges tell exactly which were written.
  const off_t stride = static_cast<off_t>(img->SpillStride());
  const off_t record = static_cast<off_t>(img->block_size_ + kSealOverhead);
  for (off_t at = 0;;) {
    off_t data = ::lseek(fd, at, SEEK_DATA);
    if (data < 0) break;
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) break;
    for (off_t slot = (data + stride - 1) / stride; slot * stride + record <= hole; ++slot) {
      if (static_cast<size_t>(slot) < present) {
        img->base_state_[static_cast<size_t>(slot)].store(kLocal, std::memory_order_relaxed);
      }
    }
    at = hole;
  }
  if (options.hydrate) {
    if (options.hydrate_origin != nullptr) {
      LSIFS_RETURN_IF_ERROR(options.hydrate_origin->OpenSnapshot(
          img->manifest_.volume, img->manifest_.snapshot, &img->hydrate_base_));
    }
    img->hydration_ = std::thread([raw = img.get()] { raw->HydrationLoop(); });
  }
  *out = std::move(img);
  return Status::Ok();
}

std::pair<uint64_t, uint64_t> LsiImage::LocalBaseBlocks() const {
  // Of the blocks the delta layers do not hold.
  const auto& present = base_->present();
  uint64_t local = 0, base = 0;
  for (size_t i = 0; i < present.size(); ++i) {
    if (FindDelta(present[i]) != nullptr) continue;
    ++base;
    if (IsLocal(base_state_[i].load(std::memory_order_relaxed))) ++local;
  }
  return {local, base};
}

void LsiImage::HydrationLoop() {
  thread_local Scratch scratch;
  Scratch& s = scratch;
  s.Fit(block_size_);
  const auto& present = base_->present();
  OriginSnapshot& origin = hydrate_base_ ? *hydrate_base_ : *base_;
  std::vector<uint64_t> blocks, indexes;
  for (size_t i = 0; i < present.size() && !stopping_.load();) {
    blocks.clear();
    indexes.clear();
    for (; i < present.size() && blocks.size() < kMaxExpandPerMiss; ++i) {
      if (FindDelta(present[i]) != nullptr) continue;  // local in a delta layer
      uint8_t expected = kAbsent;
      if (base_state_[i].compare_exchange_strong(expected, kFetching, std::memory_order_acq_rel)) {
        blocks.push_back(present[i]);
        indexes.push_back(i);
      }
    }
    if (!blocks.empty() &&
        !FetchClaimed(origin, blocks.data(), indexes.data(), blocks.size(), blocks.size(), s)
             .ok()) {
      return;  // logged; the blocks stay for demand reads
    }
  }
}

const LsiImage::DeltaEntry* LsiImage::FindDelta(uint64_t block) const {
  auto it = std::lower_bound(delta_.begin(), delta_.end(), block,
                             [](const DeltaEntry& e, uint64_t b) { return e.block < b; });
  return (it != delta_.end() && it->block == block) ? &*it : nullptr;
}

int64_t LsiImage::PresentIndex(uint64_t block) const {
  const auto& p = base_->present();
  auto it = std::lower_bound(p.begin(), p.end(), block);
  return (it != p.end() && *it == block) ? static_cast<int64_t>(it - p.begin()) : -1;
}

Status LsiImage::ReadDelta(const DeltaEntry& e, Scratch& s, uint8_t* block_out) {
  const LayerReader* layer = layers_[e.layer].get();
  Status st = layer == nullptr
                  ? Status::Corruption("its layer is unavailable")
                  : layer->ReadBlock(e.slot, e.block, s.aead,
                                     MutableByteSpan(s.record.data(), layer->record_size()),
                                     MutableByteSpan(block_out, block_size_));
  if (!st.ok()) {
    Log("LSI " + id() + " layer " + FormatId(manifest_.layers[e.layer].layer_id) + " block " +
        std::to_string(e.block) + ": " + st.message());
    return Status::Corruption("block " + std::to_string(e.block) + " of layer " +
                              FormatId(manifest_.layers[e.layer].layer_id) + " unreadable");
  }
  return Status::Ok();
}

Status LsiImage::ReadLocalBase(uint64_t block, uint64_t index, Scratch& s, uint8_t* block_out) {
  MutableByteSpan record(s.record.data(), block_size_ + kSealOverhead);
  uint8_t aad[24];
  Status st;
  if (base_state_[index].load(std::memory_order_acquire) == kInMemory) {
    std::lock_guard<std::mutex> lock(memory_spill_mu_);
    auto it = memory_spill_.find(index);
    if (it == memory_spill_.end() || it->second.size() != record.size()) {
      st = Status::Corruption("not in memory");
    } else {
      std::copy(it->second.begin(), it->second.end(), record.begin());
    }
  } else {
    st = spill_.PreadExact(index * SpillStride(), record);
  }
  if (st.ok())
    st = s.aead.Open(spill_key_, ByteSpan(aad, SpillAad(block, aad)), record,
                     MutableByteSpan(block_out, block_size_));
  if (!st.ok()) {
    Log("LSI " + id() + " base block " + std::to_string(block) + " (local copy): " + st.message());
  }
  return st;
}

bool LsiImage::TakeBudget(uint64_t bytes) {
  uint64_t used = session_expanded_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  if (used + bytes <= options_.expansion.session_budget) return true;
  session_expanded_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  return false;
}

bool LsiImage::Claim(uint64_t block, std::vector<uint64_t>* blocks, std::vector<uint64_t>* indexes,
                     size_t cap) {
  if (blocks->size() >= cap || block >= block_count_ || FindDelta(block) != nullptr) return false;
  int64_t idx = PresentIndex(block);
  if (idx < 0) return false;
  std::atomic<uint8_t>& st = base_state_[static_cast<size_t>(idx)];
  uint8_t expected = kAbsent;
  if (st.load(std::memory_order_relaxed) != kAbsent || !TakeBudget(block_size_)) return false;
  if (!st.compare_exchange_strong(expected, kFetching, std::memory_order_acq_rel)) {
    session_expanded_bytes_.fetch_sub(block_size_, std::memory_order_relaxed);
    return false;
  }
  blocks->push_back(block);
  indexes->push_back(static_cast<uint64_t>(idx));
  return true;
}

void LsiImage::ClaimSuccessors(const SuccessorTable& table, Scratch& s) {
  const size_t demand = s.claim_blocks.size();
  const size_t cap = demand + std::min(options_.expansion.per_miss, kMaxExpandPerMiss);
  for (size_t i = 0; i < demand && s.claim_blocks.size() < cap; ++i) {
    for (uint64_t next : table.Of(s.claim_blocks[i])) {
      if (s.claim_blocks.size() >= cap) break;
      (void)Claim(next, &s.claim_blocks, &s.claim_indexes, cap);
    }
  }
}

Status LsiImage::FetchClaimed(OriginSnapshot& from, const uint64_t* blocks, const uint64_t* indexes,
                              size_t n, size_t first_expanded, Scratch& s) {
  for (size_t i = 0; i < n; ++i) s.outs[i] = s.fetched.data() + i * block_size_;
  Status fetched =
      from.Fetch(std::span<const uint64_t>(blocks, n), std::span<uint8_t* const>(s.outs.data(), n));
  uint64_t bytes = n * block_size_;
  lsi_counters_.CountOriginRequest(bytes);
  session_counters_.CountOriginRequest(bytes);
  MutableByteSpan record(s.record.data(), block_size_ + kSealOverhead);
  uint64_t expanded = 0;
  for (size_t i = 0; i < n; ++i) {
    Status st = fetched;
    uint8_t local = kLocal;
    if (st.ok()) {
      uint8_t aad[24];
      (void)s.aead.Seal(spill_key_, ByteSpan(aad, SpillAad(blocks[i], aad)),
                        ByteSpan(s.outs[i], block_size_), record);
      const uint64_t at = indexes[i] * SpillStride();
      st = spill_failing_.load(std::memory_order_relaxed) ? Status::IOError("failing")
                                                          : spill_.PwriteAll(at, record);
      if (!st.ok()) {
        if (!spill_failing_.exchange(true)) {
          Log("LSI " + id() + " local block file: " + st.message() +
              "; fetched blocks are kept in memory until the image is released");
        }
        WriteMemorySpill(indexes[i], record);
        st = Status::Ok();
        local = kInMemory;
      }
    }
    if (st.ok() && i >= first_expanded) {
      expanded_[indexes[i]].store(1, std::memory_order_relaxed);
      ++expanded;
    }
    std::atomic<uint8_t>& state = base_state_[indexes[i]];
    state.store(st.ok() ? local : static_cast<uint8_t>(kAbsent), std::memory_order_release);
    state.notify_all();
    if (!st.ok() && fetched.ok()) fetched = st;
  }
  if (expanded > 0) {
    lsi_counters_.CountExpanded(expanded);
    session_counters_.CountExpanded(expanded);
  }
  if (!fetched.ok()) {
    Log("LSI " + id() + " base fetch of " + std::to_string(n) + " blocks from " +
        std::to_string(blocks[0]) + ": " + fetched.message());
    return Status::Corruption("base fetch failed");
  }
  return Status::Ok();
}

void LsiImage::WriteMemorySpill(uint64_t index, ByteSpan record) {
  std::lock_guard<std::mutex> lock(memory_spill_mu_);
  memory_spill_[index].assign(record.begin(), record.end());
}

Status LsiImage::EnsureLocal(const uint64_t* blocks, const uint64_t* indexes, size_t n, Scratch& s,
                             bool* stalled, bool* late) {
  for (;;) {
    s.claim_blocks.clear();
    s.claim_indexes.clear();
    bool waiting = false;
    for (size_t i = 0; i < n; ++i) {
      std::atomic<uint8_t>& st = base_state_[indexes[i]];
      uint8_t expected = kAbsent;
      if (st.compare_exchange_strong(expected, kFetching, std::memory_order_acq_rel)) {
        s.claim_blocks.push_back(blocks[i]);
        s.claim_indexes.push_back(indexes[i]);
      } else if (expected == kFetching) {
        waiting = true;
      }
    }
    if (!s.claim_blocks.empty()) {
      *stalled = true;
      const size_t demand = s.claim_blocks.size();
      if (expanded_) {
        // One request brings the block and what followed it before.
        std::shared_ptr<const SuccessorTable> table = successors_.load();
        if (table) ClaimSuccessors(*table, s);
        if (s.claim_blocks.size() > demand) {
          Follow(s.claim_blocks[0]);
        }
      }
      LSIFS_RETURN_IF_ERROR(FetchClaimed(*base_, s.claim_blocks.data(), s.claim_indexes.data(),
                                         s.claim_blocks.size(), demand, s));
    }
    if (!waiting) return Status::Ok();
    *stalled = true;
    *late = true;
    bool retry = false;
    for (size_t i = 0; i < n; ++i) {
      std::atomic<uint8_t>& st = base_state_[indexes[i]];
      uint8_t v;
      while ((v = st.load(std::memory_order_acquire)) == kFetching) st.wait(kFetching);
      if (v == kAbsent) retry = true;  // its fetcher failed; try ourselves
    }
    if (!retry) return Status::Ok();
  }
}

Status LsiImage::RefetchBase(uint64_t block, uint64_t index, Scratch& s, uint8_t* out) {
  // The local copy failed its check (damaged, or torn by a writer that
  // died): fetch the block again, once.
  for (uint8_t expected : {kLocal, kInMemory}) {
    base_state_[index].compare_exchange_strong(expected, kAbsent, std::memory_order_acq_rel);
  }
  bool stalled = false, late = false;
  LSIFS_RETURN_IF_ERROR(EnsureLocal(&block, &index, 1, s, &stalled, &late));
  return ReadLocalBase(block, index, s, out);
}

void LsiImage::Follow(uint64_t block) {
  std::unique_lock<std::mutex> lock(follow_mu_, std::try_to_lock);
  if (!lock.owns_lock() || follow_size_ == kFollowRing) return;  // never wait on the read path
  follow_ring_[(follow_head_ + follow_size_++) % kFollowRing] = block;
  follow_cv_.notify_one();
}

void LsiImage::NoteExpandedRead(uint64_t block, uint64_t index) {
  // A load first: most reads are of blocks expansion did not bring, and
  // they must not all write to the flags.
  if (expanded_[index].load(std::memory_order_relaxed) == 0 ||
      expanded_[index].exchange(0, std::memory_order_relaxed) == 0) {
    return;
  }
  lsi_counters_.CountExpandedRead();
  session_counters_.CountExpandedRead();
  // The session reads the cluster: follow it further.
  Follow(block);
}

void LsiImage::ContinuationLoop() {
  thread_local Scratch scratch;
  Scratch& s = scratch;
  s.Fit(block_size_);
  std::vector<uint64_t> blocks, indexes;
  blocks.reserve(options_.expansion.ahead);
  indexes.reserve(options_.expansion.ahead);
  for (;;) {
    uint64_t from;
    {
      std::unique_lock<std::mutex> lock(follow_mu_);
      follow_cv_.wait(lock, [&] { return stopping_.load() || follow_size_ > 0; });
      if (stopping_) return;
      from = follow_ring_[follow_head_];
      follow_head_ = (follow_head_ + 1) % kFollowRing;
      --follow_size_;
    }
    std::shared_ptr<const SuccessorTable> table = successors_.load();
    if (!table) continue;
    // Two levels of the cluster past the block read: those the demand
    // request brought are local already and only lead further.
    blocks.clear();
    indexes.clear();
    const size_t cap = options_.expansion.ahead;
    const std::span<const uint64_t> level = table->Of(from);
    for (uint64_t next : level) (void)Claim(next, &blocks, &indexes, cap);
    for (uint64_t next : level) {
      for (uint64_t after : table->Of(next)) (void)Claim(after, &blocks, &indexes, cap);
    }
    OriginSnapshot& origin = expansion_base_ ? *expansion_base_ : *base_;
    for (size_t at = 0; at < blocks.size(); at += kMaxExpandPerMiss) {
      size_t n = std::min(kMaxExpandPerMiss, blocks.size() - at);
      (void)FetchClaimed(origin, blocks.data() + at, indexes.data() + at, n, 0, s);
    }
  }
}

Status LsiImage::Read(uint64_t offset, MutableByteSpan out, size_t* done) {
  *done = 0;
  lsi_counters_.CountRead();
  session_counters_.CountRead();
  if (offset >= size() || out.empty()) return Status::Ok();
  const uint64_t len = std::min<uint64_t>(out.size(), size() - offset);
  thread_local Scratch scratch;
  Scratch& s = scratch;
  s.Fit(block_size_);
  BlockCache* const cache = options_.cache != nullptr && options_.cache->block_size() == block_size_
                                ? options_.cache
                                : nullptr;
  auto fail = [&](Status st) {
    lsi_counters_.CountError();
    session_counters_.CountError();
    return st;
  };

  uint64_t pos = 0;
  while (pos < len) {
    const uint64_t first = (offset + pos) / block_size_;
    const uint64_t last =
        std::min((offset + len - 1) / block_size_, first + RoundBlocks(block_size_) - 1);

    // Base blocks not yet local: fetch them in one origin request.
    s.miss_blocks.clear();
    s.miss_indexes.clear();
    for (uint64_t b = first; b <= last; ++b) {
      const DeltaEntry* d = s.delta[b - first] = FindDelta(b);
      int64_t idx = s.present[b - first] = d ? -1 : PresentIndex(b);
      s.waited[b - first] = 0;
      if (idx >= 0 &&
          !IsLocal(base_state_[static_cast<size_t>(idx)].load(std::memory_order_acquire))) {
        s.miss_blocks.push_back(b);
        s.miss_indexes.push_back(static_cast<uint64_t>(idx));
        s.waited[b - first] = 1;
      }
    }
    if (!s.miss_blocks.empty()) {
      bool stalled = false, late = false;
      // The clock is read only when a block is missing (never for a read
      // the layers, the cache or the local copy serve).
      const auto started = options_.origin_waits ? std::chrono::steady_clock::now()
                                                 : std::chrono::steady_clock::time_point();
      Status st = EnsureLocal(s.miss_blocks.data(), s.miss_indexes.data(), s.miss_blocks.size(), s,
                              &stalled, &late);
      if (options_.origin_waits != nullptr && (stalled || late)) {
        options_.origin_waits->Observe(std::chrono::steady_clock::now() - started);
      }
      if (stalled) {
        lsi_counters_.CountStall();
        session_counters_.CountStall();
      }
      if (late) {
        lsi_counters_.CountLateRead();
        session_counters_.CountLateRead();
      }
      if (!st.ok()) return fail(st);
    }

    for (uint64_t b = first; b <= last; ++b) {
      const uint64_t block_start = b * block_size_;
      const uint64_t from = std::max(block_start, offset + pos);
      const uint64_t to = std::min(block_start + block_size_, offset + len);
      const uint32_t in_off = static_cast<uint32_t>(from - block_start);
      const uint32_t n = static_cast<uint32_t>(to - from);
      uint8_t* dst = out.data() + (from - offset);
      const bool whole = n == block_size_;

      const DeltaEntry* d = s.delta[b - first];
      const int64_t idx = s.present[b - first];
      BlockSource source = d          ? BlockSource::kDelta
                           : idx >= 0 ? BlockSource::kBase
                                      : BlockSource::kZero;
      if (source == BlockSource::kZero) {
        std::memset(dst, 0, n);
      } else if (cache == nullptr || !cache->Get(manifest_.lsi_id, b, in_off, n, dst)) {
        uint8_t* target = whole ? dst : s.block.data();
        Status st =
            d ? ReadDelta(*d, s, target) : ReadLocalBase(b, static_cast<uint64_t>(idx), s, target);
        if (!st.ok() && !d) st = RefetchBase(b, static_cast<uint64_t>(idx), s, target);
        if (!st.ok()) return fail(st);
        if (!whole) {
          std::memcpy(dst, s.block.data() + in_off, n);
          // Partial reads are the random ones that come back for the rest.
          if (cache != nullptr) cache->Put(manifest_.lsi_id, b, s.block.data());
        }
      }
      const bool waited = s.waited[b - first] != 0;
      if (expanded_ && idx >= 0) NoteExpandedRead(b, static_cast<uint64_t>(idx));
      lsi_counters_.CountBlock(b, source, waited);
      if (session_counters_.CountBlock(b, source, waited)) {
        if (AccessRecorder* r = recorder_.load(std::memory_order_relaxed)) {
          r->Record(session_handle_.load(std::memory_order_relaxed), b);
        }
      }
    }
    pos = std::min(len, (last + 1) * block_size_ - offset);
  }
  *done = static_cast<size_t>(len);
  return Status::Ok();
}

}  // namespace lsifs
