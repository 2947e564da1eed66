#include "palette/export.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "palette/color_names.hpp"

namespace palette {
namespace {

std::string percent(double share) {
  char text[16];
  std::snprintf(text, sizeof text, "%.1f%%", 100.0 * share);
  return text;
}

// A name for CSS custom properties: lower-case letters, digits and '-', from the file's stem.
std::string slug(const std::string& text) {
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c)) {
      out += static_cast<char>(std::tolower(c));
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "p-" + out;
  return out;
}

std::string stem(const std::string& file) { return std::filesystem::path(file).stem().string(); }

// A name on one line (GPL and ASE names are single lines).
std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return s;
}

// GIMP palette (GIMP's and Inkscape's .gpl): a header, then "R G B<tab>name" lines.
std::string to_gpl(const std::vector<ExportPalette>& entries, const std::string& name) {
  std::size_t columns = 1;
  for (const auto& e : entries) columns = std::max(columns, e.swatches.size());
  std::string out = "GIMP Palette\nName: " + one_line(name) +
                    "\nColumns: " + std::to_string(std::min<std::size_t>(columns, 16)) + "\n#\n";
  for (const auto& e : entries) {
    out += "# " + one_line(e.file) + "\n";
    for (std::size_t i = 0; i < e.swatches.size(); ++i) {
      const std::uint32_t c = e.swatches[i].rgb;
      char line[64];
      std::snprintf(line, sizeof line, "%3u %3u %3u\t", c >> 16, c >> 8 & 0xFF, c & 0xFF);
      out += line;
      out += one_line(stem(e.file)) + " " + std::to_string(i + 1) + " (" +
             std::string(nearest_named_color(c).name) + ", " + percent(e.swatches[i].share) + ")\n";
    }
  }
  return out;
}

// Adobe Swatch Exchange: "ASEF", version 1.0, a block count, then blocks (big-endian): a group
// start (0xC001) per image with its name, its colours (0x0001: name, "RGB ", three float32 in
// 0..1, type 2 = normal), a group end (0xC002).
class AseWriter {
 public:
  void u16(std::uint16_t v) {
    out_ += static_cast<char>(v >> 8);
    out_ += static_cast<char>(v & 0xFF);
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v & 0xFFFF));
  }
  void f32(float f) {
    std::uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    u32(bits);
  }
  // A name: its length in UTF-16 units with the terminating 0, the units big-endian, then 0.
  static std::string name(const std::string& utf8) {
    AseWriter w;
    std::vector<std::uint16_t> units;
    for (std::size_t i = 0; i < utf8.size() && units.size() < 1000;) {
      const auto c = static_cast<unsigned char>(utf8[i]);
      std::uint32_t cp = 0xFFFD;
      int len = 1;
      if (c < 0x80) {
        cp = c;
      } else if ((c >> 5) == 0x6 && i + 1 < utf8.size()) {
        cp = (c & 0x1F) << 6 | (utf8[i + 1] & 0x3F);
        len = 2;
      } else if ((c >> 4) == 0xE && i + 2 < utf8.size()) {
        cp = (c & 0x0F) << 12 | (utf8[i + 1] & 0x3F) << 6 | (utf8[i + 2] & 0x3F);
        len = 3;
      } else if ((c >> 3) == 0x1E && i + 3 < utf8.size()) {
        cp = (c & 0x07) << 18 | (utf8[i + 1] & 0x3F) << 12 | (utf8[i + 2] & 0x3F) << 6 |
             (utf8[i + 3] & 0x3F);
        len = 4;
      }
      i += static_cast<std::size_t>(len);
      if (cp >= 0x10000) {
        cp -= 0x10000;
        units.push_back(static_cast<std::uint16_t>(0xD800 + (cp >> 10)));
        units.push_back(static_cast<std::uint16_t>(0xDC00 + (cp & 0x3FF)));
      } else {
        units.push_back(static_cast<std::uint16_t>(cp));
      }
    }
    w.u16(static_cast<std::uint16_t>(units.size() + 1));
    for (const auto u : units) w.u16(u);
    w.u16(0);
    return w.out_;
  }
  void block(std::uint16_t type, const std::string& body) {
    u16(type);
    u32(static_cast<std::uint32_t>(body.size()));
    out_ += body;
    ++blocks_;
  }
  std::string file() const {
    AseWriter head;
    head.out_ = "ASEF";
    head.u16(1);
    head.u16(0);
    head.u32(blocks_);
    return head.out_ + out_;
  }
  std::string out_;

 private:
  std::uint32_t blocks_ = 0;
};

std::string to_ase(const std::vector<ExportPalette>& entries) {
  AseWriter w;
  for (const auto& e : entries) {
    w.block(0xC001, AseWriter::name(one_line(e.file)));
    for (std::size_t i = 0; i < e.swatches.size(); ++i) {
      const std::uint32_t c = e.swatches[i].rgb;
      AseWriter body;
      body.out_ = AseWriter::name(hex_color(c) + " (" + percent(e.swatches[i].share) + ")");
      body.out_ += "RGB ";
      body.f32(static_cast<float>((c >> 16) / 255.0));
      body.f32(static_cast<float>((c >> 8 & 0xFF) / 255.0));
      body.f32(static_cast<float>((c & 0xFF) / 255.0));
      body.u16(2);  // a normal (process) colour
      w.block(0x0001, body.out_);
    }
    w.block(0xC002, {});
  }
  return w.file();
}

// CSS custom properties: --NAME-1: #rrggbb; per colour, one block per image.
std::string to_css(const std::vector<ExportPalette>& entries, const std::string& name) {
  std::string out = ":root {\n";
  for (std::size_t n = 0; n < entries.size(); ++n) {
    const auto& e = entries[n];
    const std::string prefix = entries.size() == 1 ? slug(name) : slug(stem(e.file));
    std::string file = one_line(e.file);
    for (std::size_t p = file.find("*/"); p != std::string::npos; p = file.find("*/")) {
      file.replace(p, 2, "* /");
    }
    out += (n ? "\n" : "") + std::string("  /* ") + file + " */\n";
    for (std::size_t i = 0; i < e.swatches.size(); ++i) {
      out += "  --" + prefix + "-" + std::to_string(i + 1) + ": " + hex_color(e.swatches[i].rgb) +
             ";  /* " + percent(e.swatches[i].share) + " */\n";
    }
  }
  return out + "}\n";
}

}  // namespace

std::optional<ExportFormat> parse_export_format(std::string_view name) {
  if (name == "gpl") return ExportFormat::kGpl;
  if (name == "ase") return ExportFormat::kAse;
  if (name == "css") return ExportFormat::kCss;
  return std::nullopt;
}

std::string_view to_string(ExportFormat format) {
  switch (format) {
    case ExportFormat::kAse:
      return "ase";
    case ExportFormat::kCss:
      return "css";
    default:
      return "gpl";
  }
}

ExportPalette export_palette(const Row& row) {
  ExportPalette p;
  p.file = row.file;
  const Palette& pal = row.palette;
  const std::size_t n = std::min(pal.colors.size(), pal.shares_e4.size());
  p.swatches.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    // What a results reader gets from the share written as "0.1234": the nearest double.
    p.swatches.push_back({pal.colors[i], pal.shares_e4[i] / 10000.0});
  }
  return p;
}

std::string default_export_name(const std::vector<ExportPalette>& palettes,
                                std::string_view source) {
  return palettes.size() == 1 ? stem(palettes[0].file) : stem(std::string(source));
}

std::string export_palettes(ExportFormat format, const std::vector<ExportPalette>& palettes,
                            const std::string& name) {
  switch (format) {
    case ExportFormat::kAse:
      return to_ase(palettes);
    case ExportFormat::kCss:
      return to_css(palettes, name);
    default:
      return to_gpl(palettes, name);
  }
}

}  // namespace palette
