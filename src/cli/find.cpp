// palette find RESULTS... --color C : the images of results files (what extract wrote, CSV or
// JSON Lines) that hold a colour near C (CIEDE2000), best first. No image is decoded again.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "console.hpp"
#include "palette/color.hpp"
#include "palette/error.hpp"
#include "palette/writer.hpp"

namespace palette::cli {
namespace {

struct FindOptions {
  std::vector<std::string> results;
  std::string color;
  double max_delta_e = 10.0;
  double min_share = 0.0;
  std::size_t top = 0;
  std::string output = "-";
  std::string format = "csv";
};

// One row of a results file: its image and palette (error rows are skipped).
struct ResultRow {
  std::string file;
  std::vector<std::uint32_t> colors;
  std::vector<double> shares;
};

// "#rrggbb", "rrggbb" or "rgb(r, g, b)" (0-255 each).
std::optional<std::uint32_t> parse_color(std::string_view s) {
  auto hex = [](std::string_view h) -> std::optional<std::uint32_t> {
    if (h.size() != 6) return std::nullopt;
    std::uint32_t v = 0;
    const auto [p, ec] = std::from_chars(h.data(), h.data() + 6, v, 16);
    if (ec != std::errc() || p != h.data() + 6) return std::nullopt;
    return v;
  };
  if (!s.empty() && s[0] == '#') return hex(s.substr(1));
  if (s.starts_with("rgb(") && s.ends_with(")")) {
    std::string_view body = s.substr(4, s.size() - 5);
    std::uint32_t out = 0;
    for (int i = 0; i < 3; ++i) {
      while (!body.empty() && body.front() == ' ') body.remove_prefix(1);
      int v = -1;
      const auto [p, ec] = std::from_chars(body.data(), body.data() + body.size(), v);
      if (ec != std::errc() || v < 0 || v > 255) return std::nullopt;
      body.remove_prefix(static_cast<std::size_t>(p - body.data()));
      while (!body.empty() && body.front() == ' ') body.remove_prefix(1);
      if (i < 2) {
        if (body.empty() || body.front() != ',') return std::nullopt;
        body.remove_prefix(1);
      }
      out = out << 8 | static_cast<std::uint32_t>(v);
    }
    if (!body.empty()) return std::nullopt;
    return out;
  }
  return hex(s);
}

// The fields of one CSV record (RFC 4180).
std::vector<std::string> csv_fields(std::string_view line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

// Reads one results file, CSV (extract's header) or JSON Lines, streaming; calls on_row for
// every row that has a palette. Throws palette::Error naming the file and line of a bad row.
template <class F>
void read_results(const std::string& path, F&& on_row) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path + ": " + std::strerror(errno));
  const int first = in.peek();
  const bool jsonl = first == '{';
  RowSplitter splitter(jsonl ? OutputFormat::kJsonl : OutputFormat::kCsv);
  std::size_t line_no = 0, k = 0;
  auto bad = [&](const std::string& why) {
    throw Error(path + ":" + std::to_string(line_no) + ": " + why);
  };
  auto on_line = [&](std::string_view line) {
    ++line_no;
    if (line.empty()) return;
    ResultRow row;
    if (jsonl) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object() || !j.contains("file") || !j["file"].is_string()) {
        bad("not a row of palette's JSON Lines");
      }
      if (j.contains("error") && !j["error"].is_null()) return;
      row.file = j["file"].get<std::string>();
      const auto& colors = j.value("colors", nlohmann::json::array());
      const auto& shares = j.value("shares", nlohmann::json::array());
      if (!colors.is_array() || !shares.is_array() || colors.size() != shares.size()) {
        bad("colors and shares do not match");
      }
      for (std::size_t i = 0; i < colors.size(); ++i) {
        const auto c = colors[i].is_string() ? parse_color(colors[i].get<std::string>())
                                             : std::optional<std::uint32_t>{};
        if (!c || !shares[i].is_number()) bad("a colour or share is not one");
        row.colors.push_back(*c);
        row.shares.push_back(shares[i].get<double>());
      }
    } else {
      const std::vector<std::string> f = csv_fields(line);
      if (line_no == 1) {
        if (f.empty() || f[0] != "file" || f.back() != "error" || f.size() % 2 != 0) {
          bad("not a palette results file (CSV header file,color_1..,share_1..,error)");
        }
        k = (f.size() - 2) / 2;
        return;
      }
      if (f.size() < 2 * k + 2) bad("a row with too few columns");
      if (!f[2 * k + 1].empty()) return;  // an error row
      row.file = f[0];
      for (std::size_t i = 0; i < k; ++i) {
        if (f[1 + i].empty()) break;
        const auto c = parse_color(f[1 + i]);
        double share = 0;
        const auto& s = f[1 + k + i];
        const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), share);
        if (!c || ec != std::errc() || p != s.data() + s.size())
          bad("a colour or share is not one");
        row.colors.push_back(*c);
        row.shares.push_back(share);
      }
    }
    on_row(row);
  };
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    splitter.feed(std::string_view(buf.data(), static_cast<std::size_t>(in.gcount())), on_line);
  }
}

struct Match {
  std::string file;
  double delta_e;
  std::uint32_t color;
  double share;
};

bool better(const Match& a, const Match& b) {
  if (a.delta_e != b.delta_e) return a.delta_e < b.delta_e;
  return a.share > b.share;
}

int run(const FindOptions& o) {
  setup_logging(0);
  const auto target = parse_color(o.color);
  if (!target) {
    throw UsageError("--color: not a colour: '" + o.color + "' (#rrggbb, rrggbb or rgb(r,g,b))");
  }
  const std::array<double, 3> lab = srgb_to_lab(*target);
  std::vector<Match> matches;
  for (const auto& path : o.results) {
    try {
      read_results(path, [&](const ResultRow& row) {
        std::optional<Match> best;
        for (std::size_t i = 0; i < row.colors.size(); ++i) {
          if (row.shares[i] < o.min_share) continue;
          const Match m{row.file, delta_e2000(lab, srgb_to_lab(row.colors[i])), row.colors[i],
                        row.shares[i]};
          if (m.delta_e <= o.max_delta_e && (!best || better(m, *best))) best = m;
        }
        if (best) matches.push_back(std::move(*best));
      });
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
  }
  std::stable_sort(matches.begin(), matches.end(), better);
  if (o.top > 0 && matches.size() > o.top) matches.resize(o.top);

  std::FILE* out = stdout;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(nullptr, &std::fclose);
  if (o.output != "-") {
    file.reset(std::fopen(o.output.c_str(), "wb"));
    if (!file) throw UsageError("cannot open output '" + o.output + "': " + std::strerror(errno));
    out = file.get();
  }
  std::string text = o.format == "jsonl" ? "" : "file,score,color,share\n";
  for (const auto& m : matches) {
    char score[32], share[32];
    std::snprintf(score, sizeof score, "%.4f", m.delta_e);
    std::snprintf(share, sizeof share, "%.4f", m.share);
    if (o.format == "jsonl") {
      text += nlohmann::ordered_json{{"file", m.file},
                                     {"score", nlohmann::json::parse(score)},
                                     {"color", hex_color(m.color)},
                                     {"share", nlohmann::json::parse(share)}}
                  .dump() +
              "\n";
    } else {
      text += csv_field(m.file) + "," + score + "," + hex_color(m.color) + "," + share + "\n";
    }
  }
  if (std::fwrite(text.data(), 1, text.size(), out) != text.size() || std::fflush(out) != 0) {
    throw Error(std::string("cannot write output: ") + std::strerror(errno));
  }
  return kExitOk;
}

}  // namespace

std::function<int()> add_find(CLI::App& app) {
  auto o = std::make_shared<FindOptions>();
  CLI::App* cmd = app.add_subcommand(
      "find", "Find the images of results files (from extract) that hold a colour, best first.");
  cmd->add_option("results", o->results, "Results files written by palette extract (CSV or JSONL)")
      ->required();
  cmd->add_option("--color", o->color, "The colour: #rrggbb, rrggbb or rgb(r,g,b)")->required();
  cmd->add_option("--max-delta-e", o->max_delta_e,
                  "Largest CIEDE2000 difference between the colour and an image's colour")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  cmd->add_option("--min-share", o->min_share, "Smallest share of the matching colour (0..1)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--top", o->top, "At most this many images (default: all that match)");
  cmd->add_option("-o,--output", o->output, "Output file, - for stdout")->capture_default_str();
  cmd->add_option("--format", o->format, "Output format")
      ->check(CLI::IsMember({"csv", "jsonl"}))
      ->capture_default_str();
  return [o] { return run(*o); };
}

}  // namespace palette::cli
