#include "core/service/picture.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <set>

namespace lsifs {
namespace {

// matplotlib's viridis (van der Walt and Smith, CC0), every eighth of its
// 256 entries and the last, as 8-bit sRGB; `at` is the entry's index.
struct Stop {
  uint8_t at, r, g, b;
};
constexpr Stop kViridis[] = {
    {0, 68, 1, 84},      {8, 71, 13, 96},     {16, 72, 24, 106},   {24, 72, 35, 116},
    {32, 71, 45, 123},   {40, 69, 55, 129},   {48, 66, 64, 134},   {56, 62, 73, 137},
    {64, 59, 82, 139},   {72, 55, 91, 141},   {80, 51, 99, 141},   {88, 47, 107, 142},
    {96, 44, 114, 142},  {104, 41, 122, 142}, {112, 38, 130, 142}, {120, 35, 137, 142},
    {128, 33, 145, 140}, {136, 31, 152, 139}, {144, 31, 160, 136}, {152, 34, 167, 133},
    {160, 40, 174, 128}, {168, 50, 182, 122}, {176, 63, 188, 115}, {184, 78, 195, 107},
    {192, 94, 201, 98},  {200, 112, 207, 87}, {208, 132, 212, 75}, {216, 152, 216, 62},
    {224, 173, 220, 48}, {232, 194, 223, 35}, {240, 216, 226, 25}, {248, 236, 229, 27},
    {255, 253, 231, 37},
};

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string PatternId(const Rect& r) {
  return "hatch-" + r.fill.Hex().substr(1) + "-" + r.hatch_line.Hex().substr(1);
}

const char* AnchorName(Text::Anchor a) {
  switch (a) {
    case Text::Anchor::kStart:
      return "start";
    case Text::Anchor::kMiddle:
      return "middle";
    case Text::Anchor::kEnd:
      return "end";
  }
  return "start";
}

}  // namespace

std::string Rgb::Hex() const {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
  return buf;
}

Rgb Viridis(double t) {
  double at = std::clamp(std::isnan(t) ? 0.0 : t, 0.0, 1.0) * 255.0;
  size_t i = 1;
  while (i + 1 < std::size(kViridis) && kViridis[i].at < at) ++i;
  const Stop& lo = kViridis[i - 1];
  const Stop& hi = kViridis[i];
  double f = (at - lo.at) / (hi.at - lo.at);
  auto mix = [f](uint8_t a, uint8_t b) {
    return static_cast<uint8_t>(std::lround(a + (b - a) * f));
  };
  return {mix(lo.r, hi.r), mix(lo.g, hi.g), mix(lo.b, hi.b)};
}

std::string RenderSvg(const Picture& p) {
  std::string out;
  char buf[512];
  // crispEdges: the rectangles sit on whole pixels, as in the PNG.
  std::snprintf(buf, sizeof buf,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
                "shape-rendering=\"crispEdges\">\n",
                p.width, p.height, p.width, p.height);
  out = buf;
  if (!p.title.empty()) out += "<title>" + Escape(p.title) + "</title>\n";
  std::set<std::string> patterns;
  std::string defs;
  for (const auto& e : p.elements) {
    const Rect* r = std::get_if<Rect>(&e.shape);
    if (r == nullptr || !r->hatched || !patterns.insert(PatternId(*r)).second) continue;
    // Lines through the pixels whose x + y is a multiple of the period.
    const int k = Rect::kHatchPeriod;
    std::snprintf(buf, sizeof buf,
                  "<pattern id=\"%s\" width=\"%d\" height=\"%d\" patternUnits=\"userSpaceOnUse\">"
                  "<rect width=\"%d\" height=\"%d\" fill=\"%s\"/>"
                  "<path d=\"M0,1 L1,0 M0,%d L%d,0\" stroke=\"%s\" stroke-width=\"1\"/>"
                  "</pattern>\n",
                  PatternId(*r).c_str(), k, k, k, k, r->fill.Hex().c_str(), k + 1, k + 1,
                  r->hatch_line.Hex().c_str());
    defs += buf;
  }
  if (!defs.empty()) out += "<defs>\n" + defs + "</defs>\n";
  std::snprintf(buf, sizeof buf, "<rect width=\"%d\" height=\"%d\" fill=\"%s\"/>\n", p.width,
                p.height, p.background.Hex().c_str());
  out += buf;
  std::string group;
  for (const auto& e : p.elements) {
    if (e.group != group) {
      if (!group.empty()) out += "</g>\n";
      if (!e.group.empty()) out += "<g id=\"" + Escape(e.group) + "\">\n";
      group = e.group;
    }
    if (const Rect* r = std::get_if<Rect>(&e.shape)) {
      std::string fill = r->hatched ? "url(#" + PatternId(*r) + ")" : r->fill.Hex();
      std::string id = r->id.empty() ? "" : " id=\"" + Escape(r->id) + "\"";
      std::snprintf(buf, sizeof buf,
                    "<rect%s x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n",
                    id.c_str(), r->x, r->y, r->width, r->height, fill.c_str());
      out += buf;
    } else {
      const Text& t = std::get<Text>(e.shape);
      std::snprintf(buf, sizeof buf,
                    "<text x=\"%d\" y=\"%d\" font-size=\"%d\" text-anchor=\"%s\" fill=\"%s\"%s>",
                    t.x, t.y, t.size, AnchorName(t.anchor), t.colour.Hex().c_str(),
                    t.bold ? " font-weight=\"bold\"" : "");
      out += buf + Escape(t.text) + "</text>\n";
    }
  }
  if (!group.empty()) out += "</g>\n";
  out += "</svg>\n";
  return out;
}

Status RenderPng(const Picture& p, std::string* png) {
  if (p.width <= 0 || p.height <= 0 || p.width > 1 << 14 || p.height > 1 << 14) {
    return Status::InvalidArgument("picture of " + std::to_string(p.width) + "x" +
                                   std::to_string(p.height) + " pixels cannot be drawn");
  }
  const size_t w = static_cast<size_t>(p.width), h = static_cast<size_t>(p.height);
  std::vector<uint8_t> pixels(w * h * 3);
  auto put = [&](size_t x, size_t y, Rgb c) {
    uint8_t* px = &pixels[(y * w + x) * 3];
    px[0] = c.r;
    px[1] = c.g;
    px[2] = c.b;
  };
  for (size_t y = 0; y < h; ++y) {
    for (size_t x = 0; x < w; ++x) put(x, y, p.background);
  }
  for (const auto& e : p.elements) {
    const Rect* r = std::get_if<Rect>(&e.shape);
    if (r == nullptr) continue;
    const int x0 = std::max(r->x, 0), x1 = std::min(r->x + r->width, p.width);
    const int y0 = std::max(r->y, 0), y1 = std::min(r->y + r->height, p.height);
    for (int y = y0; y < y1; ++y) {
      for (int x = x0; x < x1; ++x) {
        bool line = r->hatched && (x + y) % Rect::kHatchPeriod == 0;
        put(static_cast<size_t>(x), static_cast<size_t>(y), line ? r->hatch_line : r->fill);
      }
    }
  }
  // libpng's simplified API: it handles its own errors (no longjmp through
  // this code) and compresses with zlib.
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(w);
  image.height = static_cast<png_uint_32>(h);
  image.format = PNG_FORMAT_RGB;
  // Room for the pixels uncompressed and then some; when libpng needs more
  // it says how much, and the write is made again.
  png_alloc_size_t size = pixels.size() + h + 64 * 1024;
  for (int attempt = 0; attempt < 2; ++attempt) {
    png->resize(static_cast<size_t>(size));
    png_alloc_size_t room = size;
    if (png_image_write_to_memory(&image, png->data(), &room, 0, pixels.data(), 0, nullptr)) {
      png->resize(static_cast<size_t>(room));
      return Status::Ok();
    }
    if (room <= size) break;  // not for want of room
    size = room;
  }
  std::string why = image.message[0] != '\0' ? image.message : "unknown error";
  png_image_free(&image);
  png->clear();
  return Status::IOError("PNG encoding failed: " + why);
}

}  // namespace lsifs
