#include "palette/server.hpp"

#include <httplib.h>

#include <charconv>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "palette/error.hpp"
#include "palette/writer.hpp"

namespace palette {
namespace {

using nlohmann::json;

// A request-level failure: its HTTP status and a one-line reason.
struct HttpError {
  int status;
  std::string message;
};

void send_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(json{{"error", message}}.dump(), "application/json");
}

template <class T>
T parse_number(const std::string& field, const std::string& text, T lo, T hi) {
  T v{};
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || text.empty() || v < lo || v > hi) {
    throw HttpError{400, "field '" + field + "' must be a number from " + std::to_string(lo) +
                             " to " + std::to_string(hi) + ", not '" + text + "'"};
  }
  return v;
}

double parse_double(const std::string& field, const std::string& text, double lo, double hi) {
  // from_chars for double is not in libstdc++ 12's every build; strtod on a copy is exact enough.
  char* endp = nullptr;
  const double v = std::strtod(text.c_str(), &endp);
  if (text.empty() || endp != text.c_str() + text.size() || !(v >= lo && v <= hi)) {
    throw HttpError{400, "field '" + field + "' must be a number from " + std::to_string(lo) +
                             " to " + std::to_string(hi) + ", not '" + text + "'"};
  }
  return v;
}

// Collects the rows of one request.
class CollectSink final : public RowSink {
 public:
  std::vector<Row> rows;
  void write(const std::vector<Row>& batch) override {
    rows.insert(rows.end(), batch.begin(), batch.end());
  }
};

}  // namespace

struct PaletteServer::Impl {
  Impl(const ServerOptions& o, Backend& b) : options(o), backend(b) {}

  ServerOptions options;
  Backend& backend;
  httplib::Server http;
  int port = -1;

  // Admission: one request runs, up to max_waiting wait.
  std::mutex mutex;
  std::condition_variable turn;
  bool running = false;
  std::size_t waiting = 0;

  void routes() {
    http.new_task_queue = [] { return new httplib::ThreadPool(24); };
    http.set_payload_max_length(options.max_files * options.max_file_mb * 1024 * 1024 + (1u << 20));
    http.set_read_timeout(60, 0);
    http.set_write_timeout(60, 0);
    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(page_html(), "text/html; charset=utf-8");
      res.set_header("Content-Security-Policy",
                     "default-src 'self'; img-src 'self' blob: data:; style-src 'self' "
                     "'unsafe-inline'; script-src 'self' 'unsafe-inline'");
    });
    http.Get("/api/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(json{{"status", "ok"}}.dump(), "application/json");
    });
    http.Get("/api/info", [this](const httplib::Request&, httplib::Response& res) {
      const auto& d = options.defaults;
      res.set_content(json{{"version", PALETTE_VERSION},
                           {"backend", backend.name()},
                           {"device", backend.device()},
                           {"limits",
                            {{"max_file_mb", options.max_file_mb},
                             {"max_files", options.max_files},
                             {"max_pixels", d.decode.max_pixels},
                             {"max_waiting_requests", options.max_waiting}}},
                           {"defaults",
                            {{"k", d.kmeans.k},
                             {"space", std::string(to_string(d.space))},
                             {"size", d.decode.size},
                             {"seed", d.kmeans.seed},
                             {"max_iter", d.kmeans.max_iter},
                             {"tol", d.kmeans.tol},
                             {"alpha_threshold", d.decode.alpha_threshold}}}}
                          .dump(),
                      "application/json");
    });
    http.Post("/api/palettes", [this](const httplib::Request& req, httplib::Response& res) {
      try {
        palettes(req, res);
      } catch (const HttpError& e) {
        send_error(res, e.status, e.message);
      }
    });
    // Errors httplib answers itself (413, 400 for broken multipart, 404) get a JSON body too.
    http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return;
      std::string message;
      switch (res.status) {
        case 413:
          message = "request too large";
          break;
        case 404:
          message = "not found";
          break;
        case 400:
          message = "malformed request";
          break;
        default:
          message = "request failed (HTTP " + std::to_string(res.status) + ")";
      }
      res.set_content(json{{"error", message}}.dump(), "application/json");
    });
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          std::string message = "internal error";
          try {
            if (ep) std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            message = std::string("internal error: ") + e.what();
          } catch (...) {
          }
          send_error(res, 500, message);
        });
  }

  PipelineOptions parse_options(const httplib::Request& req) {
    PipelineOptions o = options.defaults;
    static const std::set<std::string> kFields = {"images", "k",        "space", "size",
                                                  "seed",   "max_iter", "tol",   "alpha_threshold"};
    for (const auto& [name, part] : req.files) {
      if (!kFields.count(name)) throw HttpError{400, "unknown field '" + name + "'"};
      if (name != "images" && !part.filename.empty()) {
        throw HttpError{400, "field '" + name + "' must be a value, not a file"};
      }
    }
    auto field = [&](const char* name) -> const std::string* {
      const auto it = req.files.find(name);
      return it == req.files.end() ? nullptr : &it->second.content;
    };
    if (auto v = field("k")) o.kmeans.k = parse_number<int>("k", *v, 1, kMaxColors);
    if (auto v = field("space")) {
      const auto space = parse_color_space(*v);
      if (!space) throw HttpError{400, "field 'space' must be lab, oklab or rgb, not '" + *v + "'"};
      o.space = *space;
    }
    if (auto v = field("size")) o.decode.size = parse_number<int>("size", *v, 1, 4096);
    if (auto v = field("seed")) {
      o.kmeans.seed = parse_number<std::uint64_t>("seed", *v, 0, UINT64_MAX);
    }
    if (auto v = field("max_iter")) o.kmeans.max_iter = parse_number<int>("max_iter", *v, 1, 10000);
    if (auto v = field("tol")) o.kmeans.tol = parse_double("tol", *v, 0.0, 1e6);
    if (auto v = field("alpha_threshold")) {
      o.decode.alpha_threshold = parse_number<int>("alpha_threshold", *v, 0, 255);
    }
    return o;
  }

  void palettes(const httplib::Request& req, httplib::Response& res) {
    if (!req.is_multipart_form_data()) {
      throw HttpError{400, "expected multipart/form-data with one or more 'images' parts"};
    }
    const std::string format = req.has_param("format") ? req.get_param_value("format") : "json";
    if (format != "json" && format != "csv") {
      throw HttpError{400, "format must be json or csv, not '" + format + "'"};
    }
    PipelineOptions o = parse_options(req);
    const auto images = req.files.equal_range("images");
    const auto count = static_cast<std::size_t>(std::distance(images.first, images.second));
    if (count == 0) throw HttpError{400, "no 'images' part: send one or more files as 'images'"};
    if (count > options.max_files) {
      throw HttpError{400, "too many files: " + std::to_string(count) + " (at most " +
                               std::to_string(options.max_files) + ")"};
    }
    // The parts arrive in a multimap: equal keys keep their order of arrival.
    std::vector<InputItem> items;
    for (auto it = images.first; it != images.second; ++it) {
      const auto& part = it->second;
      if (part.content.size() > options.max_file_mb * 1024 * 1024) {
        throw HttpError{413, "file '" + part.filename + "' is larger than " +
                                 std::to_string(options.max_file_mb) + " MB"};
      }
      InputItem item;
      item.name =
          part.filename.empty() ? "upload-" + std::to_string(items.size() + 1) : part.filename;
      item.data = std::make_shared<const std::vector<std::uint8_t>>(part.content.begin(),
                                                                    part.content.end());
      items.push_back(std::move(item));
    }

    // Wait for our turn, or refuse when too many are waiting.
    {
      std::unique_lock lock(mutex);
      if (running && waiting >= options.max_waiting) {
        res.set_header("Retry-After", "1");
        throw HttpError{503, "busy: too many requests waiting, try again shortly"};
      }
      ++waiting;
      turn.wait(lock, [&] { return !running; });
      --waiting;
      running = true;
    }
    CollectSink sink;
    try {
      InputQueue queue;
      for (auto& it : items) queue.push(std::move(it));
      queue.close();
      run_pipeline(queue, backend, o, sink);
    } catch (...) {
      release();
      throw;
    }
    release();

    const auto formatter =
        make_formatter(format == "csv" ? OutputFormat::kCsv : OutputFormat::kJsonl, o.kmeans.k);
    if (format == "csv") {
      std::string body = formatter->header();
      for (const auto& r : sink.rows) body += formatter->row(r);
      res.set_header("Content-Disposition", "attachment; filename=\"palettes.csv\"");
      res.set_content(body, "text/csv; charset=utf-8");
      return;
    }
    // The same objects `extract --format jsonl` writes, in a JSON document.
    std::string body = "{\"k\":" + std::to_string(o.kmeans.k) + ",\"space\":\"" +
                       std::string(to_string(o.space)) + "\",\"images\":[";
    for (std::size_t i = 0; i < sink.rows.size(); ++i) {
      std::string line = formatter->row(sink.rows[i]);
      line.pop_back();  // the newline
      if (i) body += ',';
      body += line;
    }
    body += "]}";
    res.set_content(body, "application/json");
  }

  void release() {
    {
      std::lock_guard lock(mutex);
      running = false;
    }
    turn.notify_one();
  }
};

PaletteServer::PaletteServer(const ServerOptions& options, Backend& backend)
    : impl_(std::make_unique<Impl>(options, backend)) {
  impl_->routes();
}

PaletteServer::~PaletteServer() { stop(); }

void PaletteServer::bind() {
  auto& s = *impl_;
  if (s.options.port == 0) {
    s.port = s.http.bind_to_any_port(s.options.host);
  } else {
    s.port = s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1;
  }
  if (s.port < 0) {
    throw Error("cannot listen on " + s.options.host + ":" + std::to_string(s.options.port) +
                " (address in use, or not an address of this machine)");
  }
}

int PaletteServer::port() const { return impl_->port; }

void PaletteServer::serve() { impl_->http.listen_after_bind(); }

void PaletteServer::stop() {
  if (impl_->http.is_running()) impl_->http.stop();
}

}  // namespace palette
