// palette export --to gpl|ase|css RESULTS... [-o FILE]: the palettes of a results file (what
// extract wrote) for design tools: a GIMP/Inkscape palette (GPL), an Adobe Swatch Exchange
// file (ASE) or CSS custom properties. Every image's palette by default, one image's with
// --file.

#include <spdlog/spdlog.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "console.hpp"
#include "palette/color_names.hpp"
#include "palette/error.hpp"
#include "palette/results.hpp"
#include "palette/writer.hpp"

namespace palette::cli {
namespace {

struct ExportOptions {
  std::vector<std::string> results;
  std::string to;
  std::string file;  // one image's row only
  std::string output = "-";
  std::string name;  // the palette's name (GPL Name:, CSS prefix); default from the input
};

struct Swatch {
  std::uint32_t rgb;
  double share;
};

struct Entry {
  std::string file;
  std::vector<Swatch> swatches;
};

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
std::string to_gpl(const std::vector<Entry>& entries, const std::string& name) {
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

std::string to_ase(const std::vector<Entry>& entries) {
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
std::string to_css(const std::vector<Entry>& entries, const std::string& name) {
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

int run(const ExportOptions& o) {
  setup_logging(0);
  std::vector<Entry> entries;
  for (const auto& path : o.results) {
    try {
      read_results(path, [&](const ResultsRow& row) {
        if (row.failed || row.colors.empty()) return;
        if (!o.file.empty() && row.file != o.file) return;
        Entry e;
        e.file = std::string(row.file);
        for (std::size_t i = 0; i < row.colors.size(); ++i) {
          e.swatches.push_back({row.colors[i], row.shares[i]});
        }
        entries.push_back(std::move(e));
      });
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
  }
  if (entries.empty()) {
    throw UsageError(o.file.empty() ? "no palettes in the results (every row an error?)"
                                    : "no row for '" + o.file + "' in the results");
  }
  if (!o.file.empty() && entries.size() > 1) entries.resize(1);
  const std::string name = !o.name.empty()       ? o.name
                           : entries.size() == 1 ? stem(entries[0].file)
                                                 : stem(o.results[0]);
  const std::string text = o.to == "gpl"   ? to_gpl(entries, name)
                           : o.to == "ase" ? to_ase(entries)
                                           : to_css(entries, name);
  write_output(o.output, text);
  return kExitOk;
}

}  // namespace

std::function<int()> add_export(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Palettes of results files (from extract) for design tools: GIMP/Inkscape (gpl), Adobe "
      "Swatch Exchange (ase), CSS custom properties (css).");
  cmd->add_option("results", o->results, "Results files written by palette extract (CSV or JSONL)")
      ->required();
  cmd->add_option("--to", o->to, "Format")->required()->check(CLI::IsMember({"gpl", "ase", "css"}));
  cmd->add_option("--file", o->file, "Only this image's palette (its file column)");
  cmd->add_option("--name", o->name, "Palette name (GPL Name:, CSS property prefix)");
  cmd->add_option("-o,--output", o->output, "Output file, - for stdout")->capture_default_str();
  return [o] { return run(*o); };
}

}  // namespace palette::cli
