#include "palette/writer.hpp"

#include <cstdio>

#include "palette/color_names.hpp"

namespace palette {
namespace {

std::string share_text(std::uint32_t e4) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%04u", e4 / 10000, e4 % 10000);
  return buf;
}

// Error texts are single-line by contract.
std::string one_line(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

// The quality figures as text: mean ΔE and excluded fraction to 4 decimals.
std::string fixed4(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

class CsvFormatter final : public RowFormatter {
 public:
  CsvFormatter(int k, bool names, bool stats) : k_(k), names_(names), stats_(stats) {}

  std::string header() const override {
    std::string h = "file";
    for (int i = 1; i <= k_; ++i) h += ",color_" + std::to_string(i);
    for (int i = 1; i <= k_; ++i) h += ",share_" + std::to_string(i);
    h += ",error";
    if (names_) {
      for (int i = 1; i <= k_; ++i) h += ",name_" + std::to_string(i);
    }
    if (stats_) h += ",mean_delta_e,distinct_colors,iterations,converged,excluded";
    return h + "\n";
  }

  std::string row(const Row& r) const override {
    std::string line = csv_field(r.file);
    const auto n = static_cast<int>(r.ok() ? r.palette.colors.size() : 0);
    for (int i = 0; i < k_; ++i) {
      line += ',';
      if (i < n) line += hex_color(r.palette.colors[i]);
    }
    for (int i = 0; i < k_; ++i) {
      line += ',';
      if (i < n) line += share_text(r.palette.shares_e4[i]);
    }
    line += ',';
    line += csv_field(one_line(r.error));
    if (names_) {
      for (int i = 0; i < k_; ++i) {
        line += ',';
        if (i < n) line += nearest_named_color(r.palette.colors[i]).name;
      }
    }
    if (stats_) {
      if (r.ok()) {
        const Palette& p = r.palette;
        line += "," + fixed4(p.mean_delta_e) + "," + std::to_string(p.distinct) + "," +
                std::to_string(p.iterations) + "," + (p.converged ? "true" : "false") + "," +
                fixed4(p.excluded);
      } else {
        line += ",,,,,";
      }
    }
    return line + "\n";
  }

  std::string row_start(std::string_view file) const override { return csv_field(file) + ","; }

  // Without names the error is the last field, empty in an ok row; with names it is the field
  // after the file and the 2k colour and share cells (names never hold a comma or a quote).
  bool is_error_row(std::string_view row) const override {
    const int after = (names_ ? k_ : 0) + (stats_ ? 5 : 0);  // columns after error
    if (after == 0) return !row.empty() && row.back() != ',';
    std::size_t end = row.size();
    for (int i = 0; i < after && end != std::string_view::npos && end > 0; ++i) {
      end = row.rfind(',', end - 1);
    }
    return end != std::string_view::npos && end > 0 && row[end - 1] != ',';
  }

 private:
  int k_;
  bool names_;
  bool stats_;
};

// One row per colour: file,rank,hex,r,g,b,share,error, then name and the quality figures when
// asked. An image without colours (an error row) has one row with its error.
class CsvLongFormatter final : public RowFormatter {
 public:
  CsvLongFormatter(bool names, bool stats) : names_(names), stats_(stats) {}

  std::string header() const override {
    std::string h = "file,rank,hex,r,g,b,share,error";
    if (names_) h += ",name";
    if (stats_) h += ",mean_delta_e,distinct_colors,iterations,converged,excluded";
    return h + "\n";
  }

  std::string row(const Row& r) const override {
    const std::string file = csv_field(r.file);
    std::string stats;
    if (stats_) {
      const Palette& p = r.palette;
      stats = r.ok() ? "," + fixed4(p.mean_delta_e) + "," + std::to_string(p.distinct) + "," +
                           std::to_string(p.iterations) + "," + (p.converged ? "true" : "false") +
                           "," + fixed4(p.excluded)
                     : ",,,,,";
    }
    const std::size_t n = r.ok() ? r.palette.colors.size() : 0;
    if (n == 0) {
      return file + ",,,,,,," + csv_field(one_line(r.error)) + (names_ ? "," : "") + stats + "\n";
    }
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t c = r.palette.colors[i];
      out += file + "," + std::to_string(i + 1) + "," + hex_color(c) + "," +
             std::to_string(c >> 16) + "," + std::to_string(c >> 8 & 0xFF) + "," +
             std::to_string(c & 0xFF) + "," + share_text(r.palette.shares_e4[i]) + ",";
      if (names_) out += "," + std::string(nearest_named_color(c).name);
      out += stats + "\n";
    }
    return out;
  }

  std::string row_start(std::string_view file) const override { return csv_field(file) + ","; }

  // (One line of a row: the error is the field after share.)
  bool is_error_row(std::string_view row) const override {
    const int after = (names_ ? 1 : 0) + (stats_ ? 5 : 0);
    std::size_t end = row.size();
    for (int i = 0; i < after && end != std::string_view::npos && end > 0; ++i) {
      end = row.rfind(',', end - 1);
    }
    if (after == 0) return !row.empty() && row.back() != ',';
    return end != std::string_view::npos && end > 0 && row[end - 1] != ',';
  }

 private:
  bool names_, stats_;
};

void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else {
      // Copy a valid UTF-8 sequence; replace an invalid byte with U+FFFD (JSON must be UTF-8).
      int len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
      bool valid = len > 0 && i + len <= s.size();
      for (int j = 1; valid && j < len; ++j) {
        valid = (static_cast<unsigned char>(s[i + j]) & 0xC0) == 0x80;
      }
      if (valid) {
        out.append(s.substr(i, len));
        i += len;
      } else {
        out += "\xEF\xBF\xBD";
        ++i;
      }
    }
  }
  out += '"';
}

class JsonlFormatter final : public RowFormatter {
 public:
  JsonlFormatter(bool names, bool stats) : names_(names), stats_(stats) {}
  std::string header() const override { return {}; }

  std::string row(const Row& r) const override {
    std::string line = "{\"file\":";
    json_string(line, r.file);
    line += ",\"colors\":[";
    const std::size_t n = r.ok() ? r.palette.colors.size() : 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (i) line += ',';
      line += '"' + hex_color(r.palette.colors[i]) + '"';
    }
    line += "],\"shares\":[";
    for (std::size_t i = 0; i < n; ++i) {
      if (i) line += ',';
      line += share_text(r.palette.shares_e4[i]);
    }
    if (names_) {
      // Before "error", which stays last (is_error_row, --resume).
      line += "],\"names\":[";
      for (std::size_t i = 0; i < n; ++i) {
        if (i) line += ',';
        line += '"';
        line += nearest_named_color(r.palette.colors[i]).name;
        line += '"';
      }
    }
    line += "]";
    if (stats_ && r.ok()) {
      const Palette& p = r.palette;
      line += ",\"stats\":{\"mean_delta_e\":" + fixed4(p.mean_delta_e) +
              ",\"distinct_colors\":" + std::to_string(p.distinct) +
              ",\"iterations\":" + std::to_string(p.iterations) +
              ",\"converged\":" + (p.converged ? "true" : "false") +
              ",\"excluded\":" + fixed4(p.excluded) + "}";
    } else if (stats_) {
      line += ",\"stats\":null";
    }
    line += ",\"error\":";
    if (r.ok()) {
      line += "null";
    } else {
      json_string(line, one_line(r.error));
    }
    return line + "}\n";
  }

  std::string row_start(std::string_view file) const override {
    std::string start = "{\"file\":";
    json_string(start, file);
    return start + ",";
  }

  bool is_error_row(std::string_view row) const override {
    return !row.ends_with("\"error\":null}");
  }

 private:
  bool names_;
  bool stats_;
};

}  // namespace

std::string_view to_string(OutputFormat format) {
  switch (format) {
    case OutputFormat::kJsonl:
      return "jsonl";
    case OutputFormat::kCsvLong:
      return "csv-long";
    case OutputFormat::kJson:
      return "json";
    default:
      return "csv";
  }
}

std::optional<OutputFormat> parse_output_format(std::string_view name) {
  if (name == "csv") return OutputFormat::kCsv;
  if (name == "jsonl") return OutputFormat::kJsonl;
  if (name == "csv-long") return OutputFormat::kCsvLong;
  if (name == "json") return OutputFormat::kJson;
  return std::nullopt;
}

std::string hex_color(std::uint32_t rgb) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%06x", rgb & 0xFFFFFFu);
  return buf;
}

std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

std::unique_ptr<RowFormatter> make_formatter(OutputFormat format, int k, bool names, bool stats) {
  if (format == OutputFormat::kJsonl || format == OutputFormat::kJson) {
    return std::make_unique<JsonlFormatter>(names, stats);
  }
  if (format == OutputFormat::kCsvLong) return std::make_unique<CsvLongFormatter>(names, stats);
  return std::make_unique<CsvFormatter>(k, names, stats);
}

}  // namespace palette
