#include <gtest/gtest.h>

#include "core/store/store.h"
#include "core/util/encoding.h"
#include "core/util/hex.h"
#include "core/util/json.h"
#include "core/util/log.h"
#include "core/util/names.h"
#include "core/util/numbers.h"
#include "core/util/worker_pool.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

namespace lsifs {
namespace {

TEST(Numbers, WholeNumbersAreDigitsWithinBounds) {
  uint64_t v = 0;
  EXPECT_TRUE(ParseUnsigned("42", "n", 0, 100, &v).ok());
  EXPECT_EQ(v, 42u);
  EXPECT_TRUE(ParseUnsigned("18446744073709551615", "n", 0, UINT64_MAX, &v).ok());
  for (const char* bad :
       {"-1", "+5", " 5", "5x", "", "0x10", "1e3", "18446744073709551616", "101", "1.5"}) {
    Status s = ParseUnsigned(bad, "n", 0, 100, &v);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad;
  }
  EXPECT_NE(ParseUnsigned("1", "max_threads", 2, 1024, &v).message().find("from 2 to 1024"),
            std::string::npos);
}

TEST(Encoding, FieldsRoundTripLittleEndian) {
  ByteWriter w;
  w.PutU8(0xab);
  w.PutU16(0x1234);
  w.PutU32(0xdeadbeef);
  w.PutU64(0x0102030405060708ull);
  w.PutString16("vol-db");
  const Bytes& b = w.bytes();
  ASSERT_EQ(b.size(), 1u + 2 + 4 + 8 + 2 + 6);
  EXPECT_EQ(b[1], 0x34);  // little-endian on disk, whatever the host
  EXPECT_EQ(b[3], 0xef);
  ByteReader r(b);
  EXPECT_EQ(r.GetU8(), 0xab);
  EXPECT_EQ(r.GetU16(), 0x1234);
  EXPECT_EQ(r.GetU32(), 0xdeadbeefu);
  EXPECT_EQ(r.GetU64(), 0x0102030405060708ull);
  EXPECT_EQ(r.GetString16(), "vol-db");
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(Encoding, ReaderFailsPastTheEndAndStaysFailed) {
  Bytes b = {1, 2, 3};
  ByteReader r(b);
  EXPECT_EQ(r.GetU32(), 0u);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.GetU8(), 0u);
  EXPECT_FALSE(r.ok());
}

TEST(Encoding, BigEndianKeepsNumericOrder) {
  uint8_t a[8], b[8];
  EncodeBigEndian64(a, 255);
  EncodeBigEndian64(b, 256);
  EXPECT_LT(std::memcmp(a, b, 8), 0);
  EXPECT_EQ(DecodeBigEndian64(b), 256u);
}

TEST(Hex, IdsRoundTripAndRejectJunk) {
  EXPECT_EQ(FormatId(0x00ab00cd00ef0012ull), "00ab00cd00ef0012");
  EXPECT_EQ(ParseId("00ab00cd00ef0012"), 0x00ab00cd00ef0012ull);
  EXPECT_FALSE(ParseId("00ab00cd00ef001"));
  EXPECT_FALSE(ParseId("0000000000000000")) << "no id is zero: zero means \"latest\" inside";
  EXPECT_FALSE(ParseId("00ab00cd00ef001z"));
  EXPECT_FALSE(HexDecode("abc"));
}

TEST(Names, AcceptSafeNamesOnly) {
  EXPECT_TRUE(ValidateName("volume", "vol-db").ok());
  EXPECT_TRUE(ValidateName("volume", "web_root.2").ok());
  EXPECT_FALSE(ValidateName("volume", "").ok());
  EXPECT_FALSE(ValidateName("volume", "../etc").ok());
  EXPECT_FALSE(ValidateName("volume", "a/b").ok());
  EXPECT_FALSE(ValidateName("volume", ".hidden").ok());
  EXPECT_FALSE(ValidateName("volume", "-x").ok());
  EXPECT_FALSE(ValidateName("volume", std::string(65, 'a')).ok());
  Status s = ValidateName("extension", "a b");
  EXPECT_NE(s.message().find("extension name 'a b'"), std::string::npos) << s.message();
}

TEST(Sizes, ParseUnitsAndBlockSizes) {
  uint64_t n = 0;
  ASSERT_TRUE(ParseByteSize("64K", &n).ok());
  EXPECT_EQ(n, 65536u);
  ASSERT_TRUE(ParseByteSize("2GiB", &n).ok());
  EXPECT_EQ(n, 2ull << 30);
  EXPECT_FALSE(ParseByteSize("12Q", &n).ok());
  EXPECT_FALSE(ParseByteSize("x", &n).ok());
  // stoull's leniencies: a sign wraps around, blanks are skipped.
  for (const char* bad : {"-1", "-64K", " 64K", "+64K", "", "64KK"}) {
    EXPECT_FALSE(ParseByteSize(bad, &n).ok()) << bad;
  }
  uint32_t bs = 0;
  EXPECT_TRUE(ParseBlockSize("4K", &bs).ok());
  EXPECT_EQ(bs, 4096u);
  EXPECT_TRUE(ParseBlockSize("1M", &bs).ok());
  EXPECT_FALSE(ParseBlockSize("2K", &bs).ok());
  EXPECT_FALSE(ParseBlockSize("2M", &bs).ok());
  EXPECT_FALSE(ParseBlockSize("96K", &bs).ok());
}

TEST(Json, WritesValidNestedDocuments) {
  JsonWriter j;
  j.BeginObject()
      .Field("name", "a\"b\n")
      .Key("list")
      .BeginArray()
      .Uint(1)
      .Int(-2)
      .Null()
      .EndArray();
  j.Field("ok", true).EndObject();
  EXPECT_EQ(j.str(), R"({"name":"a\"b\n","list":[1,-2,null],"ok":true})");
}

TEST(WorkerPool, CoversEveryItemExactlyOnce) {
  WorkerPool pool(3);
  for (size_t count : {0u, 1u, 2u, 7u, 1000u}) {
    std::vector<std::atomic<int>> hits(count);
    pool.Run(count, [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) hits[i]++;
    });
    for (size_t i = 0; i < count; ++i) EXPECT_EQ(hits[i].load(), 1) << i;
  }
}

}  // namespace
}  // namespace lsifs

namespace lsifs {
namespace {

TEST(Log, LinesArePrintableWhateverTheyQuote) {
  EXPECT_EQ(PrintableLine("plain text 1.2"), "plain text 1.2");
  // A forged second line, a terminal escape, a backslash, a high byte.
  EXPECT_EQ(PrintableLine("vol\nlsifs: forged\x1b[2J\\\xff"),
            "vol\\x0alsifs: forged\\x1b[2J\\\\\\xff");
}

TEST(Log, ALimiterLetsABurstThroughAndCountsTheRest) {
  LogLimiter limit(3, std::chrono::seconds(3600));
  std::vector<std::string> lines;
  auto sink = [&](const std::string& l) { lines.push_back(l); };
  for (int i = 0; i < 100; ++i) limit.Log(sink, "line " + std::to_string(i));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2], "line 2");
  EXPECT_EQ(limit.suppressed_total(), 97u);
}

TEST(Log, TheNextWindowSaysHowManyWereSuppressed) {
  LogLimiter limit(1, std::chrono::seconds(1));
  std::vector<std::string> lines;
  auto sink = [&](const std::string& l) { lines.push_back(l); };
  limit.Log(sink, "a");
  limit.Log(sink, "b");
  limit.Log(sink, "c");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  limit.Log(sink, "d");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "a");
  EXPECT_NE(lines[1].find("2 similar lines suppressed"), std::string::npos) << lines[1];
  EXPECT_EQ(lines[2], "d");
}

}  // namespace
}  // namespace lsifs
