// palette find RESULTS... QUERY: the images of results files (what extract wrote, CSV or JSON
// Lines) that match a colour query, best first. No image of the results is decoded again.
//
//   --color C          a palette colour within --max-delta-e (CIEDE2000) of C, or of C's basic
//                      colour class when C is a class word; score = that ΔE (0 for a class)
//   --colors C:W,...   the palettes that hold each colour in about its weight (percent, at most
//                      100 in all; the rest is "any other colour"): partial EMD, top N
//   --palette C:W,...  the palettes nearest to this palette by EMD, top N
//   --like IMAGE       the same for an image's palette: its row in the results, else the image
//                      decoded and clustered with the given options

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "commands.hpp"
#include "console.hpp"
#include "options.hpp"
#include "palette/color.hpp"
#include "palette/color_names.hpp"
#include "palette/emd.hpp"
#include "palette/error.hpp"
#include "palette/inputs.hpp"
#include "palette/pipeline.hpp"
#include "palette/results.hpp"
#include "palette/writer.hpp"

namespace palette::cli {
namespace {

using Lab = std::array<double, 3>;

struct FindOptions {
  std::vector<std::string> results;
  std::string color, colors, palette, like;
  double max_delta_e = 10.0;
  double min_share = 0.0;
  std::size_t top = 0;
  std::string output = "-";
  std::string format = "csv";
  ClusterOptions cluster;  // for --like with an image that is not in the results
  bool max_delta_e_given = false, top_given = false, min_share_given = false;
};

// "#rrggbb", "rrggbb", "rgb(r, g, b)" (0-255 each) or a CSS named colour (any case).
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
  if (const auto h = hex(s)) return h;
  if (const NamedColor* named = find_named_color(s)) return named->rgb;
  return std::nullopt;
}

constexpr const char* kColorForms = "#rrggbb, rrggbb, rgb(r,g,b) or a CSS colour name";

// A weighted colour list "C:W,C:W,..." (W in percent; a colour without ":W" gets an equal part
// of what the others leave). Commas inside rgb(...) belong to the colour.
struct Weighted {
  std::vector<std::uint32_t> colors;
  std::vector<double> weights;  // fractions of 1
};

Weighted parse_weighted(const std::string& option, const std::string& text) {
  std::vector<std::string> items(1);
  int depth = 0;
  for (const char c : text) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth <= 0) {
      items.emplace_back();
    } else {
      items.back() += c;
    }
  }
  constexpr std::size_t kMaxQueryColors = 32;
  if (items.size() > kMaxQueryColors) {
    throw UsageError(option + ": at most " + std::to_string(kMaxQueryColors) + " colours");
  }
  Weighted out;
  std::vector<bool> given;
  double total = 0;
  for (const auto& item : items) {
    std::string_view color = item;
    std::optional<double> weight;
    if (const auto colon = item.rfind(':'); colon != std::string::npos) {
      color = std::string_view(item).substr(0, colon);
      const std::string w = item.substr(colon + 1);
      double v = 0;
      const auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
      if (w.empty() || ec != std::errc() || p != w.data() + w.size() || !(v > 0) || v > 100) {
        throw UsageError(option + ": '" + item + "': the weight must be a percentage in (0, 100]");
      }
      weight = v;
    }
    // Every class word is a CSS name too ("blue" is #0000ff): in a weighted list, where a class
    // could not be weighed, it means that colour.
    const auto rgb = parse_color(color);
    if (!rgb) {
      throw UsageError(option + ": not a colour: '" + std::string(color) + "' (" + kColorForms +
                       ")");
    }
    out.colors.push_back(*rgb);
    out.weights.push_back(weight.value_or(0));
    given.push_back(weight.has_value());
    total += weight.value_or(0);
  }
  if (total > 100 + 1e-9) {
    throw UsageError(option + ": the weights add up to more than 100 %");
  }
  const auto unweighted = static_cast<double>(std::count(given.begin(), given.end(), false));
  for (std::size_t i = 0; i < out.weights.size(); ++i) {
    if (!given[i]) {
      if (total >= 100 - 1e-9)
        throw UsageError(option + ": no weight is left for '" + items[i] + "'");
      out.weights[i] = (100 - total) / unweighted;
    }
    out.weights[i] /= 100;
  }
  return out;
}

// One image's palette in CIELAB: the signature EMD compares. Shares are normalised to sum 1
// when `normalise` is set (so palettes compare as distributions).
struct Signature {
  std::vector<Lab> lab;
  std::vector<double> weight;

  // Returns whether the signature has any weight.
  bool assign(std::span<const std::uint32_t> colors, std::span<const double> shares,
              bool normalise) {
    lab.resize(colors.size());
    weight.assign(shares.begin(), shares.end());
    double total = 0;
    for (std::size_t i = 0; i < colors.size(); ++i) {
      lab[i] = srgb_to_lab(colors[i]);
      total += shares[i];
    }
    if (normalise && total > 0) {
      for (double& w : weight) w /= total;
    }
    return total > 0;
  }
  LabSignature view() const { return {lab, weight}; }
};

// A row in the answer: what it matched and where it stands.
struct Match {
  std::string file;
  double score = 0;
  double share = 0;       // tie-break: the larger share first (--color)
  std::uint64_t seq = 0;  // then the input order
  std::vector<std::uint32_t> colors;
  std::vector<double> shares;
};

bool better(const Match& a, const Match& b) {
  if (a.score != b.score) return a.score < b.score;
  if (a.share != b.share) return a.share > b.share;
  return a.seq < b.seq;
}

// The best `top` matches seen (all of them when top is 0), kept as a heap worst-first.
class Best {
 public:
  explicit Best(std::size_t top) : top_(top) {}
  // Whether a match with this score could still enter.
  bool could_enter(double score) const {
    return top_ == 0 || heap_.size() < top_ || score <= heap_.front().score;
  }
  // The score a candidate must beat (infinity while there is room).
  double bar() const { return top_ == 0 || heap_.size() < top_ ? INFINITY : heap_.front().score; }
  void offer(Match m) {
    if (top_ == 0) {
      heap_.push_back(std::move(m));
      return;
    }
    if (heap_.size() < top_) {
      heap_.push_back(std::move(m));
      std::push_heap(heap_.begin(), heap_.end(), better);
    } else if (better(m, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), better);
      heap_.back() = std::move(m);
      std::push_heap(heap_.begin(), heap_.end(), better);
    }
  }
  std::vector<Match> sorted() && {
    std::sort(heap_.begin(), heap_.end(), better);
    return std::move(heap_);
  }

 private:
  std::size_t top_;
  std::vector<Match> heap_;  // a max-heap by better(): the worst match at the front
};

Match make_match(const ResultsRow& row, std::uint64_t seq, double score, double share) {
  Match m;
  m.file = row.file;
  m.score = score;
  m.share = share;
  m.seq = seq;
  m.colors.assign(row.colors.begin(), row.colors.end());
  m.shares.assign(row.shares.begin(), row.shares.end());
  return m;
}

// Lower bound of CIEDE2000 from the lightness difference alone: ΔE00 >= |ΔL| / S_L, and S_L is
// at most 1.74702 for L in [0, 100] (its largest value, at L̄ = 0 or 100, is 1 + 0.015·2500 /
// sqrt(2520)); 1.75 leaves a margin for rounding. The rotation term cannot make ΔE00 smaller
// than its lightness part, since |R_T| <= 2 keeps the chroma-hue part a non-negative quadratic
// form.
constexpr double kMaxSl = 1.75;

// Every row of the results files, read by `threads` workers side by side (results.hpp):
// on_row(worker, row, order) runs concurrently for different workers.
void scan(const FindOptions& o, const ParallelRowFn& on_row) {
  try {
    read_results_parallel(o.results, static_cast<unsigned>(thread_count(o.cluster)), on_row);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

// What one worker keeps: its best matches, and its buffers.
struct Worker {
  explicit Worker(std::size_t top) : best(top) {}
  Best best;
  EmdSolver emd;
  Signature signature;
};

// Runs score(worker, row, order) over every row, one Worker per thread, and merges their best
// matches: the same answer as one thread would give, since the order key breaks every tie.
template <class Score>
std::vector<Match> search(const FindOptions& o, std::size_t top, Score&& score) {
  std::vector<Worker> workers;
  for (int i = 0; i < thread_count(o.cluster); ++i) workers.emplace_back(top);
  scan(o, [&](unsigned w, const ResultsRow& row, std::uint64_t order) {
    score(workers[w], row, order);
  });
  Best all(top);
  for (auto& w : workers) {
    for (auto& m : std::move(w.best).sorted()) all.offer(std::move(m));
  }
  return std::move(all).sorted();
}

// The query palette of --like: the image's row in the results, else the image decoded and
// clustered with `cluster` (k: the results' colour count).
Weighted like_palette(const FindOptions& o) {
  const std::string normal = std::filesystem::path(o.like).lexically_normal().string();
  // The first row of the image in input order: rows come from several workers at once.
  std::mutex mutex;
  std::optional<Weighted> found;
  std::uint64_t found_order = ~std::uint64_t{0};
  std::string error;
  std::atomic<std::size_t> most{0};  // the results' colour count, for a decoded image's k
  scan(o, [&](unsigned, const ResultsRow& row, std::uint64_t order) {
    for (std::size_t seen = most.load(std::memory_order_relaxed);
         row.colors.size() > seen &&
         !most.compare_exchange_weak(seen, row.colors.size(), std::memory_order_relaxed);) {
    }
    if (row.file != o.like && row.file != normal) return;
    std::lock_guard lock(mutex);
    if (order > found_order) return;
    found_order = order;
    found.reset();
    error.clear();
    if (row.failed) {
      error = std::string(row.error);
    } else {
      found =
          Weighted{{row.colors.begin(), row.colors.end()}, {row.shares.begin(), row.shares.end()}};
    }
  });
  if (found) return *found;
  if (!std::filesystem::exists(o.like)) {
    throw UsageError("--like: '" + o.like + "' is neither in the results" +
                     (error.empty() ? "" : " (its row is an error: " + error + ")") +
                     " nor an image file");
  }
  ClusterOptions cluster = o.cluster;
  const std::size_t k = most.load();
  cluster.k = static_cast<int>(std::clamp<std::size_t>(k == 0 ? 5 : k, 1, kMaxColors));
  const PipelineOptions options = pipeline_options(cluster);
  auto backend = make_backend(cluster);
  InputQueue queue;
  queue.push(InputItem{o.like, o.like, nullptr, ""});
  queue.close();
  struct Sink : RowSink {
    std::vector<Row> rows;
    void write(const std::vector<Row>& batch) override {
      rows.insert(rows.end(), batch.begin(), batch.end());
    }
  } sink;
  run_pipeline(queue, *backend, options, sink);
  if (sink.rows.size() != 1 || !sink.rows[0].ok()) {
    throw UsageError("--like: " + o.like + ": " +
                     (sink.rows.empty() ? "no palette" : sink.rows[0].error));
  }
  Weighted w;
  const Palette& p = sink.rows[0].palette;
  for (std::size_t i = 0; i < p.colors.size(); ++i) {
    w.colors.push_back(p.colors[i]);
    w.weights.push_back(p.shares_e4[i] / 10000.0);
  }
  return w;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

// --color: one palette colour near the query colour (or in its class); the answer explains it
// with the colour and its share.
std::vector<Match> find_color(const FindOptions& o) {
  const std::optional<ColorClass> cls = parse_color_class(o.color);
  std::optional<std::uint32_t> target;
  if (!cls) {
    target = parse_color(o.color);
    if (!target) {
      throw UsageError("--color: not a colour: '" + o.color + "' (" + kColorForms +
                       ", or a basic colour class: black, white, grey, red, orange, yellow, "
                       "green, blue, purple, pink, brown)");
    }
  }
  const Lab query = target ? srgb_to_lab(*target) : Lab{};
  return search(o, o.top, [&](Worker& w, const ResultsRow& row, std::uint64_t order) {
    if (row.failed) return;
    double best_score = INFINITY, best_share = -1;
    std::uint32_t best_color = 0;
    for (std::size_t i = 0; i < row.colors.size(); ++i) {
      const double share = row.shares[i];
      if (share < o.min_share) continue;
      double score = 0;
      if (cls) {
        if (nearest_named_color(row.colors[i]).color_class != *cls) continue;
      } else {
        if (std::abs(srgb_lightness(row.colors[i]) - query[0]) > kMaxSl * o.max_delta_e) continue;
        score = delta_e2000(query, srgb_to_lab(row.colors[i]));
        if (score > o.max_delta_e) continue;
      }
      if (score < best_score || (score == best_score && share > best_share)) {
        best_score = score;
        best_share = share;
        best_color = row.colors[i];
      }
    }
    if (best_share < 0 || !w.best.could_enter(best_score)) return;
    Match m;
    m.file = row.file;
    m.score = best_score;
    m.share = best_share;
    m.seq = order;
    m.colors = {best_color};
    m.shares = {best_share};
    w.best.offer(std::move(m));
  });
}

// --colors, --palette, --like: the EMD between the query signature and each palette.
std::vector<Match> find_emd(const FindOptions& o, const Weighted& query, bool partial) {
  Signature q;
  q.assign(query.colors, query.weights, !partial);
  // --like leaves the image itself out of its answer.
  const std::string self = o.like,
                    self_normal = o.like.empty()
                                      ? ""
                                      : std::filesystem::path(o.like).lexically_normal().string();
  const double limit = o.max_delta_e_given ? o.max_delta_e : INFINITY;
  return search(o, o.top_given ? o.top : 10,
                [&](Worker& w, const ResultsRow& row, std::uint64_t order) {
                  if (row.failed || row.colors.empty() ||
                      (!self.empty() && (row.file == self || row.file == self_normal))) {
                    return;
                  }
                  Signature& s = w.signature;
                  // A palette without weight (all shares 0, never from extract) has no
                  // distribution to compare: EMD would call it a perfect match.
                  if (!s.assign(row.colors, row.shares, true)) return;
                  const double bar = std::min(w.best.bar(), limit);
                  // Skip what cannot enter: the bound is below the EMD (up to rounding, hence
                  // the margin).
                  if (emd_lower_bound(q.view(), s.view()) > bar + 1e-9 * (1 + bar)) return;
                  const double score = w.emd(q.view(), s.view());
                  if (score > limit || !w.best.could_enter(score)) return;
                  w.best.offer(make_match(row, order, score, 0));
                });
}

// A number for JSON: number()'s text without the zeros it pads with ("0.6000" -> "0.6", "1.0000"
// -> "1.0"), as a JSON library writes the value.
std::string json_number(double v) {
  std::string s = number(v);
  while (s.size() > 2 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s;
}

void write_answer(const FindOptions& o, const std::vector<Match>& matches, bool per_color) {
  const bool jsonl = o.format == "jsonl";
  std::size_t k = 0;
  for (const auto& m : matches) k = std::max(k, m.colors.size());
  std::string text;
  if (!jsonl) {
    text = "file,score";
    if (per_color) {
      text += ",color,share";
    } else {
      for (std::size_t i = 1; i <= k; ++i) text += ",color_" + std::to_string(i);
      for (std::size_t i = 1; i <= k; ++i) text += ",share_" + std::to_string(i);
    }
    text += '\n';
  }
  const auto jsonl_formatter = make_formatter(OutputFormat::kJsonl, 1);  // its JSON strings
  for (const auto& m : matches) {
    if (jsonl) {
      // {"file":...,"score":S,"color":"#..","share":S} or {"file","score","colors","shares"}
      text += jsonl_formatter->row_start(m.file) + "\"score\":" + json_number(m.score);
      if (per_color) {
        text +=
            ",\"color\":\"" + hex_color(m.colors[0]) + "\",\"share\":" + json_number(m.shares[0]);
      } else {
        text += ",\"colors\":[";
        for (std::size_t i = 0; i < m.colors.size(); ++i) {
          text += (i ? ",\"" : "\"") + hex_color(m.colors[i]) + "\"";
        }
        text += "],\"shares\":[";
        for (std::size_t i = 0; i < m.shares.size(); ++i)
          text += (i ? "," : "") + json_number(m.shares[i]);
        text += "]";
      }
      text += "}\n";
    } else {
      text += csv_field(m.file) + "," + number(m.score);
      if (per_color) {
        text += "," + hex_color(m.colors[0]) + "," + number(m.shares[0]);
      } else {
        for (std::size_t i = 0; i < k; ++i) {
          text += ",";
          if (i < m.colors.size()) text += hex_color(m.colors[i]);
        }
        for (std::size_t i = 0; i < k; ++i) {
          text += ",";
          if (i < m.shares.size()) text += number(m.shares[i]);
        }
      }
      text += '\n';
    }
  }
  write_output(o.output, text);
}

int run(const FindOptions& o) {
  setup_logging(0);
  const int queries = !o.color.empty() + !o.colors.empty() + !o.palette.empty() + !o.like.empty();
  if (queries != 1) {
    throw UsageError("give one query: --color, --colors, --palette or --like");
  }
  if (o.min_share_given && o.color.empty()) {
    throw UsageError("--min-share applies to --color only");
  }
  if (!o.like.empty() && std::count(o.results.begin(), o.results.end(), "-") > 0) {
    throw UsageError("--like reads the results twice: give files, not stdin");
  }
  if (!o.color.empty()) {
    write_answer(o, find_color(o), true);
  } else if (!o.colors.empty()) {
    write_answer(o, find_emd(o, parse_weighted("--colors", o.colors), true), false);
  } else if (!o.palette.empty()) {
    write_answer(o, find_emd(o, parse_weighted("--palette", o.palette), false), false);
  } else {
    write_answer(o, find_emd(o, like_palette(o), false), false);
  }
  return kExitOk;
}

}  // namespace

std::function<int()> add_find(CLI::App& app) {
  auto o = std::make_shared<FindOptions>();
  CLI::App* cmd = app.add_subcommand(
      "find", "Find the images of results files (from extract) by colour, best first.");
  cmd->add_option("results", o->results,
                  "Results files written by palette extract (CSV or JSONL; - for stdin)")
      ->required();
  cmd->add_option("--color", o->color,
                  "Images holding this colour: #rrggbb, rrggbb, rgb(r,g,b), a CSS colour name, or "
                  "a colour class (black white grey red orange yellow green blue purple pink "
                  "brown)");
  cmd->add_option("--colors", o->colors,
                  "Images holding these colours in about these weights, C:W,C:W,... (W in "
                  "percent, at most 100 in all; the rest is any other colour), by EMD");
  cmd->add_option("--palette", o->palette,
                  "Images whose palette is nearest to this one, C:W,C:W,... by EMD");
  cmd->add_option("--like", o->like,
                  "Images whose palette is nearest to this image's (its row in the results, else "
                  "the image itself, clustered with the options below), by EMD");
  cmd->add_option("--max-delta-e", o->max_delta_e,
                  "--color: largest CIEDE2000 difference (default 10); EMD queries: largest "
                  "score (default none)")
      ->check(CLI::Range(0.0, 1000.0))
      ->each([o](const std::string&) { o->max_delta_e_given = true; });
  cmd->add_option("--min-share", o->min_share,
                  "--color: smallest share of the matching colour (0..1)")
      ->check(CLI::Range(0.0, 1.0))
      ->each([o](const std::string&) { o->min_share_given = true; });
  cmd->add_option("--top", o->top,
                  "At most this many images (--color default: all that match; EMD queries: 10)")
      ->each([o](const std::string&) { o->top_given = true; });
  cmd->add_option("-o,--output", o->output, "Output file, - for stdout")->capture_default_str();
  cmd->add_option("--format", o->format, "Output format")
      ->check(CLI::IsMember({"csv", "jsonl"}))
      ->capture_default_str();
  // -k is the results' colour count; the rest as extract has them.
  add_cluster_options(cmd, o->cluster,
                      cluster_option::kAll & ~cluster_option::kColors & ~cluster_option::kBatch);
  return [o] { return run(*o); };
}

}  // namespace palette::cli
