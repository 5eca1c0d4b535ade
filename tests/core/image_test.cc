// The read path without a mount: an LSI read through LsiImage equals its
// snapshot at every offset and size with any mix of delta layers, zero
// blocks and base fetches; a missing block is fetched once however many
// read it; a damaged or missing layer fails only its own blocks; counters
// count distinct blocks by where they came from.
#include "core/image/image.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <random>
#include <thread>

#include "core/assembler/assemble.h"
#include "core/origin/import.h"
#include "core/util/hex.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

using testing::TempDir;

constexpr uint64_t kBlocks = 48;
// Not a multiple of the block size: the last block is partial.
constexpr uint64_t kBytes = kBlocks * testing::StoreTest::kBlock - 1000;

class ImageTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    image_ = testing::PseudoRandom(kBytes, 3);
    for (uint64_t b : {5u, 6u, 20u}) {  // zero blocks: absent from the snapshot
      std::fill(image_.begin() + static_cast<long>(b * kBlock),
                image_.begin() + static_cast<long>((b + 1) * kBlock), 0);
    }
    ASSERT_TRUE(local_->OpenSnapshot("vol", ImportBytes("vol", image_), &base_).ok());
  }

  // An LSI with these layers, bottom first.
  Manifest Assemble(const std::vector<std::vector<uint64_t>>& layers) {
    Manifest m;
    Status s = AssembleLsi(*catalog_, *base_, info_, key_, layers, AssembleOptions(), &m);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return m;
  }

  std::unique_ptr<LsiImage> Open(const Manifest& m, ImageOptions options = ImageOptions()) {
    options.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_ += line + "\n";
    };
    std::unique_ptr<LsiImage> img;
    Status s = LsiImage::Open(*store_, m, testing::KeysOf(info_, key_), *origin_, options, &img);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return img;
  }

  // The whole image, then random ranges of 1 byte to 64 KiB (the tail
  // included), equal the snapshot.
  void ExpectIdentical(LsiImage& img, uint64_t seed) {
    Bytes all(kBytes + 100);
    size_t done = 0;
    ASSERT_TRUE(img.Read(0, all, &done).ok());
    ASSERT_EQ(done, kBytes);
    all.resize(done);
    EXPECT_TRUE(all == image_);
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 200; ++i) {
      size_t len = 1 + rng() % (64 * 1024);
      uint64_t off = i % 10 == 0 ? kBytes - std::min<uint64_t>(len, kBytes) : rng() % kBytes;
      Bytes got(len);
      ASSERT_TRUE(img.Read(off, got, &done).ok()) << off << "+" << len;
      ASSERT_EQ(done, std::min<uint64_t>(len, kBytes - off));
      ASSERT_TRUE(std::equal(got.begin(), got.begin() + static_cast<long>(done),
                             image_.begin() + static_cast<long>(off)))
          << off << "+" << len;
    }
  }

  // `threads` readers of random ranges (up to `max_len` bytes) at once:
  // how many reads failed or returned a wrong byte.
  int RacingReaders(LsiImage& img, int threads, int reads, size_t max_len, uint64_t seed) {
    std::vector<std::thread> readers;
    std::atomic<int> wrong{0};
    for (int t = 0; t < threads; ++t) {
      readers.emplace_back([&, t] {
        std::mt19937_64 rng(seed + static_cast<uint64_t>(t));
        for (int i = 0; i < reads; ++i) {
          uint64_t off = rng() % kBytes;
          size_t len = 1 + rng() % max_len;
          Bytes got(len);
          size_t done = 0;
          if (!img.Read(off, got, &done).ok() ||
              !std::equal(got.begin(), got.begin() + static_cast<long>(done),
                          image_.begin() + static_cast<long>(off))) {
            ++wrong;
          }
        }
      });
    }
    for (auto& r : readers) r.join();
    return wrong.load();
  }

  std::unique_ptr<OriginSnapshot> base_;
  Bytes image_;
  std::mutex log_mu_;
  std::string log_;
};

TEST_F(ImageTest, EveryMixOfLayersZerosAndBaseReadsAsTheSnapshot) {
  // Base only; every block in one layer; three overlapping layers and base.
  for (const auto& layers : std::vector<std::vector<std::vector<uint64_t>>>{
           {}, {base_->present()}, {{0, 1, 2, 3, 30}, {2, 3, 4, 40}, {3, 7, 47}}}) {
    auto img = Open(Assemble(layers));
    ASSERT_TRUE(img);
    ExpectIdentical(*img, layers.size());
  }
}

TEST_F(ImageTest, CountersCountDistinctBlocksByWhereTheyCameFrom) {
  auto img = Open(Assemble({{0, 1, 2}}));
  ASSERT_TRUE(img);
  img->StartSession(nullptr, -1);
  Bytes buf(kBlock * 8);
  size_t done = 0;
  ASSERT_TRUE(img->Read(0, buf, &done).ok());  // blocks 0..7: 3 delta, 2 zero, 3 base
  ASSERT_TRUE(img->Read(0, buf, &done).ok());  // again: nothing new, nothing fetched
  CounterValues c = img->session_counters().Values();
  EXPECT_EQ(c.reads, 2u);
  EXPECT_EQ(c.blocks_read, 8u);
  EXPECT_EQ(c.from_delta, 3u);
  EXPECT_EQ(c.zero, 2u);
  EXPECT_EQ(c.from_base, 3u);
  EXPECT_EQ(c.prefetched_blocks, 3u);
  EXPECT_EQ(c.prefetched_read, 3u);
  EXPECT_EQ(origin_->blocks.load(), 3u);
  EXPECT_DOUBLE_EQ(c.recall(), 0.5);
}

TEST_F(ImageTest, ConcurrentReadersOfAMissingBlockFetchItOnce) {
  auto img = Open(Assemble({}));
  ASSERT_TRUE(img);
  std::vector<std::thread> readers;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&] {
      Bytes got(kBlock);
      size_t done = 0;
      if (!img->Read(9 * kBlock, got, &done).ok() ||
          !std::equal(got.begin(), got.end(), image_.begin() + 9 * kBlock)) {
        ++wrong;
      }
    });
  }
  for (auto& r : readers) r.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(origin_->blocks.load(), 1u);
  EXPECT_EQ(origin_->requests.load(), 1u);
}

TEST_F(ImageTest, ADamagedRecordFailsItsBlockOnlyAndIsLogged) {
  Manifest m = Assemble({{10, 11, 12}});
  std::string layer = store_->layer_path(m.layers[0].layer_id);
  Bytes data = testing::ReadFileBytes(layer);
  std::unique_ptr<LayerReader> reader;
  ASSERT_TRUE(LayerReader::Open(layer, info_, key_, &reader).ok());
  // Flip a byte inside the record of block 11 (slot 1).
  data[reader->RecordOffset(1) + 100] ^= 0x01;
  reader.reset();
  testing::WriteFileBytes(layer, data);
  auto img = Open(m);
  ASSERT_TRUE(img);
  Bytes got(kBlock);
  size_t done = 0;
  EXPECT_EQ(img->Read(11 * kBlock, got, &done).code(), Status::Code::kCorruption);
  // A range that touches it fails whole; its neighbours alone read right.
  Bytes two(2 * kBlock);
  EXPECT_FALSE(img->Read(10 * kBlock, two, &done).ok());
  for (uint64_t b : {10u, 12u, 13u}) {
    ASSERT_TRUE(img->Read(b * kBlock, got, &done).ok()) << b;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), image_.begin() + static_cast<long>(b * kBlock)));
  }
  EXPECT_NE(log_.find("layer " + FormatId(m.layers[0].layer_id) + " block 11"), std::string::npos)
      << log_;
  // Read in a loop, it fails every time but logs a few lines only.
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(img->Read(11 * kBlock, got, &done).ok());
  EXPECT_LE(std::count(log_.begin(), log_.end(), '\n'), 10) << log_;
}

TEST_F(ImageTest, BlocksFetchedWhenTheSpillFileCannotBeWrittenAreStillServed) {
  Manifest m = Assemble({});
  auto img = Open(m);
  ASSERT_TRUE(img);
  // A real write failure: the spill file may not grow past 64 KiB (EFBIG),
  // so the records of later blocks cannot be kept on disk.
  struct rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto previous = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Bytes got(kBytes);
  size_t done = 0;
  Status s = img->Read(0, got, &done);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  ::signal(SIGXFSZ, previous);
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << log_;
  EXPECT_TRUE(got == image_);
  EXPECT_NE(log_.find("kept in memory"), std::string::npos) << log_;
  // Read again: served from memory, not fetched again.
  const uint64_t requests = origin_->requests.load();
  std::fill(got.begin(), got.end(), 0);
  ASSERT_TRUE(img->Read(0, got, &done).ok());
  EXPECT_TRUE(got == image_);
  EXPECT_EQ(origin_->requests.load(), requests);
}

TEST_F(ImageTest, AnImageWhoseSpillFileCannotBeOpenedStillServes) {
  Manifest m = Assemble({{1, 2}});
  // Something in the way of the spill file: a directory of its name.
  ASSERT_EQ(::mkdir(store_->spill_path(m.lsi_id, info_.name).c_str(), 0700), 0);
  auto img = Open(m);
  ASSERT_TRUE(img);
  Bytes got(kBytes);
  size_t done = 0;
  ASSERT_TRUE(img->Read(0, got, &done).ok()) << log_;
  EXPECT_TRUE(got == image_);
  EXPECT_NE(log_.find("kept in memory"), std::string::npos) << log_;
}

TEST_F(ImageTest, AMissingLayerFailsOnlyItsOwnBlocks) {
  Manifest m = Assemble({{1, 2}, {3, 4}});
  ASSERT_EQ(::unlink(store_->layer_path(m.layers[1].layer_id).c_str()), 0);
  auto img = Open(m);
  ASSERT_TRUE(img);
  Bytes got(kBlock);
  size_t done = 0;
  for (uint64_t b : {3u, 4u}) EXPECT_FALSE(img->Read(b * kBlock, got, &done).ok()) << b;
  for (uint64_t b : {1u, 2u, 8u}) {
    ASSERT_TRUE(img->Read(b * kBlock, got, &done).ok()) << b;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), image_.begin() + static_cast<long>(b * kBlock)));
  }
  EXPECT_NE(log_.find("unavailable"), std::string::npos) << log_;
}

TEST_F(ImageTest, APendingLayersBlocksComeFromTheBaseUntilItArrives) {
  // Blocks 3 and 4 are in both layers: the pending top layer's versions
  // must not fall through to the lower layer's.
  Manifest m = Assemble({{1, 2, 3}, {3, 4, 9}});
  const std::string top = store_->layer_path(m.layers[1].layer_id);
  const Bytes top_file = testing::ReadFileBytes(top);
  ASSERT_EQ(::unlink(top.c_str()), 0);
  ImageOptions site;
  site.layers_arrive_later = true;
  auto img = Open(m, site);
  ASSERT_TRUE(img);
  EXPECT_EQ(img->pending_layers(), 1u);
  const uint64_t before = origin_->blocks.load();
  ExpectIdentical(*img, 21);
  // Its three blocks came from the base; the lower layer's 1 and 2 did not.
  EXPECT_GE(origin_->blocks.load() - before, 3u);
  EXPECT_EQ(img->lsi_counters().Values().prefetched_blocks, 2u);
  EXPECT_NE(log_.find("not pulled yet"), std::string::npos) << log_;
  // The layer arrives: an image opened now reads its blocks from it.
  testing::WriteFileBytes(top, top_file);
  auto later = Open(m, site);
  ASSERT_TRUE(later);
  EXPECT_EQ(later->pending_layers(), 0u);
  EXPECT_EQ(later->lsi_counters().Values().prefetched_blocks, 5u);
  ExpectIdentical(*later, 22);
  // A layer that is there but damaged is not pending: its blocks fail.
  Bytes damaged = top_file;
  damaged[damaged.size() - 40] ^= 0x5a;
  testing::WriteFileBytes(top, damaged);
  auto broken = Open(m, site);
  ASSERT_TRUE(broken);
  EXPECT_EQ(broken->pending_layers(), 0u);
  Bytes got(kBlock);
  size_t done = 0;
  EXPECT_FALSE(broken->Read(9 * kBlock, got, &done).ok());
  // Without the two-site option a missing layer is damage, as before.
  ASSERT_EQ(::unlink(top.c_str()), 0);
  auto embedded = Open(m);
  ASSERT_TRUE(embedded);
  EXPECT_FALSE(embedded->Read(9 * kBlock, got, &done).ok());
}

TEST_F(ImageTest, AnotherExtensionsKeyOpensNothing) {
  Manifest m = Assemble({{1}});
  KeyInfo other;
  SecretKey other_key;
  ASSERT_TRUE(store_->keyring().Create("site-b", &other).ok());
  ASSERT_TRUE(store_->keyring().Load("site-b", &other, &other_key).ok());
  std::unique_ptr<LsiImage> img;
  EXPECT_EQ(
      LsiImage::Open(*store_, m, testing::KeysOf(other, other_key), *origin_, ImageOptions(), &img)
          .code(),
      Status::Code::kPermission);
  EXPECT_FALSE(img);
}

// Read-time expansion on synthetic histories: each session folded 3 times.
std::shared_ptr<const SuccessorTable> Table(const std::vector<std::vector<uint64_t>>& sessions) {
  CoAccessParams params;
  ModelMeta meta;
  std::unordered_map<uint64_t, BlockStats> stats;
  for (int i = 0; i < 3; ++i) {
    for (const auto& order : sessions) FoldSession(order, params, &meta, &stats);
  }
  ModelView own;
  own.meta = meta;
  for (const auto& [b, st] : stats) own.blocks.emplace_back(b, st);
  return std::make_shared<SuccessorTable>(
      BuildSuccessorTable(own, ModelView(), params, PlanOptions()));
}

class ExpansionTest : public ImageTest {
 protected:
  std::unique_ptr<LsiImage> OpenBaseOnly(ExpansionOptions expansion,
                                         const std::vector<std::vector<uint64_t>>& sessions) {
    ImageOptions options;
    options.expansion = expansion;
    auto img = Open(Assemble({}), options);
    img->StartSession(nullptr, -1);
    img->SetSuccessors(Table(sessions));
    return img;
  }
  void ReadBlock(LsiImage& img, uint64_t b) {
    Bytes got(kBlock);
    size_t done = 0;
    ASSERT_TRUE(img.Read(b * kBlock, got, &done).ok());
    ASSERT_TRUE(std::equal(got.begin(), got.end(), image_.begin() + static_cast<long>(b * kBlock)));
  }
  // Waits for the background continuation to bring `n` blocks in all.
  void WaitFetched(uint64_t n) {
    for (int i = 0; i < 2000 && origin_->blocks.load() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
};

TEST_F(ExpansionTest, AMissOnAClustersFirstBlockBringsItsSuccessorsInTheSameRequest) {
  ExpansionOptions e;
  e.ahead = 0;  // no continuation here
  auto img = OpenBaseOnly(e, {{30, 31, 32, 33}});
  ReadBlock(*img, 30);
  EXPECT_EQ(origin_->requests.load(), 1u);
  EXPECT_EQ(origin_->blocks.load(), 4u);
  ReadBlock(*img, 31);
  ReadBlock(*img, 33);
  EXPECT_EQ(origin_->requests.load(), 1u);  // they were already here
  CounterValues c = img->session_counters().Values();
  EXPECT_EQ(c.expanded_blocks, 3u);
  EXPECT_EQ(c.expanded_read, 2u);
  EXPECT_EQ(c.waited_blocks, 1u);  // only block 30 waited
  EXPECT_EQ(c.blocks_read, 3u);
  EXPECT_NEAR(c.no_wait_share(), 2.0 / 3.0, 1e-9);
  EXPECT_NEAR(c.wan_precision(), 2.0 / 3.0, 1e-9);
}

TEST_F(ExpansionTest, AMissOnAnUnknownBlockBringsOnlyItself) {
  auto img = OpenBaseOnly(ExpansionOptions(), {{30, 31, 32, 33}});
  ReadBlock(*img, 12);
  EXPECT_EQ(origin_->blocks.load(), 1u);
  EXPECT_EQ(img->session_counters().Values().expanded_blocks, 0u);
}

TEST_F(ExpansionTest, ThePerMissCapAndTheSessionBudgetHold) {
  ExpansionOptions e;
  e.per_miss = 2;
  e.ahead = 0;
  auto img = OpenBaseOnly(e, {{30, 31, 32, 33, 34}, {40, 41, 42, 43}});
  ReadBlock(*img, 30);
  EXPECT_EQ(origin_->blocks.load(), 3u);  // 30 and two successors
  e.session_budget = kBlock;              // one block of expansion per session
  auto tight = OpenBaseOnly(e, {{40, 41, 42, 43}});
  uint64_t before = origin_->blocks.load();
  ReadBlock(*tight, 40);
  EXPECT_EQ(origin_->blocks.load() - before, 2u);
  ReadBlock(*tight, 43);  // the budget is spent: no more expansion
  EXPECT_EQ(origin_->blocks.load() - before, 3u);
}

TEST_F(ExpansionTest, TheContinuationFollowsAClusterTheSessionReadsAndDropsOneItDoesNot) {
  ExpansionOptions e;
  e.per_miss = 1;
  // A chain: each block's one confident successor is the next.
  auto img = OpenBaseOnly(e, {{30, 31}, {31, 32}, {32, 33}, {33, 34}, {34, 35}});
  ReadBlock(*img, 30);  // brings 31 with it; the continuation then brings 32
  WaitFetched(3);
  EXPECT_EQ(origin_->blocks.load(), 3u);
  ReadBlock(*img, 31);  // an expanded block read: the cluster goes on (33)
  WaitFetched(4);
  EXPECT_EQ(origin_->blocks.load(), 4u);
  ReadBlock(*img, 32);  // and on (34)
  WaitFetched(5);
  EXPECT_EQ(origin_->blocks.load(), 5u);
  EXPECT_EQ(img->session_counters().Values().waited_blocks, 1u);  // only 30 waited
  EXPECT_EQ(img->session_counters().Values().expanded_read, 2u);

  // Read the head of a cluster but none of what it brought: it is followed
  // two levels (41 with the miss, 42 behind it) and no further.
  auto other = OpenBaseOnly(e, {{40, 41}, {41, 42}, {42, 43}, {43, 44}});
  uint64_t before = origin_->blocks.load();
  ReadBlock(*other, 40);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(origin_->blocks.load() - before, 3u);
}

TEST_F(ExpansionTest, ExpansionRacingReadersKeepsEveryByteAndFetchesEachBlockOnce) {
  // Successors everywhere: every block is followed by the next eight.
  std::vector<std::vector<uint64_t>> sessions;
  for (uint64_t b = 0; b + 8 < kBlocks; b += 4) {
    std::vector<uint64_t> order;
    for (uint64_t k = b; k < b + 8; ++k) order.push_back(k);
    sessions.push_back(order);
  }
  auto img = OpenBaseOnly(ExpansionOptions(), sessions);
  EXPECT_EQ(RacingReaders(*img, 6, 200, 3 * kBlock, 0), 0);
  EXPECT_LE(origin_->blocks.load(), base_->present().size());
  EXPECT_GT(img->session_counters().Values().expanded_blocks, 0u);
}

TEST_F(ImageTest, TheSpillOutlivesTheImageAndADamagedRecordIsFetchedAgain) {
  Manifest m = Assemble({});
  {
    auto img = Open(m);
    ExpectIdentical(*img, 1);
  }
  const uint64_t fetched = origin_->blocks.load();
  EXPECT_EQ(fetched, base_->present().size());
  // A restart: a new image of the same snapshot finds every block local.
  {
    auto img = Open(m);
    EXPECT_EQ(img->LocalBaseBlocks().first, base_->present().size());
    ExpectIdentical(*img, 2);
    EXPECT_EQ(origin_->blocks.load(), fetched);
  }
  // A record damaged on disk fails its check and is fetched again: right
  // bytes, one more block from the origin, nothing else.
  std::string spill = store_->spill_path(m.lsi_id, info_.name);
  const uint64_t record = (kBlock + kSealOverhead + 4095) / 4096 * 4096;  // the records' stride
  {
    File f(::open(spill.c_str(), O_RDWR));
    ASSERT_TRUE(f.is_open());
    uint8_t byte = 0;
    ASSERT_TRUE(f.PreadExact(3 * record + 100, MutableByteSpan(&byte, 1)).ok());
    byte ^= 0x40;
    ASSERT_TRUE(f.PwriteAll(3 * record + 100, ByteSpan(&byte, 1)).ok());
  }
  {
    auto img = Open(m);
    ExpectIdentical(*img, 3);
    EXPECT_EQ(origin_->blocks.load(), fetched + 1);
  }
  // It goes with the LSI.
  DropResult dropped;
  ASSERT_TRUE(catalog_->Drop(m.lsi_id, &dropped).ok());
  catalog_->Sweep();
  EXPECT_NE(::access(spill.c_str(), F_OK), 0);
}

TEST_F(ImageTest, HydrationRacingReadersKeepsEveryByteAndFetchesEachBlockOnce) {
  ImageOptions options;
  options.hydrate = true;
  auto img = Open(Assemble({{0, 1, 2, 3}}), options);
  EXPECT_EQ(RacingReaders(*img, 4, 150, 2 * kBlock, 100), 0);
  for (int i = 0; i < 2000 && img->LocalBaseBlocks().first < img->LocalBaseBlocks().second; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto [local, base] = img->LocalBaseBlocks();
  EXPECT_EQ(local, base);  // hydrated: every block the layers do not hold is local
  EXPECT_EQ(base, base_->present().size() - 4);
  EXPECT_EQ(origin_->blocks.load(), base);  // each fetched once, the layer's never
  ExpectIdentical(*img, 4);
}

}  // namespace
}  // namespace lsifs

namespace lsifs {
namespace {

TEST(BlockCache, OneCacheServesManyLsisWithinOneCap) {
  constexpr uint32_t kBs = 4096;
  std::unique_ptr<BlockCache> cache;
  ASSERT_TRUE(BlockCache::Make(64 * kBs, kBs, &cache).ok());
  ASSERT_TRUE(cache);
  EXPECT_EQ(cache->capacity_bytes(), 64u * kBs);
  Bytes a(kBs, 0xaa), b(kBs, 0xbb), got(kBs);
  // The same block number of two LSIs: two entries, never confused.
  cache->Put(1, 7, a.data());
  cache->Put(2, 7, b.data());
  ASSERT_TRUE(cache->Get(1, 7, 0, kBs, got.data()));
  EXPECT_EQ(got, a);
  ASSERT_TRUE(cache->Get(2, 7, 0, kBs, got.data()));
  EXPECT_EQ(got, b);
  EXPECT_FALSE(cache->Get(3, 7, 0, kBs, got.data()));
  // Five images' worth of blocks: the cache keeps at most its capacity.
  for (uint64_t lsi = 1; lsi <= 5; ++lsi) {
    for (uint64_t blk = 0; blk < 1000; ++blk) cache->Put(lsi, blk, a.data());
  }
  size_t held = 0;
  for (uint64_t lsi = 1; lsi <= 5; ++lsi) {
    for (uint64_t blk = 0; blk < 1000; ++blk) held += cache->Get(lsi, blk, 0, 1, got.data());
  }
  EXPECT_LE(held, 64u);
  EXPECT_GT(held, 32u);
}

TEST(BlockCache, SizesThatCannotWorkAreRefusedOrMakeNoCache) {
  std::unique_ptr<BlockCache> cache;
  // Smaller than one set: no cache, and that is fine.
  ASSERT_TRUE(BlockCache::Make(3 * 65536, 65536, &cache).ok());
  EXPECT_FALSE(cache);
  ASSERT_TRUE(BlockCache::Make(0, 65536, &cache).ok());
  EXPECT_FALSE(cache);
  // Far more than any machine has: an error, not an abort.
  Status s = BlockCache::Make(uint64_t{1} << 62, 65536, &cache);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("smaller cache_size"), std::string::npos) << s.message();
  EXPECT_FALSE(cache);
}

}  // namespace
}  // namespace lsifs
