#include "palette/server.hpp"

#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "multipart.hpp"
#include "palette/color_names.hpp"
#include "palette/decode_worker.hpp"
#include "palette/error.hpp"
#include "palette/export.hpp"
#include "palette/mask.hpp"
#include "palette/writer.hpp"

namespace palette {
namespace {

using nlohmann::json;

constexpr std::uint64_t kMiB = 1 << 20;
// A refused request's body up to this size is read and thrown away before the answer, so that
// clients which send their whole body before reading (most HTTP libraries) see the answer; a
// larger one is answered at once and its connection closed. Nothing of it is kept either way.
constexpr std::uint64_t kDrainBytes = 8 * kMiB;
// Per-connection memory for the request line, headers and read buffer (libmicrohttpd's pool).
constexpr std::size_t kConnectionMemory = 64 * 1024;
// A form value (k, space, ...) longer than this is refused.
constexpr std::size_t kMaxFieldBytes = 4096;

// A request-level failure: its HTTP status and a one-line reason.
struct HttpError {
  int status;
  std::string message;
};

struct Answer {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

Answer json_answer(std::string body) {
  Answer a;
  a.body = std::move(body);
  return a;
}

Answer error_answer(const HttpError& e) {
  Answer a;
  a.status = e.status;
  // Messages may quote what a client sent: bytes that are not UTF-8 become U+FFFD.
  a.body = json{{"error", e.message}}.dump(-1, ' ', false, json::error_handler_t::replace);
  if (e.status == 503) a.headers.emplace_back("Retry-After", "1");
  return a;
}

MHD_Result queue(MHD_Connection* connection, Answer a) {
  auto* body = new std::string(std::move(a.body));
  MHD_Response* response = MHD_create_response_from_buffer_with_free_callback_cls(
      body->size(), body->data(), [](void* p) { delete static_cast<std::string*>(p); }, body);
  if (!response) {
    delete body;
    return MHD_NO;
  }
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, a.content_type.c_str());
  for (const auto& [name, value] : a.headers) {
    MHD_add_response_header(response, name.c_str(), value.c_str());
  }
  const MHD_Result r = MHD_queue_response(connection, static_cast<unsigned>(a.status), response);
  MHD_destroy_response(response);
  return r;
}

// A value quoted in an error message: on one line, and not the whole of a long one.
std::string quote_value(const std::string& text) {
  std::string out = text.size() > 64 ? text.substr(0, 64) + "..." : text;
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  }
  return "'" + out + "'";
}

template <class T>
T parse_number(const std::string& field, const std::string& text, T lo, T hi) {
  T v{};
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || text.empty() || v < lo || v > hi) {
    throw HttpError{400, "field '" + field + "' must be a number from " + std::to_string(lo) +
                             " to " + std::to_string(hi) + ", not " + quote_value(text)};
  }
  return v;
}

std::string number_text(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

double parse_double(const std::string& field, const std::string& text, double lo, double hi) {
  // from_chars for double is not in libstdc++ 12's every build; strtod on a copy is exact enough.
  char* endp = nullptr;
  const double v = std::strtod(text.c_str(), &endp);
  if (text.empty() || endp != text.c_str() + text.size() || !(v >= lo && v <= hi)) {
    throw HttpError{400, "field '" + field + "' must be a number from " + number_text(lo) + " to " +
                             number_text(hi) + ", not " + quote_value(text)};
  }
  return v;
}

bool parse_flag(const std::string& field, const std::string& text) {
  if (text == "1" || text == "true") return true;
  if (text == "0" || text == "false") return false;
  throw HttpError{400,
                  "field '" + field + "' must be 1 or 0 (true or false), not " + quote_value(text)};
}

std::optional<std::uint64_t> parse_length(const char* text) {
  if (!text) return std::nullopt;
  std::uint64_t v = 0;
  const char* end = text + std::strlen(text);
  const auto [p, ec] = std::from_chars(text, end, v);
  if (ec != std::errc() || p != end || p == text) return std::nullopt;
  return v;
}

bool contains_caseless(const char* text, std::string_view word) {
  if (!text) return false;
  const std::string_view t(text);
  for (std::size_t i = 0; i + word.size() <= t.size(); ++i) {
    if (strncasecmp(t.data() + i, word.data(), word.size()) == 0) return true;
  }
  return false;
}

// Collects the rows of one request.
class CollectSink final : public RowSink {
 public:
  std::vector<Row> rows;
  void write(const std::vector<Row>& batch) override {
    rows.insert(rows.end(), batch.begin(), batch.end());
  }
};

// GET /api/colors: the CSS named colours in table order, each with its hex and basic colour class
// ([{"name":"aliceblue","hex":"#f0f8ff","class":"white"}, ...]), so the page's colour search
// uses the table of the core library rather than a copy.
const std::string& named_colors_json() {
  static const std::string kBody = [] {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const NamedColor& c : css_named_colors()) {
      list.push_back(nlohmann::ordered_json{{"name", std::string(c.name)},
                                            {"hex", hex_color(c.rgb)},
                                            {"class", std::string(to_string(c.color_class))}});
    }
    return list.dump();
  }();
  return kBody;
}

const std::set<std::string>& form_fields() {
  static const std::set<std::string> kFields = {
      "images",   "k",         "space",           "size",   "seed",
      "max_iter", "tol",       "alpha_threshold", "ignore", "ignore_threshold",
      "region",   "min_share", "merge_delta_e",   "sort",   "stats",
      "combined"};
  return kFields;
}

// The answer formats of POST /api/palettes (?format=).
bool known_format(const std::string& f) {
  return f == "json" || f == "csv" || parse_export_format(f).has_value();
}

}  // namespace

struct PaletteServer::Impl {
  // One POST /api/palettes, from its headers to its answer. Lives from the first call of the
  // access handler to libmicrohttpd's "request completed" notification. Its parts are filled by
  // the polling thread; once the body is complete, its files move to a Job.
  struct Upload final : MultipartHandler {
    Upload(Impl& s, MHD_Connection* c) : server(s), connection(c) {}

    Impl& server;
    MHD_Connection* connection;
    std::string format = "json";
    std::optional<std::uint64_t> length;  // Content-Length, when sent
    std::uint64_t received = 0;           // body bytes so far
    std::uint64_t body_left = 0;          // at most this many body bytes still to come
    std::uint64_t drained = 0;            // body bytes read and dropped after a refusal
    std::uint64_t held = 0;               // bytes of the memory budget it holds
    bool admitted = false;                // counts in Impl::admitted
    bool queued = false;                  // body complete: queued, clustering or answered
    bool close = false;                   // give up on the connection
    std::optional<HttpError> error;       // refused: the rest of the body is dropped
    std::unique_ptr<MultipartParser> parser;
    std::optional<Answer> answer;  // from the clustering thread

    enum class Part { kNone, kImage, kField, kSkip };
    Part part = Part::kNone;
    std::vector<InputItem> images;
    std::vector<std::uint8_t> current;  // the image being received
    std::string current_name;
    std::size_t image_count = 0;
    bool too_many = false;
    std::map<std::string, std::string> fields;  // the first value of each
    std::string* field = nullptr;
    std::string field_name;

    void fail(HttpError e) {
      if (!error) error = std::move(e);
      images.clear();
      images.shrink_to_fit();
      std::vector<std::uint8_t>().swap(current);
      fields.clear();
      field = nullptr;
      part = Part::kSkip;
      server.release(*this);
    }

    void part_begin(const std::string& name, const std::string& filename) override {
      part = Part::kSkip;
      if (name == "images") {
        ++image_count;  // counted on after an error, for the "too many files" message
        if (error) return;
        if (image_count > server.options.max_files) {
          too_many = true;
          fail({400, ""});
          return;
        }
        part = Part::kImage;
        current_name = filename.empty() ? "upload-" + std::to_string(image_count) : filename;
        current = {};
        if (length) {
          // Capacity is address space, not memory, until written.
          current.reserve(static_cast<std::size_t>(std::min(body_left, server.max_file_bytes())));
        }
        return;
      }
      if (error) return;
      if (!form_fields().count(name)) return fail({400, "unknown field '" + name + "'"});
      if (!filename.empty()) {
        return fail({400, "field '" + name + "' must be a value, not a file"});
      }
      const auto [it, inserted] = fields.try_emplace(name);
      if (!inserted) return;  // the first value counts
      part = Part::kField;
      field = &it->second;
      field_name = name;
    }

    void part_data(std::span<const std::uint8_t> bytes) override {
      if (part == Part::kField) {
        if (field->size() + bytes.size() > kMaxFieldBytes) {
          return fail({400, "field '" + field_name + "' is too long"});
        }
        field->append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        return;
      }
      if (part != Part::kImage) return;
      const std::size_t max_file = server.max_file_bytes();
      if (current.size() + bytes.size() > max_file) {
        return fail({413, "file '" + current_name + "' is larger than " +
                              std::to_string(server.options.max_file_mb) + " MB"});
      }
      if (!length && current.size() + bytes.size() > current.capacity()) {
        // No Content-Length: memory is taken from the budget as the buffers grow.
        const std::size_t grown =
            std::min(max_file, std::max({current.size() + bytes.size(), 2 * current.capacity(),
                                         std::size_t{64 * 1024}}));
        if (!server.charge(*this, grown - current.capacity())) {
          return fail({503, "busy: not enough memory for this upload now, try again shortly"});
        }
        current.reserve(grown);
      }
      current.insert(current.end(), bytes.begin(), bytes.end());
    }

    void part_end() override {
      if (part == Part::kImage) {
        InputItem item;
        item.name = std::move(current_name);
        // The buffer itself moves on to the pipeline: no copy.
        item.data = std::make_shared<const std::vector<std::uint8_t>>(std::move(current));
        current = {};
        images.push_back(std::move(item));
      }
      part = Part::kNone;
      field = nullptr;
    }
  };

  // A request whose body is complete, waiting for (or in) its turn.
  struct Job {
    Upload* upload;
    PipelineOptions options;
    std::vector<InputItem> images;
  };

  Impl(const ServerOptions& o, Backend& b) : options(o), backend(b) {}

  ServerOptions options;
  Backend& backend;
  MHD_Daemon* daemon = nullptr;
  bool bound = false;
  int listen_fd = -1;
  int port = -1;
  std::unique_ptr<DecoderPool> pool;
  std::thread clusterer;

  // Admission, the memory budget, the job queue and stopping; guarded by mutex.
  std::mutex mutex;
  std::condition_variable work_cv, answered_cv;
  std::size_t admitted = 0;    // requests uploading, queued or clustering
  std::uint64_t reserved = 0;  // upload bytes held by all of them
  std::size_t answering = 0;   // requests with a complete body not yet fully answered
  std::deque<Job> jobs;
  bool stopping = false, quit = false, stopped = false;
  std::mutex stop_mutex;  // one stop() at a time

  std::size_t max_file_bytes() const { return options.max_file_mb * kMiB; }
  std::uint64_t max_request_bytes() const {
    return std::min(options.max_request_mb, options.max_memory_mb) * kMiB;
  }
  std::uint64_t budget_bytes() const { return options.max_memory_mb * kMiB; }

  // Takes `bytes` more of the budget for `up`; false when the budget cannot take them.
  bool charge(Upload& up, std::uint64_t bytes) {
    std::lock_guard lock(mutex);
    if (reserved + bytes > budget_bytes()) return false;
    reserved += bytes;
    up.held += bytes;
    return true;
  }

  // Gives back what `up` holds of the admission count and the budget.
  void release(Upload& up) {
    bool trim = false;
    {
      std::lock_guard lock(mutex);
      if (up.admitted) --admitted;
      up.admitted = false;
      reserved -= up.held;
      trim = up.held > 0 && reserved == 0;
      up.held = 0;
    }
    // The last upload's memory is gone: hand the pages back to the system.
    if (trim) ::malloc_trim(0);
  }

  // --- the access handler: every request passes here, on the polling thread ------------------

  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url,
                               const char* method, const char* /*version*/, const char* upload_data,
                               std::size_t* upload_data_size, void** request) {
    // Nothing may unwind into libmicrohttpd (C): a failure here (memory) closes the connection.
    try {
      return static_cast<Impl*>(cls)->handle(connection, url, method, upload_data, upload_data_size,
                                             request);
    } catch (...) {
      return MHD_NO;
    }
  }

  MHD_Result handle(MHD_Connection* connection, const char* url, const char* method,
                    const char* upload_data, std::size_t* upload_data_size, void** request) {
    auto& s = *this;
    if (!*request) {
      const std::string_view m(method), u(url);
      const bool get = m == MHD_HTTP_METHOD_GET || m == MHD_HTTP_METHOD_HEAD;
      if (get && u == "/") return s.page(connection);
      if (get && u == "/api/health") {
        return queue(connection, json_answer(json{{"status", "ok"}}.dump()));
      }
      if (get && u == "/api/info") return queue(connection, json_answer(s.info()));
      if (get && u == "/api/colors") return queue(connection, json_answer(named_colors_json()));
      if (m == MHD_HTTP_METHOD_POST && u == "/api/palettes") {
        auto* up = new Upload(s, connection);
        *request = up;
        return s.begin(*up);
      }
      return queue(connection, error_answer({404, "not found"}));
    }
    auto& up = *static_cast<Upload*>(*request);
    if (*upload_data_size > 0) {
      s.body(up, reinterpret_cast<const std::uint8_t*>(upload_data), *upload_data_size);
      *upload_data_size = 0;
      return up.close ? MHD_NO : MHD_YES;
    }
    return s.complete(up);
  }

  static void on_completed(void* cls, MHD_Connection*, void** request, MHD_RequestTerminationCode) {
    if (!*request) return;
    auto& s = *static_cast<Impl*>(cls);
    auto* up = static_cast<Upload*>(*request);
    *request = nullptr;
    s.release(*up);
    if (up->queued) {
      {
        std::lock_guard lock(s.mutex);
        --s.answering;
      }
      s.answered_cv.notify_all();
    }
    delete up;
  }

  MHD_Result page(MHD_Connection* connection) {
    const std::string& html = page_html();
    MHD_Response* response = MHD_create_response_from_buffer(
        html.size(), const_cast<char*>(html.data()), MHD_RESPMEM_PERSISTENT);
    if (!response) return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
    MHD_add_response_header(response, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' blob: data:; style-src 'self' "
                            "'unsafe-inline'; script-src 'self' 'unsafe-inline'");
    const MHD_Result r = MHD_queue_response(connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    return r;
  }

  std::string info() const {
    const auto& d = options.defaults;
    return json{{"version", PALETTE_VERSION},
                {"backend", backend.name()},
                {"device", backend.device()},
                {"limits",
                 {{"max_file_mb", options.max_file_mb},
                  {"max_files", options.max_files},
                  {"max_request_mb", options.max_request_mb},
                  {"max_memory_mb", options.max_memory_mb},
                  {"max_pixels", d.decode.max_pixels},
                  {"max_waiting_requests", options.max_waiting},
                  {"max_connections", options.max_connections},
                  {"idle_timeout_s", options.idle_timeout_s},
                  {"decode_timeout_s", options.decode_timeout_s}}},
                {"defaults",
                 {{"k", d.kmeans.k},
                  {"space", std::string(to_string(d.space))},
                  {"size", d.decode.size},
                  {"seed", d.kmeans.seed},
                  {"max_iter", d.kmeans.max_iter},
                  {"tol", d.kmeans.tol},
                  {"alpha_threshold", d.decode.alpha_threshold},
                  {"ignore_threshold", d.ignore.threshold},
                  {"min_share", d.shape.min_share},
                  {"merge_delta_e", d.shape.merge_delta_e}}}}
        .dump();
  }

  // The headers of a POST are in: admit it, or refuse it before a body byte is read.
  MHD_Result begin(Upload& up) {
    MHD_Connection* c = up.connection;
    up.length = parse_length(
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH));
    up.body_left = up.length.value_or(UINT64_MAX);
    if (const char* f = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format")) {
      up.format = f;
    }
    if (up.length && *up.length > max_request_bytes()) {
      return refuse(
          up, {413, "request too large: more than " + std::to_string(max_request_bytes() / kMiB) +
                        " MB (--max-request-mb)"});
    }
    const char* type =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const auto boundary = multipart_boundary(type ? type : "");
    if (!boundary) {
      return refuse(up, {400, "expected multipart/form-data with one or more 'images' parts"});
    }
    if (!known_format(up.format)) {
      return refuse(
          up, {400, "format must be json, csv, gpl, ase or css, not " + quote_value(up.format)});
    }
    std::optional<HttpError> busy;
    {
      std::lock_guard lock(mutex);
      const std::uint64_t need = up.length.value_or(0);
      if (stopping) {
        busy = HttpError{503, "the server is stopping"};
      } else if (admitted >= options.max_waiting + 1) {
        busy = HttpError{503, "busy: too many requests waiting, try again shortly"};
      } else if (reserved + need > budget_bytes()) {
        busy = HttpError{503, "busy: not enough memory for this upload now, try again shortly"};
      } else {
        ++admitted;
        up.admitted = true;
        reserved += need;
        up.held = need;
      }
    }
    if (busy) return refuse(up, std::move(*busy));
    up.parser = std::make_unique<MultipartParser>(*boundary, up);
    return MHD_YES;
  }

  // Refuses a request at its headers: answers at once when its body will not come (the client
  // waits for "100 Continue") or is too big to read past; otherwise after reading past it.
  MHD_Result refuse(Upload& up, HttpError e) {
    const bool expects_continue = contains_caseless(
        MHD_lookup_connection_value(up.connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT),
        "100-continue");
    if (expects_continue || (up.length && *up.length > kDrainBytes) ||
        (up.length && *up.length == 0)) {
      return queue(up.connection, error_answer(e));
    }
    up.error = std::move(e);
    return MHD_YES;
  }

  void body(Upload& up, const std::uint8_t* data, std::size_t size) {
    const std::uint64_t before = up.received;
    up.received += size;
    if (up.error) {
      up.drained += size;
      // Without a Content-Length the rest could be endless: drop the connection after a while.
      if (!up.length && up.drained > kDrainBytes) up.close = true;
      return;
    }
    if (!up.length && up.received > max_request_bytes()) {
      up.fail({413, "request too large: more than " + std::to_string(max_request_bytes() / kMiB) +
                        " MB (--max-request-mb)"});
      return;
    }
    up.body_left = up.length ? *up.length - before : UINT64_MAX;
    if (!up.parser->feed({data, size}) && !up.error) up.fail({400, up.parser->error()});
  }

  // The body is complete (or the clustering thread resumed the connection with the answer).
  MHD_Result complete(Upload& up) {
    {
      std::lock_guard lock(mutex);
      if (up.answer) {
        Answer a = std::move(*up.answer);
        up.answer.reset();
        return queue(up.connection, std::move(a));
      }
    }
    if (!up.error && !up.parser->finish()) up.fail({400, up.parser->error()});
    if (!up.error && up.image_count == 0) {
      up.fail({400, "no 'images' part: send one or more files as 'images'"});
    }
    std::optional<PipelineOptions> o;
    if (!up.error) {
      try {
        o = parse_options(up.fields);
      } catch (const HttpError& e) {
        up.fail(e);
      }
    }
    if (up.error) {
      if (up.too_many) {
        up.error->message = "too many files: " + std::to_string(up.image_count) + " (at most " +
                            std::to_string(options.max_files) + ")";
      }
      return queue(up.connection, error_answer(*up.error));
    }
    // Queued and suspended under the lock: the clustering thread cannot take the job, and
    // resume the connection, before it is suspended.
    {
      std::lock_guard lock(mutex);
      if (!stopping) {
        jobs.push_back(Job{&up, std::move(*o), std::move(up.images)});
        up.queued = true;
        ++answering;
        MHD_suspend_connection(up.connection);
      }
    }
    if (!up.queued) {
      up.fail({503, "the server is stopping"});
      return queue(up.connection, error_answer(*up.error));
    }
    work_cv.notify_one();
    return MHD_YES;
  }

  PipelineOptions parse_options(const std::map<std::string, std::string>& fields) const {
    PipelineOptions o = options.defaults;
    auto field = [&](const char* name) -> const std::string* {
      const auto it = fields.find(name);
      return it == fields.end() ? nullptr : &it->second;
    };
    if (auto v = field("k")) o.kmeans.k = parse_number<int>("k", *v, 1, kMaxColors);
    if (auto v = field("space")) {
      const auto space = parse_color_space(*v);
      if (!space) throw HttpError{400, "field 'space' must be lab, oklab or rgb, not '" + *v + "'"};
      o.space = *space;
    }
    // At most the server's own --size: the points of the request being clustered grow with
    // size^2, and the memory bound (README) is stated for it.
    if (auto v = field("size")) {
      o.decode.size = parse_number<int>("size", *v, 1, options.defaults.decode.size);
    }
    if (auto v = field("seed")) {
      o.kmeans.seed = parse_number<std::uint64_t>("seed", *v, 0, UINT64_MAX);
    }
    if (auto v = field("max_iter")) o.kmeans.max_iter = parse_number<int>("max_iter", *v, 1, 10000);
    if (auto v = field("tol")) o.kmeans.tol = parse_double("tol", *v, 0.0, 1e6);
    if (auto v = field("alpha_threshold")) {
      o.decode.alpha_threshold = parse_number<int>("alpha_threshold", *v, 0, 255);
    }
    // What is counted, how palettes are shaped, what is added: extract's --ignore,
    // --ignore-threshold, --region, --min-share, --merge-delta-e, --sort, --stats and
    // --combined, read by the same parsers and held to the same ranges.
    if (auto v = field("ignore"); v && !v->empty()) {
      const auto ignore = parse_ignore(*v);
      if (!ignore) {
        throw HttpError{400,
                        "field 'ignore' must be a list of white, black, grey, background, "
                        "not " +
                            quote_value(*v)};
      }
      o.ignore = *ignore;
    }
    if (auto v = field("ignore_threshold")) {
      o.ignore.threshold = parse_double("ignore_threshold", *v, 0.0, kMaxIgnoreThreshold);
    }
    if (auto v = field("region"); v && !v->empty()) {
      o.region = parse_region(*v);
      if (!o.region) {
        throw HttpError{400,
                        "field 'region' must be x,y,w,h in pixels or x%,y%,w%,h% "
                        "(w, h > 0), not " +
                            quote_value(*v)};
      }
    }
    if (auto v = field("min_share")) o.shape.min_share = parse_double("min_share", *v, 0.0, 1.0);
    if (auto v = field("merge_delta_e")) {
      o.shape.merge_delta_e = parse_double("merge_delta_e", *v, 0.0, kMaxMergeDeltaE);
    }
    if (auto v = field("sort")) {
      const auto sort = parse_palette_sort(*v);
      if (!sort) {
        throw HttpError{400,
                        "field 'sort' must be share, lightness or hue, not " + quote_value(*v)};
      }
      o.shape.sort = *sort;
    }
    if (auto v = field("stats")) o.quality = parse_flag("stats", *v);
    if (auto v = field("combined")) o.combined = parse_flag("combined", *v);
    return o;
  }

  // --- the clustering thread: one request at a time ------------------------------------------

  void cluster_loop() {
    for (;;) {
      Upload* up = nullptr;
      Answer answer;
      {
        std::optional<Job> job;
        {
          std::unique_lock lock(mutex);
          work_cv.wait(lock, [&] { return quit || !jobs.empty(); });
          if (jobs.empty()) return;
          job.emplace(std::move(jobs.front()));
          jobs.pop_front();
        }
        up = job->upload;
        try {
          answer = run(*job);
        } catch (const std::exception& e) {
          answer = error_answer({500, std::string("internal error: ") + e.what()});
        }
        // The backend's scratch too (for a combined palette, sized for millions of points).
        backend.release_memory();
      }  // the job's buffers are gone
      {
        std::lock_guard lock(mutex);
        up->answer = std::move(answer);
      }
      release(*up);
      MHD_resume_connection(up->connection);
    }
  }

  Answer run(Job& job) {
    PipelineOptions o = std::move(job.options);
    if (pool) {
      DecoderPool* p = pool.get();
      o.decoder = [p](std::span<const std::uint8_t> bytes, const DecodeOptions& d) {
        return p->decode(bytes, d);
      };
    }
    CollectSink sink;
    std::optional<Row> combined;  // `extract --combined`'s last row
    {
      InputQueue queue;
      for (auto& it : job.images) queue.push(std::move(it));
      job.images.clear();
      queue.close();
      PipelineStats stats = run_pipeline(queue, backend, o, sink);
      if (stats.combined) {
        combined.emplace();
        combined->file = "*combined*";
        combined->palette = std::move(*stats.combined);
      }
    }
    const std::string& format = job.upload->format;
    Answer a;
    if (const auto exported = parse_export_format(format)) {
      // What `palette export --to FORMAT palettes.csv` gives for the CSV answer.
      std::vector<ExportPalette> palettes;
      for (const auto& r : sink.rows) {
        if (r.ok() && !r.palette.colors.empty()) palettes.push_back(export_palette(r));
      }
      if (combined) palettes.push_back(export_palette(*combined));
      if (palettes.empty()) return error_answer({422, "no palettes: no file could be read"});
      a.body = export_palettes(*exported, palettes, default_export_name(palettes, "palettes.csv"));
      a.content_type = *exported == ExportFormat::kAse   ? "application/octet-stream"
                       : *exported == ExportFormat::kCss ? "text/css; charset=utf-8"
                                                         : "text/plain; charset=utf-8";
      a.headers.emplace_back("Content-Disposition",
                             "attachment; filename=\"palettes." + format + "\"");
      return a;
    }
    const bool csv = format == "csv";
    const auto formatter = make_formatter(csv ? OutputFormat::kCsv : OutputFormat::kJsonl,
                                          o.kmeans.k, false, o.quality);
    if (csv) {
      a.body = formatter->header();
      for (const auto& r : sink.rows) a.body += formatter->row(r);
      if (combined) a.body += formatter->row(*combined);
      a.content_type = "text/csv; charset=utf-8";
      a.headers.emplace_back("Content-Disposition", "attachment; filename=\"palettes.csv\"");
      return a;
    }
    // The same objects `extract --format jsonl` writes, in a JSON document.
    const auto object = [&](const Row& r) {
      std::string line = formatter->row(r);
      line.pop_back();  // the newline
      return line;
    };
    a.body = "{\"k\":" + std::to_string(o.kmeans.k) + ",\"space\":\"" +
             std::string(to_string(o.space)) + "\",\"images\":[";
    for (std::size_t i = 0; i < sink.rows.size(); ++i) {
      if (i) a.body += ',';
      a.body += object(sink.rows[i]);
    }
    a.body += ']';
    if (o.combined) a.body += ",\"combined\":" + (combined ? object(*combined) : "null");
    a.body += '}';
    return a;
  }

  // --- set-up -------------------------------------------------------------------------------

  int open_listen_socket() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(options.port);
    if (::getaddrinfo(options.host.empty() ? nullptr : options.host.c_str(), service.c_str(),
                      &hints, &found) != 0) {
      return -1;
    }
    int fd = -1;
    for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      const int on = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
      if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
        ::close(fd);
        fd = -1;
      }
    }
    ::freeaddrinfo(found);
    return fd;
  }
};

PaletteServer::PaletteServer(const ServerOptions& options, Backend& backend)
    : impl_(std::make_unique<Impl>(options, backend)) {}

PaletteServer::~PaletteServer() { stop(); }

void PaletteServer::bind() {
  auto& s = *impl_;
  if (s.bound) throw Error("the server is already bound");
  if (!s.options.decode_in_process) {
    if (s.options.worker_command.empty()) {
      throw Error("no decoder command (ServerOptions::worker_command) and decode_in_process off");
    }
    DecoderPoolOptions p;
    p.command = s.options.worker_command;
    p.workers = static_cast<std::size_t>(std::max(1, s.options.defaults.threads));
    p.timeout_seconds = s.options.decode_timeout_s;
    p.max_input_bytes = s.max_file_bytes();
    p.memory_bytes = decoder_memory_bytes(p.max_input_bytes, s.options.defaults.decode.max_pixels);
    s.pool = std::make_unique<DecoderPool>(p);
  }
  if (s.options.listen) {
    s.listen_fd = s.open_listen_socket();
    if (s.listen_fd < 0) {
      s.pool.reset();
      throw Error("cannot listen on " + s.options.host + ":" + std::to_string(s.options.port) +
                  " (address in use, or not an address of this machine)");
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ::getsockname(s.listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
    s.port = addr.ss_family == AF_INET6
                 ? ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port)
                 : ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  }
  std::vector<MHD_OptionItem> items;
  items.push_back(
      {MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(s.options.max_connections), nullptr});
  items.push_back(
      {MHD_OPTION_CONNECTION_TIMEOUT, static_cast<intptr_t>(s.options.idle_timeout_s), nullptr});
  items.push_back(
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(kConnectionMemory), nullptr});
  items.push_back(
      {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&Impl::on_completed), &s});
  if (s.listen_fd >= 0) items.push_back({MHD_OPTION_LISTEN_SOCKET, s.listen_fd, nullptr});
  items.push_back({MHD_OPTION_END, 0, nullptr});
  // One internal thread polls every connection. poll(), not epoll: libmicrohttpd 0.9.75's
  // edge-triggered epoll loop misses a client's end of stream that arrives with its last bytes
  // (a half-closed partial request then holds its connection until the idle timeout); with
  // max_connections in the hundreds, poll() costs nothing measurable.
  unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
  if (!s.options.listen) flags |= MHD_USE_NO_LISTEN_SOCKET;
  s.clusterer = std::thread([&s] { s.cluster_loop(); });
  s.daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &Impl::on_request, &s, MHD_OPTION_ARRAY,
                              items.data(), MHD_OPTION_END);
  if (!s.daemon) {
    {
      std::lock_guard lock(s.mutex);
      s.quit = true;
    }
    s.work_cv.notify_all();
    s.clusterer.join();
    if (s.listen_fd >= 0) ::close(s.listen_fd);
    s.listen_fd = -1;
    s.pool.reset();
    throw Error("cannot start the HTTP server (libmicrohttpd)");
  }
  s.bound = true;
}

int PaletteServer::port() const { return impl_->port; }

void PaletteServer::serve() {
  auto& s = *impl_;
  if (!s.bound) throw Error("serve() needs bind() first");
  std::unique_lock lock(s.mutex);
  s.answered_cv.wait(lock, [&] { return s.stopped; });
}

void PaletteServer::stop() {
  auto& s = *impl_;
  std::lock_guard once(s.stop_mutex);
  if (!s.daemon) return;
  {
    std::lock_guard lock(s.mutex);
    s.stopping = true;
  }
  if (s.listen_fd >= 0) {
    const MHD_socket fd = MHD_quiesce_daemon(s.daemon);
    if (fd != MHD_INVALID_SOCKET) ::close(fd);
    s.listen_fd = -1;
  }
  // Requests already uploaded are clustered and their answers sent (or given up by the client).
  {
    std::unique_lock lock(s.mutex);
    s.answered_cv.wait(lock, [&] { return s.answering == 0 && s.jobs.empty(); });
    s.quit = true;
  }
  s.work_cv.notify_all();
  s.clusterer.join();
  MHD_stop_daemon(s.daemon);
  s.daemon = nullptr;
  s.pool.reset();
  {
    std::lock_guard lock(s.mutex);
    s.stopped = true;
  }
  s.answered_cv.notify_all();
}

void PaletteServer::add_connection(int fd) {
  auto& s = *impl_;
  if (!s.daemon) {
    ::close(fd);
    throw Error("add_connection() needs bind() first");
  }
  // The peer's address is only used for per-address limits and logs: call it loopback.
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (MHD_add_connection(s.daemon, fd, reinterpret_cast<const sockaddr*>(&peer), sizeof peer) !=
      MHD_YES) {
    throw Error(std::string("cannot add the connection: ") + std::strerror(errno));
  }
}

}  // namespace palette
