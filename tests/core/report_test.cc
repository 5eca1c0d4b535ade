// The heat map of `lsictl access heatmap`, drawn from a small known pattern
// of sessions on a real store and LevelDB: what each cell shows, the
// clusters `access show` lists outlined under its numbers, the axis, and
// the same picture as SVG (parsed) and as PNG (decoded with libpng).
#include "core/service/report.h"

#include <gtest/gtest.h>
#include <png.h>

#include <algorithm>
#include <boost/json.hpp>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

#include "core/util/file.h"
#include "tests/core/test_util.h"

namespace lsifs {
namespace {

constexpr uint64_t kBlocks = 160;  // three rows of 64 cells, one block each
// Zero blocks: the snapshot does not hold them. Block 30 is read all the same.
const std::set<uint64_t> kHoles = {20, 21, 22, 23, 28, 30};

class HeatmapTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    Bytes image = testing::PseudoRandom(kBlocks * kBlock, 7);
    for (uint64_t b : kHoles) std::memset(&image[b * kBlock], 0, kBlock);
    snapshot_ = ImportBytes("vol", image);
    ASSERT_TRUE(AccessDb::Open(store_->db_dir(), CoAccessSettings(), &db_).ok());
    // Block 1 read in 4 sessions (the most), 2 and 3 in 3, 12 and 13 in 2,
    // 30 in 1. Two clusters: {1, 2, 3} (2 follows 1 in 3 of 4 sessions),
    // then {12, 13}; 30 followed 1 once only, which is not confident.
    for (int i = 0; i < 3; ++i) Session({1, 2, 3});
    Session({1, 30});
    for (int i = 0; i < 2; ++i) Session({12, 13});
  }

  void Session(const std::vector<uint64_t>& blocks) {
    uint32_t n = 0;
    ASSERT_TRUE(db_->BeginSession("site-a", "vol", 1, snapshot_, &n).ok());
    std::vector<LoggedEvent> events;
    for (uint32_t i = 0; i < blocks.size(); ++i) {
      events.push_back({"site-a", "vol", n, i, {blocks[i], i}});
    }
    ASSERT_TRUE(db_->AppendEvents(events).ok());
    ASSERT_TRUE(db_->EndSession("site-a", "vol", n, blocks.size(), 0).ok());
  }

  HeatmapRequest Request() const {
    HeatmapRequest req;
    req.extension = "site-a";
    req.volume = "vol";
    req.snapshot = snapshot_;
    req.volume_blocks = kBlocks;
    req.block_size = kBlock;
    req.present = [this](const std::function<void(uint64_t)>& visit) {
      SnapshotMapReader map;
      LSIFS_RETURN_IF_ERROR(map.Open(store_->snapshot_map_path("vol", snapshot_), *keys_));
      BlockLocation loc;
      while (map.Next(&loc)) visit(loc.block);
      return map.status();
    };
    return req;
  }

  Picture Draw() {
    Picture p;
    Status s = DrawHeatmap(*db_, Request(), &p);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return p;
  }

  static const Rect* FindRect(const Picture& p, const std::string& id) {
    for (const auto& e : p.elements) {
      const Rect* r = std::get_if<Rect>(&e.shape);
      if (r != nullptr && r->id == id) return r;
    }
    return nullptr;
  }
  static std::vector<const Rect*> GroupRects(const Picture& p, const std::string& group) {
    std::vector<const Rect*> out;
    for (const auto& e : p.elements) {
      if (e.group == group && std::holds_alternative<Rect>(e.shape)) {
        out.push_back(&std::get<Rect>(e.shape));
      }
    }
    return out;
  }
  static std::vector<std::string> Texts(const Picture& p, const std::string& group = "") {
    std::vector<std::string> out;
    for (const auto& e : p.elements) {
      if (const Text* t = std::get_if<Text>(&e.shape); t && (group.empty() || e.group == group)) {
        out.push_back(t->text);
      }
    }
    return out;
  }
  static bool Has(const std::vector<std::string>& texts, const std::string& text) {
    return std::find(texts.begin(), texts.end(), text) != texts.end();
  }

  std::unique_ptr<AccessDb> db_;
  uint64_t snapshot_ = 0;
};

std::string Cell(uint64_t block) {
  return "cell-" + std::to_string(block);
}

TEST_F(HeatmapTest, CellsTellHolesFromBlocksNeverReadAndTheHottestIsTopOfThePalette) {
  Picture p = Draw();
  for (uint64_t b = 0; b < kBlocks; ++b) ASSERT_NE(FindRect(p, Cell(b)), nullptr) << b;
  EXPECT_EQ(FindRect(p, Cell(kBlocks)), nullptr);
  // Not in the snapshot, never read: hatched, and in no palette colour.
  for (uint64_t b : {20u, 21u, 22u, 23u, 28u}) {
    const Rect* r = FindRect(p, Cell(b));
    EXPECT_TRUE(r->hatched) << b;
    EXPECT_EQ(r->fill, kHeatHole);
    EXPECT_EQ(r->hatch_line, kHeatHoleLine);
  }
  // Held, never read: the neutral grey.
  for (uint64_t b : {0u, 4u, 5u, 14u, 29u, 159u}) {
    const Rect* r = FindRect(p, Cell(b));
    EXPECT_FALSE(r->hatched) << b;
    EXPECT_EQ(r->fill, kHeatNeverRead) << b;
  }
  // The hottest block has the top of viridis; one session is the bottom;
  // a block read is coloured even where the snapshot has a hole.
  const Rgb top{253, 231, 37}, bottom{68, 1, 84};
  EXPECT_EQ(Viridis(1.0), top);
  EXPECT_EQ(Viridis(0.0), bottom);
  EXPECT_EQ(FindRect(p, Cell(1))->fill, top);
  EXPECT_EQ(FindRect(p, Cell(30))->fill, bottom);
  EXPECT_FALSE(FindRect(p, Cell(30))->hatched);
  EXPECT_EQ(FindRect(p, Cell(2))->fill, Viridis(2.0 / 3));
  EXPECT_EQ(FindRect(p, Cell(12))->fill, Viridis(1.0 / 3));
  for (uint64_t b = 0; b < kBlocks; ++b) {
    if (b != 1) {
      EXPECT_NE(FindRect(p, Cell(b))->fill, top) << b;
    }
  }
  // The colour bar is labelled in counts, from 1 to the most.
  auto legend = Texts(p, "legend");
  EXPECT_TRUE(Has(legend, "1"));
  EXPECT_TRUE(Has(legend, "4"));
  EXPECT_TRUE(Has(legend, "sessions that read the block"));
  EXPECT_TRUE(Has(legend, "viridis, linear in the count"));
}

TEST_F(HeatmapTest, ClustersAreThoseAccessShowListsOutlinedUnderItsNumbers) {
  std::string show;
  ShowRequest req;
  req.extension = "site-a";
  req.volume = "vol";
  req.json = true;
  ASSERT_TRUE(RenderAccessShow(*db_, req, &show).ok());
  const boost::json::value shown = boost::json::parse(show);
  const auto& clusters = shown.as_object().at("clusters").as_array();
  ASSERT_EQ(clusters.size(), 2u) << show;
  Picture p = Draw();
  std::map<uint64_t, std::vector<uint64_t>> expected = {{1, {1, 2, 3}}, {2, {12, 13}}};
  for (const auto& c : clusters) {
    uint64_t n = c.as_object().at("cluster").to_number<uint64_t>();
    std::vector<uint64_t> blocks;
    for (const auto& b : c.as_object().at("blocks").as_array()) {
      blocks.push_back(b.to_number<uint64_t>());
    }
    std::sort(blocks.begin(), blocks.end());
    EXPECT_EQ(blocks, expected[n]) << show;
    const std::string group = "cluster-" + std::to_string(n);
    auto outline = GroupRects(p, group);
    ASSERT_FALSE(outline.empty()) << group;
    EXPECT_TRUE(Has(Texts(p, group), std::to_string(n)));
    // The outline goes round the cluster's cells and no others: it covers
    // the gap beside the first cell and the one after the last.
    const Rect* first = FindRect(p, Cell(blocks.front()));
    const Rect* last = FindRect(p, Cell(blocks.back()));
    auto covers = [&](int x, int y) {
      for (const Rect* r : outline) {
        if (x >= r->x && x < r->x + r->width && y >= r->y && y < r->y + r->height) return true;
      }
      return false;
    };
    EXPECT_TRUE(covers(first->x - 1, first->y + 4)) << group;
    EXPECT_TRUE(covers(last->x + last->width, last->y + 4)) << group;
    EXPECT_TRUE(covers(first->x + 4, first->y - 1)) << group;
    EXPECT_TRUE(covers(first->x + 4, first->y + first->height)) << group;
    for (const Rect* r : outline) EXPECT_EQ(r->fill, kHeatCluster);
    for (uint64_t b : blocks) {
      const Rect* cell = FindRect(p, Cell(b));
      EXPECT_FALSE(covers(cell->x + 4, cell->y + 4)) << "outline over block " << b;
    }
  }
  EXPECT_TRUE(GroupRects(p, "cluster-3").empty());
  // The text of access show numbers them alike.
  req.json = false;
  ASSERT_TRUE(RenderAccessShow(*db_, req, &show).ok());
  EXPECT_NE(show.find("  #1      3 blocks: 1 2 3\n"), std::string::npos) << show;
  EXPECT_NE(show.find("  #2      2 blocks: 12 13\n"), std::string::npos) << show;
}

TEST_F(HeatmapTest, RowsAreLabelledWithTheirFirstBlockAndItsByteOffset) {
  Picture p = Draw();
  auto axis = Texts(p, "axis");
  EXPECT_TRUE(Has(axis, "block 0 \xc2\xb7 0 B"));
  EXPECT_TRUE(Has(axis, "block 128 \xc2\xb7 512 KiB"));
  // A 16 GiB volume of 64 KiB blocks: 64 blocks a cell, 4096 a row, every
  // fourth row labelled.
  HeatmapRequest big;
  big.extension = "site-a";
  big.volume = "big";
  big.volume_blocks = 262144;
  big.block_size = 65536;
  big.present = [](const std::function<void(uint64_t)>& visit) {
    visit(0);
    return Status::Ok();
  };
  Picture q;
  ASSERT_TRUE(DrawHeatmap(*db_, big, &q).ok());
  axis = Texts(q, "axis");
  EXPECT_TRUE(Has(axis, "block 16384 \xc2\xb7 1 GiB"));
  EXPECT_TRUE(Has(axis, "block 245760 \xc2\xb7 15 GiB"));
  EXPECT_FALSE(Has(axis, "block 4096 \xc2\xb7 256 MiB"));
  EXPECT_NE(FindRect(q, "cell-4095"), nullptr);
  EXPECT_EQ(FindRect(q, "cell-4096"), nullptr);
  EXPECT_EQ(FindRect(q, "cell-0")->fill, kHeatNeverRead);
  EXPECT_TRUE(FindRect(q, "cell-1")->hatched);
  // A failed read of the snapshot's map fails the picture.
  big.present = [](const std::function<void(uint64_t)>&) {
    return Status::Corruption("snapshot: block map failed authentication");
  };
  EXPECT_EQ(DrawHeatmap(*db_, big, &q).code(), Status::Code::kCorruption);
}

// Reads back a PNG file: its size and RGB pixels.
struct Decoded {
  uint32_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
  Rgb At(int x, int y) const {
    const uint8_t* px = &rgb[(static_cast<size_t>(y) * width + static_cast<size_t>(x)) * 3];
    return {px[0], px[1], px[2]};
  }
};

bool DecodePng(const std::string& path, Decoded* out) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) return false;
  image.format = PNG_FORMAT_RGB;
  out->width = image.width;
  out->height = image.height;
  out->rgb.resize(static_cast<size_t>(image.width) * image.height * 3);
  return png_image_finish_read(&image, nullptr, out->rgb.data(), 0, nullptr) != 0;
}

TEST_F(HeatmapTest, PngDrawsTheSameCellsOutlinesAndColourBar) {
  Picture p = Draw();
  std::string png;
  ASSERT_TRUE(RenderHeatmap(*db_, Request(), HeatmapFormat::kPng, &png).ok());
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  const std::string path = dir_ / "heat.png";
  ASSERT_TRUE(WriteFileAtomically(dir_.path(), path, AsBytes(png), 0644, true).ok());
  Decoded img;
  ASSERT_TRUE(DecodePng(path, &img));
  EXPECT_EQ(img.width, static_cast<uint32_t>(p.width));
  EXPECT_EQ(img.height, static_cast<uint32_t>(p.height));
  auto centre = [&](uint64_t b) {
    const Rect* r = FindRect(p, Cell(b));
    return img.At(r->x + r->width / 2, r->y + r->height / 2);
  };
  EXPECT_EQ(centre(1), Viridis(1.0));
  EXPECT_EQ(centre(30), Viridis(0.0));
  EXPECT_EQ(centre(0), kHeatNeverRead);
  // A hole's cell: the hatch's two colours and nothing else.
  const Rect* hole = FindRect(p, Cell(21));
  std::set<std::string> seen;
  for (int y = hole->y; y < hole->y + hole->height; ++y) {
    for (int x = hole->x; x < hole->x + hole->width; ++x) seen.insert(img.At(x, y).Hex());
  }
  EXPECT_EQ(seen, (std::set<std::string>{kHeatHole.Hex(), kHeatHoleLine.Hex()}));
  // Cluster 1's outline left of block 1, and the gap between cells 4 and 5
  // left as background (no cluster there).
  const Rect* c1 = FindRect(p, Cell(1));
  EXPECT_EQ(img.At(c1->x - 1, c1->y + 4), kHeatCluster);
  const Rect* c5 = FindRect(p, Cell(5));
  EXPECT_EQ(img.At(c5->x - 1, c5->y + 4), p.background);
  // The colour bar: top of the palette at its top, bottom at its bottom.
  auto bar = GroupRects(p, "legend");
  ASSERT_FALSE(bar.empty());
  EXPECT_EQ(img.At(bar.front()->x + 8, bar.front()->y), Viridis(1.0 - 0.5 / 100));
  // Text is not drawn in the PNG: where the title's first letter would be
  // stays background.
  const Text* title = std::get_if<Text>(&p.elements.front().shape);
  ASSERT_NE(title, nullptr);
  EXPECT_EQ(img.At(title->x + 3, title->y - 6), p.background);
}

TEST_F(HeatmapTest, SvgHasTheCellsOutlinesAndLabels) {
  std::string svg;
  ASSERT_TRUE(RenderHeatmap(*db_, Request(), HeatmapFormat::kSvg, &svg).ok());
  namespace pt = boost::property_tree;
  pt::ptree doc;
  std::istringstream in(svg);
  ASSERT_NO_THROW(pt::read_xml(in, doc)) << svg.substr(0, 400);
  const pt::ptree& root = doc.get_child("svg");
  // (read as text: get<int> warns under the sanitizers' -O1 in Boost 1.81)
  EXPECT_EQ(std::stoi(root.get<std::string>("<xmlattr>.width")), Draw().width);
  std::map<std::string, std::string> fills;  // rect id -> fill
  std::map<std::string, pt::ptree> groups;
  std::set<std::string> patterns, texts;
  for (const auto& [name, child] : root) {
    if (name == "g") groups[child.get<std::string>("<xmlattr>.id")] = child;
    if (name == "defs") {
      for (const auto& [n, pat] : child) {
        if (n == "pattern") patterns.insert(pat.get<std::string>("<xmlattr>.id"));
      }
    }
  }
  for (const auto& [id, g] : groups) {
    for (const auto& [name, child] : g) {
      if (name == "rect" && child.get_optional<std::string>("<xmlattr>.id")) {
        fills[child.get<std::string>("<xmlattr>.id")] = child.get<std::string>("<xmlattr>.fill");
      }
      if (name == "text") texts.insert(child.data());
    }
  }
  EXPECT_EQ(fills[Cell(1)], "#fde725");
  EXPECT_EQ(fills[Cell(30)], "#440154");
  EXPECT_EQ(fills[Cell(0)], kHeatNeverRead.Hex());
  const std::string hatch =
      "hatch-" + kHeatHole.Hex().substr(1) + "-" + kHeatHoleLine.Hex().substr(1);
  EXPECT_EQ(fills[Cell(20)], "url(#" + hatch + ")");
  EXPECT_TRUE(patterns.count(hatch));
  for (const char* c : {"cluster-1", "cluster-2"}) {
    ASSERT_TRUE(groups.count(c)) << c;
    EXPECT_GE(groups[c].count("rect"), 4u) << c;
    EXPECT_EQ(groups[c].get_child("rect.<xmlattr>.fill").data(), kHeatCluster.Hex());
  }
  EXPECT_TRUE(texts.count("block 128 \xc2\xb7 512 KiB"));
  EXPECT_TRUE(texts.count("1") && texts.count("2"));
  EXPECT_TRUE(texts.count("never read"));
  EXPECT_TRUE(texts.count("not in the snapshot (a hole), never read"));
  EXPECT_EQ(root.get<std::string>("title"), "Blocks read: vol by site-a");
}

TEST(PictureTest, ViridisIsInterpolatedBetweenItsStops) {
  EXPECT_EQ(Viridis(0.5).Hex(), "#21918c");  // entry 128 of 256 is near the middle
  EXPECT_EQ(Viridis(-1), Viridis(0));
  EXPECT_EQ(Viridis(2), Viridis(1));
  // Monotonic in lightness, roughly: green rises over the whole range.
  for (int i = 1; i <= 100; ++i) EXPECT_GE(Viridis(i / 100.0).g, Viridis((i - 1) / 100.0).g);
}

TEST(PictureTest, TextIsEscapedInSvg) {
  Picture p;
  p.width = 10;
  p.height = 10;
  p.title = "a<b & \"c\"";
  p.Add(Text{0, 5, "<x&y>", 12, Text::Anchor::kStart, {}, false}, "g\"1");
  std::string svg = RenderSvg(p);
  EXPECT_NE(svg.find("<title>a&lt;b &amp; &quot;c&quot;</title>"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">&lt;x&amp;y&gt;</text>"), std::string::npos) << svg;
  EXPECT_NE(svg.find("<g id=\"g&quot;1\">"), std::string::npos) << svg;
  std::string png;
  EXPECT_TRUE(RenderPng(p, &png).ok());
  p.width = 0;
  EXPECT_EQ(RenderPng(p, &png).code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace lsifs
