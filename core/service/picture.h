// A picture described once and drawn two ways: as SVG text and as PNG
// pixels (libpng). What a report draws (the heat map of `lsictl access
// heatmap`) is built as a Picture, so that both files show the same cells,
// outlines, ticks and legend; only text is left out of the PNG (see
// RenderPng).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "core/util/status.h"

namespace lsifs {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
  std::string Hex() const;  // "#rrggbb"
};

// An axis-aligned rectangle in whole pixels, filled with one colour or
// hatched: pixel (x, y) of a hatched rectangle is `hatch_line` where
// (x + y) is a multiple of kHatchPeriod (diagonal lines, continuous across
// neighbouring rectangles), `fill` elsewhere. Outlines and tick marks are
// thin rectangles too, so that both renderers cover the same pixels.
struct Rect {
  static constexpr int kHatchPeriod = 4;
  int x = 0, y = 0, width = 0, height = 0;
  Rgb fill;
  bool hatched = false;
  Rgb hatch_line;
  std::string id;  // names the element in the SVG; empty: none

  static Rect Solid(int x, int y, int width, int height, Rgb fill) {
    return {x, y, width, height, fill, false, {}, {}};
  }
  static Rect Hatched(int x, int y, int width, int height, Rgb fill, Rgb line) {
    return {x, y, width, height, fill, true, line, {}};
  }
};

// One line of text; (x, y) is the start, middle or end of its baseline.
struct Text {
  enum class Anchor { kStart, kMiddle, kEnd };
  int x = 0, y = 0;
  std::string text;  // UTF-8
  int size = 12;     // pixels
  Anchor anchor = Anchor::kStart;
  Rgb colour;
  bool bold = false;
};

struct Picture {
  int width = 0, height = 0;
  Rgb background{255, 255, 255};
  std::string title;  // the SVG's <title>
  // Elements are drawn in order, later ones on top. Consecutive elements of
  // the same non-empty group are one <g id="GROUP"> in the SVG.
  struct Element {
    std::string group;
    std::variant<Rect, Text> shape;
  };
  std::vector<Element> elements;

  void Add(Rect r, const std::string& group = "") { elements.push_back({group, std::move(r)}); }
  void Add(Text t, const std::string& group = "") { elements.push_back({group, std::move(t)}); }
};

// viridis (perceptually uniform, readable in grey and by most colour-blind
// people): 0 is dark purple #440154, 0.5 teal #21918c, 1 yellow #fde725;
// `t` outside [0, 1] is clamped.
Rgb Viridis(double t);

std::string RenderSvg(const Picture& picture);
// The picture's rectangles as an 8-bit RGB PNG. Text is not drawn: a
// raster needs a font, and none ships with lsifs or is sure to be
// installed; the SVG carries the words.
Status RenderPng(const Picture& picture, std::string* png);

}  // namespace lsifs
