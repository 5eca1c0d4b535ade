#include "core/origin/snapshot.h"

#include <dirent.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "core/util/hex.h"
#include "core/util/names.h"

namespace lsifs {
namespace {

constexpr char kMapMagic[8] = {'L', 'S', 'I', 'F', 'S', 'S', 'N', 'P'};
constexpr char kMapEndMagic[8] = {'L', 'S', 'I', 'F', 'S', 'E', 'N', 'D'};
constexpr uint32_t kMapVersion = 1;
constexpr size_t kEntrySize = 8 + 8 + 8 + kDigestSize;
// entry count, stored blocks, entries MAC, info MAC, end magic
constexpr size_t kTrailerSize = 8 + 8 + kMacSize + kMacSize + 8;
constexpr size_t kMaxHeaderSize = 8 + 4 + 4 + 2 + kMaxNameLength + 8 * 4 + 4;
constexpr size_t kReadChunkEntries = 4096;

constexpr char kDataMagic[8] = {'L', 'S', 'I', 'F', 'S', 'D', 'A', 'T'};
constexpr uint32_t kDataVersion = 1;
constexpr uint64_t kDataHeaderSize = 8 + 4 + 4 + 8;

Bytes EncodeMapHeader(const SnapshotInfo& info) {
  ByteWriter w;
  w.PutBytes(AsBytes(std::string_view(kMapMagic, 8)));
  w.PutU32(kMapVersion);
  w.PutU32(0);  // header length, patched below
  w.PutString16(info.volume);
  w.PutU64(info.id);
  w.PutU64(info.parent);
  w.PutU64(info.size);
  w.PutU32(info.block_size);
  w.PutU64(static_cast<uint64_t>(info.created_us));
  EncodeFixed32(w.bytes().data() + 12, static_cast<uint32_t>(w.size()));
  return std::move(w.bytes());
}

void EncodeEntry(const BlockLocation& loc, uint8_t* p) {
  EncodeFixed64(p, loc.block);
  EncodeFixed64(p + 8, loc.source);
  EncodeFixed64(p + 16, loc.slot);
  std::memcpy(p + 24, loc.digest.data(), kDigestSize);
}

void DecodeEntry(const uint8_t* p, BlockLocation* loc) {
  loc->block = DecodeFixed64(p);
  loc->source = DecodeFixed64(p + 8);
  loc->slot = DecodeFixed64(p + 16);
  std::memcpy(loc->digest.data(), p + 24, kDigestSize);
}

// MAC over the facts: header, counts and the entries MAC.
std::array<uint8_t, kMacSize> InfoMac(const OriginKeys& keys, ByteSpan header,
                                      ByteSpan trailer_counts_and_entries_mac) {
  Mac mac(keys.map);
  mac.Update(header);
  mac.Update(trailer_counts_and_entries_mac);
  return mac.Final();
}

struct OpenedMap {
  File file;
  SnapshotInfo info;
  uint64_t header_size = 0;
  uint64_t entry_count = 0;
  std::array<uint8_t, kMacSize> entries_mac{};
};

Status OpenMap(const std::string& path, const OriginKeys& keys, OpenedMap* m) {
  LSIFS_RETURN_IF_ERROR(File::OpenRead(path, &m->file));
  uint64_t file_size = 0;
  LSIFS_RETURN_IF_ERROR(m->file.Size(&file_size));
  auto corrupt = [&](const std::string& why) {
    return Status::Corruption("snapshot file " + path + ": " + why);
  };
  if (file_size < 16 + kTrailerSize) return corrupt("truncated");
  uint8_t head[kMaxHeaderSize];
  size_t head_len = static_cast<size_t>(std::min<uint64_t>(sizeof head, file_size - kTrailerSize));
  LSIFS_RETURN_IF_ERROR(m->file.PreadExact(0, MutableByteSpan(head, head_len)).WithContext(path));
  if (std::memcmp(head, kMapMagic, 8) != 0) return corrupt("not an lsifs snapshot file");
  ByteReader r(ByteSpan(head, head_len));
  r.GetBytes(8);
  uint32_t version = r.GetU32();
  if (version != kMapVersion) {
    return UnsupportedVersion("snapshot file " + path, version, 1, kMapVersion);
  }
  uint32_t header_size = r.GetU32();
  if (header_size > head_len) return corrupt("bad header length");
  m->info.volume = r.GetString16();
  m->info.id = r.GetU64();
  m->info.parent = r.GetU64();
  m->info.size = r.GetU64();
  m->info.block_size = r.GetU32();
  m->info.created_us = static_cast<int64_t>(r.GetU64());
  if (!r.ok() || r.position() != header_size) return corrupt("malformed header");
  m->header_size = header_size;

  uint8_t trailer[kTrailerSize];
  LSIFS_RETURN_IF_ERROR(
      m->file.PreadExact(file_size - kTrailerSize, MutableByteSpan(trailer, kTrailerSize)));
  if (std::memcmp(trailer + kTrailerSize - 8, kMapEndMagic, 8) != 0) {
    return corrupt("truncated (no end marker)");
  }
  m->entry_count = DecodeFixed64(trailer);
  m->info.stored_blocks = DecodeFixed64(trailer + 8);
  std::memcpy(m->entries_mac.data(), trailer + 16, kMacSize);
  auto expected = InfoMac(keys, ByteSpan(head, header_size), ByteSpan(trailer, 16 + kMacSize));
  if (!EqualConstantTime(expected, ByteSpan(trailer + 16 + kMacSize, kMacSize))) {
    return corrupt("authentication failed (corrupt, or made with another provider key)");
  }
  if (m->entry_count > (file_size - header_size - kTrailerSize) / kEntrySize ||
      header_size + m->entry_count * kEntrySize + kTrailerSize != file_size) {
    return corrupt("truncated or extended");
  }
  if (!ValidateName("volume", m->info.volume).ok() || !IsValidBlockSize(m->info.block_size)) {
    return corrupt("bad volume name or block size");
  }
  m->info.present_blocks = m->entry_count;
  return Status::Ok();
}

}  // namespace

OriginKeys OriginKeys::Derive(const SecretKey& provider) {
  return OriginKeys{DeriveKey(provider, "lsifs origin block key v1"),
                    DeriveKey(provider, "lsifs origin map key v1"),
                    DeriveKey(provider, "lsifs origin digest key v1")};
}

size_t OriginBlockAad(const std::string& volume, uint64_t snapshot, uint64_t block,
                      std::array<uint8_t, 128>* aad) {
  static constexpr char kLabel[] = "lsifs origin block v1";
  uint8_t* p = aad->data();
  std::memcpy(p, kLabel, sizeof kLabel - 1);
  p += sizeof kLabel - 1;
  size_t n = std::min(volume.size(), kMaxNameLength);
  p[0] = static_cast<uint8_t>(n);
  p[1] = static_cast<uint8_t>(n >> 8);
  std::memcpy(p + 2, volume.data(), n);
  p += 2 + n;
  EncodeFixed64(p, snapshot);
  EncodeFixed64(p + 8, block);
  p += 16;
  return static_cast<size_t>(p - aad->data());
}

Status ReadSnapshotInfo(const std::string& path, const OriginKeys& keys, SnapshotInfo* info) {
  OpenedMap m;
  LSIFS_RETURN_IF_ERROR(OpenMap(path, keys, &m));
  *info = m.info;
  return Status::Ok();
}

Status ListSnapshots(const Store& store, const OriginKeys& keys, const std::string& volume,
                     std::vector<SnapshotInfo>* out, std::vector<std::string>* damaged) {
  out->clear();
  if (damaged != nullptr) damaged->clear();
  std::vector<std::string> volumes;
  if (!volume.empty()) {
    LSIFS_RETURN_IF_ERROR(ValidateName("volume", volume));
    volumes.push_back(volume);
  } else {
    DIR* d = ::opendir(store.snapshots_dir().c_str());
    if (d == nullptr) return Status::FromErrno(store.snapshots_dir(), errno);
    while (struct dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.' && e->d_type == DT_DIR) volumes.emplace_back(e->d_name);
    }
    ::closedir(d);
  }
  for (const auto& v : volumes) {
    DIR* d = ::opendir(store.volume_dir(v).c_str());
    if (d == nullptr) {
      if (errno == ENOENT) continue;
      return Status::FromErrno(store.volume_dir(v), errno);
    }
    std::vector<std::string> files;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.size() == 16 + 5 && n.compare(16, 5, ".snap") == 0) files.push_back(n);
    }
    ::closedir(d);
    for (const auto& f : files) {
      const std::string path = store.volume_dir(v) + "/" + f;
      SnapshotInfo info;
      Status s = ReadSnapshotInfo(path, keys, &info);
      if (s.ok() && (info.volume != v || FormatId(info.id) + ".snap" != f)) {
        s = Status::Corruption("snapshot file " + path + " describes another snapshot");
      }
      if (!s.ok()) {
        if (damaged == nullptr) return s;
        damaged->push_back(s.message());
        continue;
      }
      out->push_back(std::move(info));
    }
  }
  std::sort(out->begin(), out->end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
    if (a.volume != b.volume) return a.volume < b.volume;
    if (a.created_us != b.created_us) return a.created_us < b.created_us;
    return a.id < b.id;
  });
  return Status::Ok();
}

Status SnapshotMapReader::Open(const std::string& path, const OriginKeys& keys) {
  OpenedMap m;
  LSIFS_RETURN_IF_ERROR(OpenMap(path, keys, &m));
  file_ = std::move(m.file);
  info_ = m.info;
  expected_mac_ = m.entries_mac;
  next_offset_ = m.header_size;
  entries_left_ = m.entry_count;
  mac_ = std::make_unique<Mac>(keys.map);
  buf_.clear();
  buf_pos_ = 0;
  last_block_ = 0;
  status_ = Status::Ok();
  return Status::Ok();
}

Status SnapshotMapReader::Refill() {
  uint64_t n = std::min<uint64_t>(entries_left_, kReadChunkEntries);
  buf_.resize(static_cast<size_t>(n) * kEntrySize);
  LSIFS_RETURN_IF_ERROR(file_.PreadExact(next_offset_, buf_));
  next_offset_ += buf_.size();
  mac_->Update(buf_);
  buf_pos_ = 0;
  return Status::Ok();
}

bool SnapshotMapReader::Next(BlockLocation* loc) {
  if (!status_.ok()) return false;
  if (buf_pos_ == buf_.size()) {
    if (entries_left_ == 0) {
      if (mac_) {
        auto got = mac_->Final();
        mac_.reset();
        if (!EqualConstantTime(got, expected_mac_)) {
          status_ = Status::Corruption("snapshot " + FormatId(info_.id) +
                                       ": block map failed authentication");
        }
      }
      return false;
    }
    status_ = Refill();
    if (!status_.ok()) return false;
  }
  DecodeEntry(buf_.data() + buf_pos_, loc);
  buf_pos_ += kEntrySize;
  bool first = entries_left_ == info_.present_blocks;
  --entries_left_;
  if ((!first && loc->block <= last_block_) || loc->block >= info_.block_count()) {
    status_ = Status::Corruption("snapshot " + FormatId(info_.id) + ": block map out of order");
    return false;
  }
  last_block_ = loc->block;
  return true;
}

Status SnapshotMapWriter::Open(const Store& store, const OriginKeys& keys,
                               const SnapshotInfo& info) {
  keys_ = &keys;
  info_ = info;
  header_ = EncodeMapHeader(info);
  mac_ = std::make_unique<Mac>(keys.map);
  LSIFS_RETURN_IF_ERROR(
      out_.Open(store.tmp_dir(), store.snapshot_map_path(info.volume, info.id), 0644));
  return out_.Write(header_);
}

Status SnapshotMapWriter::Add(const BlockLocation& loc) {
  size_t at = buf_.size();
  buf_.resize(at + kEntrySize);
  EncodeEntry(loc, buf_.data() + at);
  ++count_;
  if (buf_.size() >= kReadChunkEntries * kEntrySize) return Flush();
  return Status::Ok();
}

Status SnapshotMapWriter::Flush() {
  mac_->Update(buf_);
  Status s = out_.Write(buf_);
  buf_.clear();
  return s;
}

Status SnapshotMapWriter::Commit(uint64_t stored_blocks) {
  LSIFS_RETURN_IF_ERROR(Flush());
  uint8_t trailer[kTrailerSize];
  EncodeFixed64(trailer, count_);
  EncodeFixed64(trailer + 8, stored_blocks);
  auto entries_mac = mac_->Final();
  std::memcpy(trailer + 16, entries_mac.data(), kMacSize);
  auto info_mac = InfoMac(*keys_, header_, ByteSpan(trailer, 16 + kMacSize));
  std::memcpy(trailer + 16 + kMacSize, info_mac.data(), kMacSize);
  std::memcpy(trailer + 16 + 2 * kMacSize, kMapEndMagic, 8);
  LSIFS_RETURN_IF_ERROR(out_.Write(ByteSpan(trailer, kTrailerSize)));
  return out_.Commit(/*replace=*/false);
}

Bytes EncodeDataHeader(uint32_t block_size, uint64_t snapshot) {
  ByteWriter w;
  w.PutBytes(AsBytes(std::string_view(kDataMagic, 8)));
  w.PutU32(kDataVersion);
  w.PutU32(block_size);
  w.PutU64(snapshot);
  return std::move(w.bytes());
}

uint64_t DataRecordOffset(uint32_t block_size, uint64_t slot) {
  return kDataHeaderSize + slot * (block_size + kSealOverhead);
}

Status SnapshotBlocks::Open(const Store& store, const OriginKeys& keys, const std::string& volume,
                            uint64_t id, std::unique_ptr<SnapshotBlocks>* out) {
  auto sb = std::unique_ptr<SnapshotBlocks>(new SnapshotBlocks());
  sb->keys_ = &keys;
  SnapshotMapReader reader;
  LSIFS_RETURN_IF_ERROR(reader.Open(store.snapshot_map_path(volume, id), keys));
  sb->info_ = reader.info();
  if (sb->info_.volume != volume || sb->info_.id != id) {
    return Status::Corruption("snapshot file for " + FormatId(id) + " describes another snapshot");
  }
  sb->map_.reserve(static_cast<size_t>(sb->info_.present_blocks));
  BlockLocation loc;
  std::vector<uint64_t> sources;
  while (reader.Next(&loc)) {
    sb->map_.push_back(loc);
    if (std::find(sources.begin(), sources.end(), loc.source) == sources.end()) {
      sources.push_back(loc.source);
    }
  }
  LSIFS_RETURN_IF_ERROR(reader.status());
  for (uint64_t source : sources) {
    // Each data file holds exactly the records its snapshot's trailer
    // counts (authenticated): a record appended, or one cut off, is caught
    // here rather than trusted or found missing at a read. An earlier
    // snapshot whose map is gone (deleted, its blocks kept for this one) or
    // damaged does not make this one unreadable: its data file must then
    // hold whole records, every one this map points to (each is still
    // authenticated when read).
    bool exact = true;
    uint64_t stored = sb->info_.stored_blocks;
    if (source != id) {
      SnapshotInfo source_info;
      exact = ReadSnapshotInfo(store.snapshot_map_path(volume, source), keys, &source_info).ok() &&
              source_info.id == source && source_info.volume == volume;
      stored = exact ? source_info.stored_blocks : 0;
    }
    File f;
    std::string path = store.snapshot_data_path(volume, source);
    LSIFS_RETURN_IF_ERROR(File::OpenRead(path, &f));
    uint8_t head[kDataHeaderSize];
    LSIFS_RETURN_IF_ERROR(f.PreadExact(0, MutableByteSpan(head, sizeof head)).WithContext(path));
    const Bytes expected_head = EncodeDataHeader(sb->info_.block_size, source);
    if (!std::equal(head, head + 12, expected_head.begin())) {
      // Magic and version first: a data file of another format version is
      // told apart from one that is not a data file at all.
      if (std::equal(head, head + 8, expected_head.begin())) {
        return UnsupportedVersion("snapshot data file " + path, DecodeFixed32(head + 8), 1,
                                  kDataVersion);
      }
      return Status::Corruption(path + ": not an lsifs snapshot data file");
    }
    if (!std::equal(head, head + sizeof head, expected_head.begin())) {
      return Status::Corruption(path + ": not the data file of snapshot " + FormatId(source));
    }
    uint64_t size = 0;
    LSIFS_RETURN_IF_ERROR(f.Size(&size).WithContext(path));
    if (!exact) {
      const uint64_t record = sb->info_.block_size + kSealOverhead;
      if (size < kDataHeaderSize || (size - kDataHeaderSize) % record != 0) {
        return Status::Corruption(path + ": not a whole number of records");
      }
      stored = (size - kDataHeaderSize) / record;
    }
    const uint64_t expected = DataRecordOffset(sb->info_.block_size, stored);
    if (size != expected) {
      return Status::Corruption(path + ": " + std::to_string(size) + " bytes where its " +
                                std::to_string(stored) + " records take " +
                                std::to_string(expected) + " (records appended or cut off)");
    }
    for (const BlockLocation& l : sb->map_) {
      if (l.source == source && l.slot >= stored) {
        return Status::Corruption("snapshot " + FormatId(id) + ": block " +
                                  std::to_string(l.block) + " points past the end of " + path);
      }
    }
    sb->data_files_.emplace_back(source, std::move(f));
  }
  *out = std::move(sb);
  return Status::Ok();
}

const BlockLocation* SnapshotBlocks::Find(uint64_t block) const {
  auto it = std::lower_bound(map_.begin(), map_.end(), block,
                             [](const BlockLocation& l, uint64_t b) { return l.block < b; });
  if (it == map_.end() || it->block != block) return nullptr;
  return &*it;
}

Status SnapshotBlocks::ReadBlock(const BlockLocation& loc, Aead& aead, MutableByteSpan record,
                                 MutableByteSpan out) const {
  const File* file = nullptr;
  for (const auto& [id, f] : data_files_) {
    if (id == loc.source) file = &f;
  }
  if (file == nullptr) return Status::Corruption("block map names an unknown data file");
  LSIFS_RETURN_IF_ERROR(file->PreadExact(DataRecordOffset(info_.block_size, loc.slot), record));
  std::array<uint8_t, 128> aad;
  size_t aad_len = OriginBlockAad(info_.volume, loc.source, loc.block, &aad);
  Status s = aead.Open(keys_->block, ByteSpan(aad.data(), aad_len), record, out);
  if (!s.ok()) {
    return Status::Corruption("snapshot " + FormatId(info_.id) + " block " +
                              std::to_string(loc.block) + ": authentication failed");
  }
  return Status::Ok();
}

Status DeleteSnapshot(const Store& store, const OriginKeys& keys, const std::string& volume,
                      uint64_t id, SnapshotDeletion* out) {
  *out = SnapshotDeletion();
  LSIFS_RETURN_IF_ERROR(ValidateName("volume", volume));
  const std::string map = store.snapshot_map_path(volume, id);
  if (!PathExists(map)) {
    return Status::NotFound("volume '" + volume + "' has no snapshot " + FormatId(id) +
                            " (see: lsictl snapshots " + volume + ")");
  }
  // Which data files the volume's other snapshots point into.
  std::set<uint64_t> used;
  std::string unreadable;  // a map that cannot be read might use any
  std::vector<uint64_t> kept;
  for (const auto& n : ListFileNames(store.volume_dir(volume))) {
    auto other = ParseId(n.substr(0, 16));
    if (!other || *other == id || n.size() != 21) continue;
    if (n.compare(16, 5, ".kept") == 0) kept.push_back(*other);
    if (n.compare(16, 5, ".snap") != 0) continue;
    SnapshotMapReader reader;
    Status s = reader.Open(store.snapshot_map_path(volume, *other), keys);
    BlockLocation loc;
    while (s.ok() && reader.Next(&loc)) used.insert(loc.source);
    if (s.ok()) s = reader.status();
    if (!s.ok() && unreadable.empty()) unreadable = FormatId(*other);
  }
  if (!unreadable.empty()) {
    out->data_kept = true;
    out->kept_because =
        "the map of snapshot " + unreadable + " cannot be read, and might use its blocks";
  } else if (used.count(id)) {
    out->data_kept = true;
    out->kept_because = "later snapshots use its blocks";
  }
  const std::string data = store.snapshot_data_path(volume, id);
  if (out->data_kept && PathExists(data)) {
    File marker;
    Status s = File::CreateExclusive(store.snapshot_kept_path(volume, id), 0644, &marker);
    if (!s.ok() && s.code() != Status::Code::kExists) return s;
  }
  const uint64_t map_bytes = FileBytes(map);
  if (::unlink(map.c_str()) != 0) return Status::FromErrno("removing " + map, errno);
  out->freed += map_bytes;
  if (!out->data_kept) {
    const uint64_t data_bytes = FileBytes(data);
    if (::unlink(data.c_str()) == 0) out->freed += data_bytes;
    ::unlink(store.snapshot_kept_path(volume, id).c_str());
  }
  // Data files kept for snapshots that used them, now that none does.
  for (uint64_t k : kept) {
    if (!unreadable.empty() || used.count(k)) continue;
    const std::string path = store.snapshot_data_path(volume, k);
    const uint64_t bytes = FileBytes(path);
    if (::unlink(path.c_str()) == 0 || errno == ENOENT) {
      out->freed += bytes;
      ::unlink(store.snapshot_kept_path(volume, k).c_str());
    }
  }
  (void)SyncDirectory(store.volume_dir(volume));
  return Status::Ok();
}

Status DeleteVolume(const Store& store, const OriginKeys& keys, const std::string& volume,
                    VolumeDeletion* out) {
  *out = VolumeDeletion();
  LSIFS_RETURN_IF_ERROR(ValidateName("volume", volume));
  const std::string dir = store.volume_dir(volume);
  if (!PathExists(dir)) {
    return Status::NotFound("the store has no volume '" + volume + "' (see: lsictl snapshots)");
  }
  // Newest first, so that no snapshot's blocks are kept for a later one
  // that is about to go too; the damaged (no date to order by) last.
  std::vector<SnapshotInfo> listed;
  std::vector<std::string> damaged;
  LSIFS_RETURN_IF_ERROR(ListSnapshots(store, keys, volume, &listed, &damaged));
  std::vector<uint64_t> order;
  for (auto it = listed.rbegin(); it != listed.rend(); ++it) order.push_back(it->id);
  for (const auto& n : ListFileNames(dir)) {
    auto id = ParseId(n.substr(0, 16));
    if (id && n.size() == 21 && n.compare(16, 5, ".snap") == 0 &&
        std::find(order.begin(), order.end(), *id) == order.end()) {
      order.push_back(*id);
    }
  }
  for (uint64_t id : order) {
    SnapshotDeletion d;
    LSIFS_RETURN_IF_ERROR(DeleteSnapshot(store, keys, volume, id, &d));
    out->freed += d.freed;
    ++out->snapshots;
  }
  // What no snapshot names any more (data an import left, kept markers).
  for (const auto& n : ListFileNames(dir)) {
    const std::string path = dir + "/" + n;
    const uint64_t bytes = FileBytes(path);
    if (::unlink(path.c_str()) == 0) out->freed += bytes;
  }
  if (::rmdir(dir.c_str()) != 0) return Status::FromErrno("removing " + dir, errno);
  return SyncDirectory(store.snapshots_dir());
}

}  // namespace lsifs
