// palette serve's HTTP API, in process, on a free port, through a real HTTP client.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "palette/color_names.hpp"
#include "palette/server.hpp"
#include "palette/writer.hpp"
#include "support/images.hpp"

namespace palette {
namespace {

using nlohmann::json;
using test::TempDir;

// A PNG of stripes, as bytes.
std::string png(const std::vector<std::uint32_t>& colors, const std::vector<int>& widths,
                int height = 8) {
  TempDir d;
  test::write_image(d.file("x.png"), test::stripes(colors, widths, height));
  const auto b = test::read_bytes(d.file("x.png"));
  return std::string(b.begin(), b.end());
}

// --- raw HTTP over loopback, for what a friendly client library does not do -------------------

// A request body made of literal pieces and runs of filler bytes, produced as it is sent.
class Body {
 public:
  Body& text(std::string s) {
    pieces_.push_back({std::move(s), 0});
    return *this;
  }
  Body& filler(std::size_t n) {
    pieces_.push_back({"", n});
    return *this;
  }
  std::size_t size() const {
    std::size_t n = 0;
    for (const auto& p : pieces_) n += p.text.size() + p.filler;
    return n;
  }
  // The next bytes, at most `cap`; 0 at the end.
  std::size_t read(char* out, std::size_t cap) {
    while (index_ < pieces_.size()) {
      const auto& p = pieces_[index_];
      const std::size_t len = p.text.size() + p.filler;
      if (offset_ < len) {
        const std::size_t n = std::min(cap, len - offset_);
        if (p.filler == 0) {
          std::memcpy(out, p.text.data() + offset_, n);
        } else {
          std::memset(out, 'x', n);
        }
        offset_ += n;
        return n;
      }
      ++index_;
      offset_ = 0;
    }
    return 0;
  }

 private:
  struct Piece {
    std::string text;
    std::size_t filler;
  };
  std::vector<Piece> pieces_;
  std::size_t index_ = 0, offset_ = 0;
};

// One multipart/form-data part, with the boundary line before it.
std::string part_head(const std::string& boundary, const std::string& name,
                      const std::string& filename = "") {
  std::string h = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"";
  if (!filename.empty()) h += "; filename=\"" + filename + "\"";
  return h + "\r\n\r\n";
}

int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  return fd;
}

bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

struct RawAnswer {
  int status = 0;  // 0: no answer
  std::string head, body;
  // A header's value (names compared without case), or "".
  std::string header(const std::string& name) const {
    for (std::size_t at = head.find("\r\n"); at != std::string::npos;
         at = head.find("\r\n", at + 2)) {
      const std::size_t start = at + 2;
      if (strncasecmp(head.c_str() + start, name.c_str(), name.size()) != 0 ||
          head.compare(start + name.size(), 1, ":") != 0) {
        continue;
      }
      std::size_t v = start + name.size() + 1;
      while (v < head.size() && head[v] == ' ') ++v;
      return head.substr(v, head.find("\r\n", v) - v);
    }
    return "";
  }
};

// Reads an answer until the server closes the connection (requests say Connection: close).
RawAnswer read_answer(int fd, int timeout_ms = 60000) {
  std::string all;
  char buf[1 << 16];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    all.append(buf, static_cast<std::size_t>(n));
  }
  RawAnswer a;
  const auto end = all.find("\r\n\r\n");
  if (all.compare(0, 9, "HTTP/1.1 ") != 0 || end == std::string::npos) return a;
  a.status = std::atoi(all.c_str() + 9);
  a.head = all.substr(0, end + 2);
  a.body = all.substr(end + 4);
  return a;
}

// Sends `head` and then `body` while watching for an answer: a server may answer before the
// body is complete (a refusal), and then the rest is not sent.
RawAnswer exchange(int port, const std::string& head, Body body) {
  const int fd = connect_loopback(port);
  if (fd < 0) return {};
  std::string pending = head;
  std::vector<char> chunk(1 << 16);
  bool sending = true;
  std::string all;
  while (true) {
    if (sending && pending.empty()) {
      const std::size_t n = body.read(chunk.data(), chunk.size());
      if (n == 0) {
        sending = false;
      } else {
        pending.assign(chunk.data(), n);
      }
    }
    pollfd p{fd, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, 60000) <= 0) break;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) break;  // the answer (or the end)
    if (p.revents & POLLOUT) {
      const ssize_t n = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN) {
        sending = false;
      } else if (n > 0) {
        pending.erase(0, static_cast<std::size_t>(n));
      }
    }
  }
  RawAnswer a = read_answer(fd);
  ::close(fd);
  return a;
}

std::string post_head(std::size_t length, const std::string& boundary = "xyz",
                      const std::string& extra = "") {
  return "POST /api/palettes HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
         "Content-Type: multipart/form-data; boundary=" +
         boundary + "\r\nContent-Length: " + std::to_string(length) + "\r\n" + extra + "\r\n";
}

// A field of /proc/PID/status, in kB.
long proc_status_kb(pid_t pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
  }
  return -1;
}

// Wraps the CPU backend; can hold batches back until released (to make requests wait).
class GatedBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  std::string device() const override { return "test"; }
  std::size_t preferred_batch_images() const override { return 16; }
  bool low_latency() const override { return true; }
  void fit(const Batch& batch, const KMeansParams& params, BatchResult& out) override {
    {
      std::unique_lock lock(mutex_);
      ++entered_;
      entered_cv_.notify_all();
      open_cv_.wait(lock, [&] { return open_; });
    }
    cpu_->fit(batch, params, out);
  }
  void close() {
    std::lock_guard lock(mutex_);
    open_ = false;
  }
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    open_cv_.notify_all();
  }
  void wait_entered(int n) {
    std::unique_lock lock(mutex_);
    entered_cv_.wait(lock, [&] { return entered_ >= n; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable open_cv_, entered_cv_;
  bool open_ = true;
  int entered_ = 0;
  std::unique_ptr<Backend> cpu_ = make_cpu_backend(2);
};

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions o = {}) {
    o.host = "127.0.0.1";
    o.port = 0;
    o.defaults.threads = 2;
    if (!o.decode_in_process) o.worker_command = {PALETTE_BINARY};
    server_ = std::make_unique<PaletteServer>(o, backend_);
    server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(60, 0);
    for (int i = 0; i < 100 && !client_->Get("/api/health"); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  void TearDown() override {
    backend_.open();
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
    ::unsetenv("PALETTE_TEST_DECODER_CRASH");
    ::unsetenv("PALETTE_TEST_DECODER_HANG");
  }
  httplib::Result post(const httplib::MultipartFormDataItems& items,
                       const std::string& query = "") {
    return client_->Post("/api/palettes" + query, items);
  }
  static httplib::MultipartFormData image(const std::string& name, const std::string& bytes) {
    return {"images", bytes, name, "application/octet-stream"};
  }
  static httplib::MultipartFormData field(const std::string& name, const std::string& value) {
    return {name, value, "", ""};
  }
  static std::string error_of(const httplib::Result& r) {
    return json::parse(r->body).at("error").get<std::string>();
  }

  GatedBackend backend_;
  std::unique_ptr<PaletteServer> server_;
  std::thread thread_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ServerTest, HealthInfoAndPage) {
  start();
  auto health = client_->Get("/api/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  auto info = client_->Get("/api/info");
  ASSERT_TRUE(info);
  const auto j = json::parse(info->body);
  EXPECT_EQ(j["version"], PALETTE_VERSION);
  EXPECT_EQ(j["backend"], "cpu");
  EXPECT_EQ(j["limits"]["max_files"], 100);
  EXPECT_EQ(j["limits"]["max_file_mb"], 50);
  EXPECT_EQ(j["limits"]["max_request_mb"], 256);
  EXPECT_EQ(j["limits"]["max_memory_mb"], 512);
  EXPECT_EQ(j["defaults"]["k"], 5);
  auto page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page->body.find("<title>palette"), std::string::npos);
  EXPECT_EQ(page->body.find("https://"), std::string::npos) << "the page must not load anything";
  auto missing = client_->Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(error_of(missing), "not found");
}

TEST_F(ServerTest, NamedColoursForThePage) {
  start();
  auto r = client_->Get("/api/colors");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const auto j = json::parse(r->body);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 148u);
  EXPECT_EQ(j[0], (json{{"name", "aliceblue"}, {"hex", "#f0f8ff"}, {"class", "white"}}));
  EXPECT_EQ(r->body.rfind(R"([{"name":"aliceblue","hex":"#f0f8ff","class":"white"},)", 0), 0u)
      << "fields in the order name, hex, class";
  const std::set<std::string> classes = {"black", "white", "grey",   "red",  "orange", "yellow",
                                         "green", "blue",  "purple", "pink", "brown"};
  std::set<std::string> seen;
  for (const auto& c : j) {
    ASSERT_TRUE(c.at("name").is_string());
    ASSERT_TRUE(c.at("hex").is_string());
    EXPECT_EQ(c["hex"].get<std::string>().size(), 7u) << c;
    EXPECT_EQ(c["hex"].get<std::string>()[0], '#') << c;
    EXPECT_TRUE(classes.count(c.at("class").get<std::string>())) << c;
    seen.insert(c["class"].get<std::string>());
  }
  EXPECT_EQ(seen, classes) << "every class has a named colour";
  // In the table's order, the same as the core library's.
  const auto table = css_named_colors();
  for (std::size_t i = 0; i < table.size() && i < j.size(); ++i) {
    EXPECT_EQ(j[i]["name"], std::string(table[i].name)) << i;
    EXPECT_EQ(j[i]["hex"], hex_color(table[i].rgb)) << i;
    EXPECT_EQ(j[i]["class"], std::string(to_string(table[i].color_class))) << i;
  }
}

TEST_F(ServerTest, JsonPalettesInUploadOrderWithErrorRows) {
  start();
  auto r = post({image("red-blue.png", png({0xd62728, 0x1f77b4}, {30, 10})),
                 image("broken.png", "\x89PNG\r\n\x1a\n garbage"),
                 image("green.png", png({0x2ca02c}, {5})), field("k", "3")});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = json::parse(r->body);
  EXPECT_EQ(j["k"], 3);
  EXPECT_EQ(j["space"], "lab");
  ASSERT_EQ(j["images"].size(), 3u);
  EXPECT_EQ(j["images"][0]["file"], "red-blue.png");
  EXPECT_EQ(j["images"][0]["colors"], json::array({"#d62728", "#1f77b4"}));
  EXPECT_EQ(j["images"][0]["shares"][0], 0.75);
  EXPECT_TRUE(j["images"][0]["error"].is_null());
  EXPECT_EQ(j["images"][1]["file"], "broken.png");
  EXPECT_TRUE(j["images"][1]["colors"].empty());
  EXPECT_FALSE(j["images"][1]["error"].get<std::string>().empty());
  EXPECT_EQ(j["images"][2]["colors"], json::array({"#2ca02c"}));
}

TEST_F(ServerTest, CsvIsByteIdenticalToExtract) {
  start();
  TempDir d;
  const std::string a = d.file("a,b.png"), b = d.file("c.png");
  test::write_image(a, test::stripes({0x112233, 0xddeeff, 0x884400}, {20, 20, 10}, 6));
  test::write_image(b, test::stripes({0xff0000, 0x00ff00}, {7, 3}, 4));
  test::write_text(d.file("bad.jpg"), "not a jpeg");
  const auto bytes = [](const std::string& p) {
    const auto v = test::read_bytes(p);
    return std::string(v.begin(), v.end());
  };
  // The file column shows the uploaded names: upload under the paths extract will print.
  auto r = post({image(a, bytes(a)), image(d.file("bad.jpg"), "not a jpeg"), image(b, bytes(b)),
                 field("k", "2"), field("space", "oklab")},
                "?format=csv");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->get_header_value("Content-Type").find("text/csv"), std::string::npos);
  const auto cli = test::run(
      {PALETTE_BINARY, "extract", a, d.file("bad.jpg"), b, "-k", "2", "--space", "oklab", "-q"});
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_EQ(r->body, cli.out);
}

TEST_F(ServerTest, BadRequestsGetJsonErrors) {
  ServerOptions o;
  o.max_files = 3;
  o.max_file_mb = 1;
  o.max_request_mb = 4;
  start(o);
  const std::string ok = png({0x123456}, {4});
  struct Case {
    std::string what;
    httplib::MultipartFormDataItems items;
    std::string query;
    int status;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"no images", {field("k", "3")}, "", 400, "no 'images' part"},
      {"too many files",
       {image("1.png", ok), image("2.png", ok), image("3.png", ok), image("4.png", ok)},
       "",
       400,
       "too many files"},
      {"k out of range", {image("a.png", ok), field("k", "0")}, "", 400, "field 'k'"},
      {"k not a number", {image("a.png", ok), field("k", "five")}, "", 400, "field 'k'"},
      {"bad space", {image("a.png", ok), field("space", "hsv")}, "", 400, "field 'space'"},
      {"bad tol", {image("a.png", ok), field("tol", "-1")}, "", 400, "field 'tol'"},
      // The server's --size (256 here) is the largest: the memory bound is stated for it.
      {"size over the server's",
       {image("a.png", ok), field("size", "257")},
       "",
       400,
       "field 'size' must be a number from 1 to 256"},
      {"unknown field", {image("a.png", ok), field("colours", "3")}, "", 400, "unknown field"},
      {"file as a value",
       {image("a.png", ok), httplib::MultipartFormData{"k", "3", "k.txt", "text/plain"}},
       "",
       400,
       "must be a value"},
      {"bad format", {image("a.png", ok)}, "?format=xml", 400, "format must be"},
      {"file too large",
       {image("big.png", std::string(1024 * 1024 + 1, 'x'))},
       "",
       413,
       "larger than 1 MB"},
  };
  for (const auto& c : cases) {
    auto r = post(c.items, c.query);
    ASSERT_TRUE(r) << c.what;
    EXPECT_EQ(r->status, c.status) << c.what << ": " << r->body;
    EXPECT_NE(error_of(r).find(c.error), std::string::npos) << c.what << ": " << r->body;
  }
  // Not multipart at all, and a multipart body that does not parse.
  auto plain = client_->Post("/api/palettes", "k=3", "application/x-www-form-urlencoded");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 400);
  EXPECT_NE(error_of(plain).find("multipart"), std::string::npos);
  auto broken =
      client_->Post("/api/palettes", "--xyz\r\nnonsense", "multipart/form-data; boundary=xyz");
  ASSERT_TRUE(broken);
  EXPECT_EQ(broken->status, 400);
  EXPECT_FALSE(error_of(broken).empty());
  // A request over the total limit is refused whole.
  auto huge = client_->Post("/api/palettes", std::string(5 * 1024 * 1024, 'x'),
                            "multipart/form-data; boundary=xyz");
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 413);
  EXPECT_FALSE(error_of(huge).empty());
  // And the server still serves.
  auto after = post({image("a.png", ok)});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

TEST_F(ServerTest, ImagesOverThePixelLimitAreErrorRows) {
  ServerOptions o;
  o.defaults.decode.max_pixels = 100;
  start(o);
  auto r = post(
      {image("small.png", png({0x123456}, {5}, 5)), image("big.png", png({0x654321}, {20}, 20))});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const auto j = json::parse(r->body);
  EXPECT_TRUE(j["images"][0]["error"].is_null());
  EXPECT_NE(j["images"][1]["error"].get<std::string>().find("--max-pixels"), std::string::npos);
}

TEST_F(ServerTest, EightConcurrentClientsAllGetTheirOwnAnswers) {
  start();
  std::vector<std::thread> clients;
  std::atomic<int> right{0};
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", server_->port());
      client.set_read_timeout(60, 0);
      const std::uint32_t color = 0x102030u * static_cast<std::uint32_t>(c + 1);
      httplib::MultipartFormDataItems items;
      for (int i = 0; i < 3; ++i) {
        items.push_back(image("c" + std::to_string(c) + "-" + std::to_string(i) + ".png",
                              png({color, 0xffffff}, {10 + i, 5})));
      }
      auto r = client.Post("/api/palettes", items);
      if (!r || r->status != 200) return;
      const auto j = json::parse(r->body);
      bool ok = j["images"].size() == 3;
      for (int i = 0; ok && i < 3; ++i) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "#%06x", color);
        ok = j["images"][i]["file"] == "c" + std::to_string(c) + "-" + std::to_string(i) + ".png" &&
             j["images"][i]["colors"][0] == hex;
      }
      right += ok;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(right, 8);
}

TEST_F(ServerTest, FullQueueAnswers503WithRetryAfter) {
  ServerOptions o;
  o.max_waiting = 1;
  start(o);
  backend_.close();  // the first request will sit in the backend
  const std::string ok = png({0x123456}, {4});
  std::thread first([&] {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(60, 0);
    auto r = c.Post("/api/palettes", httplib::MultipartFormDataItems{image("1.png", ok)});
    EXPECT_TRUE(r && r->status == 200);
  });
  backend_.wait_entered(1);
  std::thread second([&] {  // waits its turn
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(60, 0);
    auto r = c.Post("/api/palettes", httplib::MultipartFormDataItems{image("2.png", ok)});
    EXPECT_TRUE(r && r->status == 200);
  });
  // Give the second request time to queue, then the third finds the queue full.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto third = post({image("3.png", ok)});
  ASSERT_TRUE(third);
  EXPECT_EQ(third->status, 503);
  EXPECT_EQ(third->get_header_value("Retry-After"), "1");
  EXPECT_NE(error_of(third).find("busy"), std::string::npos);
  backend_.open();
  first.join();
  second.join();
  auto fourth = post({image("4.png", ok)});
  ASSERT_TRUE(fourth);
  EXPECT_EQ(fourth->status, 200);
}

TEST_F(ServerTest, StopLetsTheRequestInFlightFinish) {
  start();
  backend_.close();
  std::atomic<int> status{0};
  std::thread client([&] {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(60, 0);
    auto r = c.Post("/api/palettes",
                    httplib::MultipartFormDataItems{image("1.png", png({0x123456}, {4}))});
    status = r ? r->status : -1;
  });
  backend_.wait_entered(1);
  std::thread stopper([&] { server_->stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  backend_.open();
  client.join();
  stopper.join();
  thread_.join();
  EXPECT_EQ(status, 200);
}

TEST_F(ServerTest, SlowConnectionsDoNotStarveOthers) {
  start();
  // 30 clients that never finish: a third stop inside their headers, a third inside an upload's
  // body, a third send nothing at all.
  std::vector<int> slow;
  for (int i = 0; i < 30; ++i) {
    const int fd = connect_loopback(server_->port());
    ASSERT_GE(fd, 0);
    slow.push_back(fd);
    if (i % 3 == 0) {
      ASSERT_TRUE(send_all(fd, "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    } else if (i % 3 == 1) {
      ASSERT_TRUE(send_all(fd, post_head(100000) + part_head("xyz", "images", "slow.png") + "ab"));
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  httplib::Client c("127.0.0.1", server_->port());
  c.set_connection_timeout(1, 0);
  c.set_read_timeout(1, 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto health = c.Get("/api/health");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_LT(seconds, 1.0);
  // And an upload beside them gets its palette.
  auto r = post({image("a.png", png({0x123456}, {4}))});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  for (int fd : slow) ::close(fd);
}

TEST_F(ServerTest, HalfClosedPartialRequestIsLetGo) {
  ServerOptions o;
  o.idle_timeout_s = 60;
  start(o);
  // The last bytes and the end of stream in one segment: the connection is closed then, not
  // after the idle timeout.
  for (const std::string& partial : {std::string("GET /api/hea"), post_head(100) + "--xy"}) {
    const int fd = connect_loopback(server_->port());
    ASSERT_GE(fd, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
    ASSERT_TRUE(send_all(fd, partial));
    ::shutdown(fd, SHUT_WR);
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1) << "still open: " << partial;
    char c;
    EXPECT_EQ(::recv(fd, &c, 1, 0), 0) << partial;
    ::close(fd);
  }
}

TEST_F(ServerTest, FirstReadShorterThanTheBoundary) {
  start();
  const std::string file = png({0xd62728, 0x1f77b4}, {30, 10});
  const std::string body = part_head("----boundary-of-some-length", "images", "a.png") + file +
                           "\r\n" + part_head("----boundary-of-some-length", "k") + "2\r\n" +
                           "------boundary-of-some-length--\r\n";
  const std::string head = post_head(body.size(), "----boundary-of-some-length");
  // The body's first read is 3 bytes, far shorter than its boundary line.
  {
    const int fd = connect_loopback(server_->port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, head + body.substr(0, 3)));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(send_all(fd, body.substr(3)));
    const auto a = read_answer(fd);
    ::close(fd);
    ASSERT_EQ(a.status, 200) << a.head << a.body;
    EXPECT_EQ(json::parse(a.body)["images"][0]["colors"], json::array({"#d62728", "#1f77b4"}));
  }
  // Every byte of the headers and the first 100 of the body in a read of its own.
  {
    const int fd = connect_loopback(server_->port());
    ASSERT_GE(fd, 0);
    const std::string all = head + body;
    const std::size_t trickle = head.size() + 100;
    for (std::size_t i = 0; i < trickle; ++i) {
      ASSERT_TRUE(send_all(fd, all.substr(i, 1)));
      if (i % 8 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(send_all(fd, all.substr(trickle)));
    const auto a = read_answer(fd);
    ::close(fd);
    ASSERT_EQ(a.status, 200) << a.head << a.body;
    EXPECT_EQ(json::parse(a.body)["images"][0]["colors"], json::array({"#d62728", "#1f77b4"}));
  }
}

TEST_F(ServerTest, ChunkedUploadsAreCountedAsTheyArrive) {
  ServerOptions o;
  o.max_request_mb = 1;
  start(o);
  const std::string file = png({0x2ca02c}, {5});
  auto chunked = [&](const std::string& body) {
    std::string wire =
        "POST /api/palettes HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (std::size_t at = 0; at < body.size(); at += 1000) {
      const std::string piece = body.substr(at, 1000);
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
      wire += size + piece + "\r\n";
    }
    wire += "0\r\n\r\n";
    const int fd = connect_loopback(server_->port());
    EXPECT_TRUE(send_all(fd, wire));
    const auto a = read_answer(fd);
    ::close(fd);
    return a;
  };
  const auto ok = chunked(part_head("xyz", "images", "g.png") + file + "\r\n--xyz--\r\n");
  ASSERT_EQ(ok.status, 200) << ok.head << ok.body;
  EXPECT_EQ(json::parse(ok.body)["images"][0]["colors"], json::array({"#2ca02c"}));
  // Over --max-request-mb with no Content-Length to refuse it by: 413 once it gets there.
  const auto big = chunked(part_head("xyz", "images", "big.png") + std::string(1536 * 1024, 'x') +
                           "\r\n--xyz--\r\n");
  ASSERT_EQ(big.status, 413) << big.head << big.body;
  EXPECT_NE(json::parse(big.body)["error"].get<std::string>().find("too large"), std::string::npos);
}

TEST_F(ServerTest, RefusedFromTheHeadersBeforeTheBodyIsRead) {
  ServerOptions o;
  o.max_request_mb = 6;
  o.max_memory_mb = 8;
  start(o);
  // Over --max-request-mb: 413 at once, with no body byte sent.
  {
    const int fd = connect_loopback(server_->port());
    ASSERT_TRUE(send_all(fd, post_head(100u << 20)));
    const auto a = read_answer(fd, 5000);
    ::close(fd);
    ASSERT_EQ(a.status, 413) << a.head;
    EXPECT_NE(json::parse(a.body)["error"].get<std::string>().find("--max-request-mb"),
              std::string::npos);
  }
  // A client waiting for "100 Continue" is refused before it sends anything, too.
  {
    const int fd = connect_loopback(server_->port());
    ASSERT_TRUE(send_all(fd, post_head(7u << 20, "xyz", "Expect: 100-continue\r\n")));
    const auto a = read_answer(fd, 5000);
    ::close(fd);
    EXPECT_EQ(a.status, 413) << a.head;
  }
  // One upload of 6 MiB holds most of the 8 MiB budget: another of 4 MiB gets 503 until it ends.
  const std::string file = png({0x123456}, {4});
  const std::string tail = "\r\n--xyz--\r\n";
  const std::string first_head = part_head("xyz", "images", "a.png") + file;
  const std::size_t first_size = 6u << 20;
  const int first = connect_loopback(server_->port());
  ASSERT_TRUE(send_all(first, post_head(first_size) + first_head));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  {
    const int fd = connect_loopback(server_->port());
    ASSERT_TRUE(send_all(fd, post_head(4u << 20, "xyz", "Expect: 100-continue\r\n")));
    const auto a = read_answer(fd, 5000);
    ::close(fd);
    ASSERT_EQ(a.status, 503) << a.head;
    EXPECT_EQ(a.header("Retry-After"), "1");
    EXPECT_NE(json::parse(a.body)["error"].get<std::string>().find("busy"), std::string::npos);
  }
  // PNG decoders stop at the image's end: the padding after it is ignored.
  ASSERT_TRUE(
      send_all(first, std::string(first_size - first_head.size() - tail.size(), 'x') + tail));
  const auto a = read_answer(first);
  ::close(first);
  ASSERT_EQ(a.status, 200) << a.head << a.body;
  EXPECT_EQ(json::parse(a.body)["images"][0]["colors"], json::array({"#123456"}));
  // The budget is free again.
  Body body;
  body.text(part_head("xyz", "images", "b.png") + file).filler(3u << 20).text(tail);
  const std::size_t size = body.size();
  const auto again = exchange(server_->port(), post_head(size), std::move(body));
  EXPECT_EQ(again.status, 200) << again.head << again.body;
}

TEST_F(ServerTest, DecoderCrashCostsOneErrorEntry) {
  // Test-only hook: the worker raises SIGSEGV on an upload starting with these bytes.
  ::setenv("PALETTE_TEST_DECODER_CRASH", "CRASH-THE-DECODER", 1);
  start();
  auto r = post({image("a.png", png({0xd62728}, {4})), image("crash.png", "CRASH-THE-DECODER!"),
                 image("b.png", png({0x1f77b4}, {4}))});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = json::parse(r->body);
  ASSERT_EQ(j["images"].size(), 3u);
  EXPECT_EQ(j["images"][0]["colors"], json::array({"#d62728"}));
  EXPECT_EQ(j["images"][1]["file"], "crash.png");
  EXPECT_NE(j["images"][1]["error"].get<std::string>().find("decoder crashed"), std::string::npos)
      << j["images"][1]["error"];
  EXPECT_EQ(j["images"][2]["colors"], json::array({"#1f77b4"}));
  // The server answers the next request, with a fresh decoder.
  auto next = post({image("c.png", png({0x2ca02c}, {4})), image("d.png", png({0x654321}, {4}))});
  ASSERT_TRUE(next);
  ASSERT_EQ(next->status, 200) << next->body;
  EXPECT_EQ(json::parse(next->body)["images"][0]["colors"], json::array({"#2ca02c"}));
  EXPECT_EQ(json::parse(next->body)["images"][1]["colors"], json::array({"#654321"}));
}

TEST_F(ServerTest, HungDecoderIsKilledAfterTheTimeout) {
  ::setenv("PALETTE_TEST_DECODER_HANG", "HANG-THE-DECODER", 1);
  ServerOptions o;
  o.decode_timeout_s = 0.5;
  start(o);
  auto r = post({image("hang.png", "HANG-THE-DECODER!"), image("a.png", png({0xd62728}, {4}))});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = json::parse(r->body);
  EXPECT_NE(j["images"][0]["error"].get<std::string>().find("timed out"), std::string::npos)
      << j["images"][0]["error"];
  EXPECT_EQ(j["images"][1]["colors"], json::array({"#d62728"}));
  auto next = post({image("b.png", png({0x1f77b4}, {4}))});
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

TEST_F(ServerTest, InProcessDecodingGivesTheSameRows) {
  ServerOptions o;
  o.decode_in_process = true;
  start(o);
  auto r = post({image("a.png", png({0xd62728, 0x1f77b4}, {30, 10})), image("bad.png", "nope")});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = json::parse(r->body);
  EXPECT_EQ(j["images"][0]["colors"], json::array({"#d62728", "#1f77b4"}));
  EXPECT_EQ(j["images"][1]["error"], "not an image, or a format palette cannot read");
}

// --- extract's palette options, the quality figures, the combined palette and the exports ----

// Three images for the options below, written under `d`: white-framed stripes (ignore white,
// background; region), stripes of near colours (merge, min-share) and a file that is no image.
struct OptionImages {
  std::vector<std::string> paths;
  explicit OptionImages(const TempDir& d) {
    paths = {d.file("framed.png"), d.file("near.png"), d.file("bad.jpg"), d.file("dark.png")};
    cv::Mat framed =
        test::stripes({0xffffff, 0x2050c0, 0xd62728, 0x30a030, 0xffffff}, {8, 20, 12, 12, 8}, 30);
    framed.rowRange(0, 4).setTo(cv::Scalar(255, 255, 255));  // a white border all round
    framed.rowRange(26, 30).setTo(cv::Scalar(255, 255, 255));
    test::write_image(paths[0], framed);
    test::write_image(paths[1], test::stripes({0x804020, 0x824222, 0x101010, 0xe0e0e0, 0x2050c0},
                                              {30, 20, 5, 3, 2}, 10));
    test::write_text(paths[2], "not a jpeg");
    test::write_image(paths[3], test::stripes({0x202020, 0x404040, 0xc08040}, {10, 10, 5}, 6));
  }
  // The uploads, under the paths extract prints (the file column shows the uploaded names).
  httplib::MultipartFormDataItems uploads() const {
    httplib::MultipartFormDataItems items;
    for (const auto& p : paths) {
      const auto b = test::read_bytes(p);
      items.push_back({"images", std::string(b.begin(), b.end()), p, "application/octet-stream"});
    }
    return items;
  }
};

// The server's fields beside extract's options, for the same request.
struct OptionCase {
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<std::string> cli;
};

const std::vector<OptionCase>& option_cases() {
  static const std::vector<OptionCase> kCases = {
      {{{"ignore", "white,background"}, {"ignore_threshold", "6.5"}},
       {"--ignore", "white,background", "--ignore-threshold", "6.5"}},
      {{{"region", "10%,20%,50%,60%"}, {"sort", "hue"}},
       {"--region", "10%,20%,50%,60%", "--sort", "hue"}},
      {{{"region", "2,3,30,20"}, {"ignore", "grey,black"}},
       {"--region", "2,3,30,20", "--ignore", "grey,black"}},
      {{{"merge_delta_e", "5"}, {"min_share", "0.1"}, {"sort", "lightness"}},
       {"--merge-delta-e", "5", "--min-share", "0.1", "--sort", "lightness"}},
      {{{"ignore", "gray"},
        {"ignore_threshold", "0"},
        {"min_share", "1"},
        {"merge_delta_e", "100"}},
       {"--ignore", "gray", "--ignore-threshold", "0", "--min-share", "1", "--merge-delta-e",
        "100"}},
  };
  return kCases;
}

TEST_F(ServerTest, PaletteOptionsStatsAndCombinedAreExtracts) {
  start();
  TempDir d;
  const OptionImages images(d);
  auto plain_items = images.uploads();
  plain_items.insert(plain_items.end(),
                     {field("k", "4"), field("stats", "1"), field("combined", "1")});
  auto plain = post(plain_items, "?format=csv");
  ASSERT_TRUE(plain);
  ASSERT_EQ(plain->status, 200) << plain->body;
  for (const auto& c : option_cases()) {
    SCOPED_TRACE(c.cli[0] + " " + c.cli[1]);
    auto items = images.uploads();
    for (const auto& [name, value] : c.fields) items.push_back(field(name, value));
    items.push_back(field("k", "4"));
    items.push_back(field("stats", "1"));
    items.push_back(field("combined", "true"));
    std::vector<std::string> argv = {PALETTE_BINARY, "extract"};
    argv.insert(argv.end(), images.paths.begin(), images.paths.end());
    argv.insert(argv.end(), {"-k", "4", "--stats", "--combined", "-q"});
    argv.insert(argv.end(), c.cli.begin(), c.cli.end());

    // CSV: byte for byte what extract writes, the quality columns and the *combined* row too.
    auto csv = post(items, "?format=csv");
    ASSERT_TRUE(csv);
    ASSERT_EQ(csv->status, 200) << csv->body;
    const auto cli_csv = test::run(argv);
    EXPECT_EQ(cli_csv.exit_code, 1) << cli_csv.err;  // bad.jpg
    EXPECT_EQ(csv->body, cli_csv.out);
    EXPECT_NE(csv->body, plain->body) << "the options change the palettes";

    // JSON: extract's JSON Lines objects, the combined one in "combined".
    auto r = post(items);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const auto j = json::parse(r->body);
    argv.insert(argv.end(), {"--format", "jsonl"});
    const auto cli_jsonl = test::run(argv);
    std::vector<json> lines;
    std::istringstream in(cli_jsonl.out);
    for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
    ASSERT_EQ(lines.size(), images.paths.size() + 1);
    ASSERT_EQ(j["images"].size(), images.paths.size());
    for (std::size_t i = 0; i < images.paths.size(); ++i) EXPECT_EQ(j["images"][i], lines[i]) << i;
    EXPECT_EQ(j["combined"], lines.back());
    EXPECT_EQ(j["combined"]["file"], "*combined*");
    EXPECT_TRUE(j["images"][0]["stats"]["mean_delta_e"].is_number());
    EXPECT_TRUE(j["images"][2]["stats"].is_null());  // bad.jpg
  }
}

TEST_F(ServerTest, QualityFiguresAndTheCombinedPalette) {
  start();
  TempDir d;
  const OptionImages images(d);
  auto items = images.uploads();
  items.push_back(field("ignore", "white"));
  items.push_back(field("stats", "1"));
  items.push_back(field("combined", "1"));
  auto r = post(items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = json::parse(r->body);
  const auto& framed = j["images"][0];
  EXPECT_GE(framed["stats"]["mean_delta_e"].get<double>(), 0.0);
  // The white frame (16 of 60 columns, 8 of 30 rows of the rest) is left out.
  const double white = 1.0 - (44.0 * 22.0) / (60.0 * 30.0);
  EXPECT_NEAR(framed["stats"]["excluded"].get<double>(), white, 1e-4);
  // By share, then by colour (#30a030 and #d62728 hold as many pixels).
  EXPECT_EQ(framed["colors"], json::array({"#2050c0", "#30a030", "#d62728"}));
  // The combined palette: every counted pixel of the three images that have one.
  const auto& combined = j["combined"];
  ASSERT_TRUE(combined.is_object());
  EXPECT_EQ(combined["colors"].size(), 5u);
  double sum = 0;
  for (const auto& s : combined["shares"]) sum += s.get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-9);
  EXPECT_TRUE(combined["error"].is_null());
  // Without the fields: no quality figures, no combined palette.
  auto plain = post(images.uploads());
  ASSERT_TRUE(plain);
  const auto p = json::parse(plain->body);
  EXPECT_FALSE(p.contains("combined"));
  EXPECT_FALSE(p["images"][0].contains("stats"));
  // No image with a palette: the combined palette is null.
  auto none = post({image("a.jpg", "nope"), field("combined", "1")});
  ASSERT_TRUE(none);
  ASSERT_EQ(none->status, 200) << none->body;
  EXPECT_TRUE(json::parse(none->body)["combined"].is_null());
  // Every pixel left out: an error row, not a failed request.
  auto empty = post({image("w.png", png({0xffffff}, {4})), field("ignore", "white"),
                     field("stats", "1"), field("combined", "1")});
  ASSERT_TRUE(empty);
  ASSERT_EQ(empty->status, 200) << empty->body;
  const auto e = json::parse(empty->body);
  EXPECT_FALSE(e["images"][0]["error"].is_null());
  EXPECT_TRUE(e["combined"].is_null());
}

TEST_F(ServerTest, BadPaletteOptionsGet400WithTheirField) {
  start();
  const std::string ok = png({0x123456, 0xffffff}, {4, 4});
  const std::string nul("0.5\0x", 5);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"ignore", "red"},
      {"ignore", "white,"},
      {"ignore", ",white"},
      {"ignore", "white,,black"},
      {"ignore", "WHITE"},
      {"ignore", "white black"},
      {"ignore_threshold", "-0.1"},
      {"ignore_threshold", "100.5"},
      {"ignore_threshold", "nan"},
      {"ignore_threshold", "inf"},
      {"ignore_threshold", ""},
      {"ignore_threshold", "8px"},
      {"region", "1,2,3"},
      {"region", "1,2,3,4,5"},
      {"region", "0,0,0,10"},
      {"region", "-1,0,10,10"},
      {"region", "1.5,0,10,10"},
      {"region", "0%,0%,101%,50%"},
      {"region", "10%,10,50%,50%"},
      {"region", "nan%,0%,10%,10%"},
      {"region", "1e999,0,1,1"},
      {"region", "%,%,%,%"},
      {"min_share", "1.0001"},
      {"min_share", "-1"},
      {"min_share", "0x"},
      {"min_share", nul},
      {"merge_delta_e", "101"},
      {"merge_delta_e", "1e309"},
      {"merge_delta_e", "five"},
      {"sort", "Share"},
      {"sort", ""},
      {"sort", "hue "},
      {"stats", "yes"},
      {"stats", ""},
      {"combined", "2"},
      {"combined", std::string(4000, '1')},
      {"region", std::string(4000, '9')},
  };
  for (const auto& [name, value] : bad) {
    auto r = post({image("a.png", ok), field(name, value)});
    ASSERT_TRUE(r) << name << "=" << value;
    EXPECT_EQ(r->status, 400) << name << "=" << value << ": " << r->body;
    const std::string e = error_of(r);
    EXPECT_NE(e.find("field '" + name + "'"), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    EXPECT_LT(e.size(), 200u) << "the value is not echoed whole";
  }
  // Empty ignore and region mean none, as an absent field.
  auto none = post({image("a.png", ok), field("ignore", ""), field("region", "")});
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 200) << none->body;
  // A field longer than the field limit.
  auto long_field = post({image("a.png", ok), field("sort", std::string(5000, 'x'))});
  ASSERT_TRUE(long_field);
  EXPECT_EQ(long_field->status, 400);
  // And the server still serves.
  auto after = post({image("a.png", ok), field("ignore", "white"), field("stats", "1")});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200) << after->body;
  EXPECT_EQ(json::parse(after->body)["images"][0]["colors"], json::array({"#123456"}));
}

// Reads an Adobe Swatch Exchange file back, per its layout: groups of named RGB colours.
struct AseGroup {
  std::string name;
  std::vector<std::uint32_t> colors;
};
std::vector<AseGroup> read_ase(const std::string& b) {
  std::size_t at = 0;
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(b.at(i)); };
  const auto u16 = [&] {
    const int v = byte(at) << 8 | byte(at + 1);
    at += 2;
    return v;
  };
  const auto u32 = [&] {
    const std::uint32_t hi = static_cast<std::uint32_t>(u16());
    return hi << 16 | static_cast<std::uint32_t>(u16());
  };
  const auto name = [&] {
    const int n = u16();
    std::string s;
    for (int i = 0; i < n; ++i) {
      const int unit = u16();
      if (unit != 0) s += unit < 0x80 ? static_cast<char>(unit) : '?';
    }
    return s;
  };
  std::vector<AseGroup> groups;
  if (b.substr(0, 4) != "ASEF") throw std::runtime_error("no ASEF signature");
  at = 4;
  if (u16() != 1 || u16() != 0) throw std::runtime_error("not version 1.0");
  const std::uint32_t blocks = u32();
  for (std::uint32_t i = 0; i < blocks; ++i) {
    const int type = u16();
    const std::uint32_t length = u32();
    const std::size_t end = at + length;
    if (type == 0xC001) {
      groups.push_back({name(), {}});
    } else if (type == 0x0001) {
      name();
      if (b.substr(at, 4) != "RGB ") throw std::runtime_error("not an RGB colour");
      at += 4;
      std::uint32_t rgb = 0;
      for (int c = 0; c < 3; ++c) {
        const std::uint32_t bits = u32();
        float f;
        std::memcpy(&f, &bits, sizeof f);
        rgb = rgb << 8 | static_cast<std::uint32_t>(std::lround(f * 255.0f));
      }
      groups.back().colors.push_back(rgb);
    }
    at = end;
  }
  if (at != b.size()) throw std::runtime_error("bytes after the last block");
  return groups;
}

TEST_F(ServerTest, ExportsAreWhatPaletteExportMakesOfTheCsv) {
  start();
  TempDir d;
  const OptionImages images(d);
  auto items = images.uploads();
  items.push_back(field("k", "3"));
  items.push_back(field("combined", "1"));
  items.push_back(field("sort", "lightness"));
  auto csv = post(items, "?format=csv");
  ASSERT_TRUE(csv);
  ASSERT_EQ(csv->status, 200) << csv->body;
  const std::string results = d.file("palettes.csv");
  test::write_text(results, csv->body);
  // The palettes the exports must hold: every row with colours, the combined one last.
  std::vector<std::pair<std::string, std::vector<std::uint32_t>>> want;
  const auto rows = test::parse_csv(csv->body);
  for (std::size_t i = 1; i < rows.size(); ++i) {
    std::vector<std::uint32_t> colors;
    for (std::size_t c = 1; c <= 3; ++c) {
      if (!rows[i][c].empty()) colors.push_back(std::stoul(rows[i][c].substr(1), nullptr, 16));
    }
    if (!colors.empty()) want.emplace_back(rows[i][0], colors);
  }
  ASSERT_EQ(want.size(), 4u);
  EXPECT_EQ(want.back().first, "*combined*");

  for (const std::string format : {"gpl", "ase", "css"}) {
    SCOPED_TRACE(format);
    auto r = post(items, "?format=" + format);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Disposition"),
              "attachment; filename=\"palettes." + format + "\"");
    // One implementation: byte for byte what `palette export` makes of the CSV answer.
    const auto cli = test::run({PALETTE_BINARY, "export", results, "--to", format});
    ASSERT_EQ(cli.exit_code, 0) << cli.err;
    EXPECT_EQ(r->body, cli.out);
    // And it reads back as the palettes.
    std::vector<std::pair<std::string, std::vector<std::uint32_t>>> got;
    if (format == "gpl") {
      EXPECT_EQ(r->body.rfind("GIMP Palette\nName: palettes\nColumns: 3\n", 0), 0u) << r->body;
      std::istringstream in(r->body);
      for (std::string line; std::getline(in, line);) {
        if (line.rfind("# ", 0) == 0 && line.size() > 2) {
          got.push_back({line.substr(2), {}});
        } else if (!got.empty() && line.find('\t') != std::string::npos) {  // "R G B\tname"
          std::istringstream f(line);
          unsigned rr = 0, g = 0, b = 0;
          f >> rr >> g >> b;
          got.back().second.push_back(rr << 16 | g << 8 | b);
        }
      }
    } else if (format == "ase") {
      EXPECT_EQ(r->get_header_value("Content-Type"), "application/octet-stream");
      for (const auto& g : read_ase(r->body)) got.push_back({g.name, g.colors});
    } else {
      EXPECT_NE(r->get_header_value("Content-Type").find("text/css"), std::string::npos);
      const std::regex block(R"(/\* (.*) \*/)"), prop(R"(--([a-z0-9-]+)-\d+: #([0-9a-f]{6});)");
      std::istringstream in(r->body);
      for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (std::regex_search(line, m, prop)) {
          got.back().second.push_back(std::stoul(m[2].str(), nullptr, 16));
        } else if (std::regex_search(line, m, block)) {
          got.push_back({m[1].str(), {}});
        }
      }
      EXPECT_NE(r->body.find("--combined-1: #"), std::string::npos) << r->body;
    }
    EXPECT_EQ(got, want);
  }
  // Nothing to export: said so.
  auto none = post({image("a.jpg", "nope")}, "?format=gpl");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 422);
  EXPECT_NE(error_of(none).find("no palettes"), std::string::npos);
  // An unknown format, whatever its bytes.
  auto bad = post({image("a.jpg", "nope")}, "?format=%ff%00gif");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(error_of(bad).find("format must be json, csv, gpl, ase or css"), std::string::npos);
}

TEST_F(ServerTest, AddConnectionServesASocketPair) {
  start();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  server_->add_connection(sv[0]);
  ASSERT_TRUE(send_all(sv[1], "GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  ::shutdown(sv[1], SHUT_WR);
  const auto a = read_answer(sv[1], 5000);
  ::close(sv[1]);
  EXPECT_EQ(a.status, 200) << a.head;
  EXPECT_EQ(a.body, "{\"status\":\"ok\"}");
}

// `palette serve` with its default limits as a process of its own; 8 clients upload about
// 200 MB each at once (4 files of 50 MB: a small PNG and padding). The server's peak resident
// memory (VmHWM) must stay under the bound the README states for the defaults, and its memory
// must go back down after the burst.
#if defined(PALETTE_SANITIZERS) || defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
constexpr bool kSanitized = __has_feature(address_sanitizer);
#else
constexpr bool kSanitized = false;
#endif

// `palette serve --port 0 ARGS...` as a process of its own: its pid, and the port it says it
// listens on (0 when it does not say so within 20 s; its stderr up to then is in `log`).
struct ServeProcess {
  pid_t pid = -1;
  int port = 0;
  int err = -1;
  std::string log;

  explicit ServeProcess(const std::vector<std::string>& extra) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    err = fds[0];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    std::vector<std::string> args = {PALETTE_BINARY, "serve", "--port", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    // "palette: open http://127.0.0.1:PORT (...)" on stderr.
    for (int i = 0; i < 200 && port == 0 && pid > 0; ++i) {
      pollfd p{err, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[512];
      const ssize_t n = ::read(err, buf, sizeof buf);
      if (n <= 0) break;
      log.append(buf, static_cast<std::size_t>(n));
      const std::string open = "open http://127.0.0.1:";
      const auto at = log.find(open);
      if (at != std::string::npos && log.find(' ', at + open.size()) != std::string::npos) {
        port = std::atoi(log.c_str() + at + open.size());
      }
    }
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  ~ServeProcess() { (void)stop(); }

  // SIGTERM, then its wait status (-1: no process).
  int stop() {
    int status = -1;
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, &status, 0);
      pid = -1;
    }
    if (err >= 0) ::close(err);
    err = -1;
    return status;
  }
};

TEST(ServerProcess, EightBigUploadsStayUnderTheMemoryBound) {
  if (kSanitized) {
    GTEST_SKIP() << "AddressSanitizer keeps freed memory in quarantine: RSS says nothing here";
  }
  // README: peak RSS <= 48 MiB + --max-memory-mb + 28 bytes x size^2 per image of the request
  // being clustered. The last term is 28 x 12 pixels x 4 files here (the images are 6 x 2).
  constexpr long kBoundMiB = 48 + 512 + 1;
  ServeProcess server({"--backend", "cpu", "--threads", "2"});
  ASSERT_GT(server.port, 0) << server.log;
  const int port = server.port;
  const pid_t pid = server.pid;

  constexpr std::size_t kFile = 50'000'000;
  const std::string file = png({0x123456, 0xabcdef}, {6, 2});
  const long rss_before = proc_status_kb(pid, "VmRSS");
  std::atomic<int> answered{0}, refused{0}, wrong{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      for (int attempt = 0; attempt < 30; ++attempt) {
        Body body;
        for (int f = 0; f < 4; ++f) {
          const std::string head = part_head(
              "xyz", "images", "c" + std::to_string(c) + "-" + std::to_string(f) + ".png");
          body.text(head + file).filler(kFile - file.size()).text("\r\n");
        }
        body.text("--xyz--\r\n");
        const std::size_t size = body.size();
        const auto a = exchange(port, post_head(size), std::move(body));
        if (a.status == 503 && a.header("Retry-After") == "1") {
          ++refused;
          std::this_thread::sleep_for(std::chrono::seconds(1));
          continue;
        }
        if (a.status != 200) {
          ADD_FAILURE() << "client " << c << ": " << a.status << " " << a.head << a.body;
          ++wrong;
          return;
        }
        const auto j = json::parse(a.body);
        const bool ok = j["images"].size() == 4 && j["images"][3]["colors"].size() == 2;
        (ok ? answered : wrong) += 1;
        return;
      }
      ++wrong;
    });
  }
  for (auto& t : clients) t.join();
  const long peak = proc_status_kb(pid, "VmHWM");
  long after = proc_status_kb(pid, "VmRSS");
  for (int i = 0; i < 30 && after > rss_before + 32 * 1024; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = proc_status_kb(pid, "VmRSS");
  }
  std::printf(
      "[ serve    ] 8 x %zu MB: %d answered, %d answers 503 (retried); server RSS %ld MiB "
      "before, peak %ld MiB, %ld MiB after\n",
      4 * kFile / 1000000, answered.load(), refused.load(), rss_before / 1024, peak / 1024,
      after / 1024);
  const int status = server.stop();
  EXPECT_EQ(answered, 8);
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(peak, 0);
  EXPECT_LT(peak / 1024, kBoundMiB);
  EXPECT_LT(after, rss_before + 32 * 1024) << "memory kept after the burst";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// The heaviest request the defaults allow for clustering: 100 files of noise at the server's
// size (256 x 256, 65,536 colours each, 6.5 million for the combined palette), combined=1 (the
// page's default). Peak resident memory stays under the README's bound for it, and the memory
// (the colour table, the combined palette's points, the backend's scratch for them) goes back
// after the answer: a second request answers the same, byte for byte.
TEST(ServerProcess, CombinedPaletteOfAHundredNoiseImagesStaysBoundedAndGivesMemoryBack) {
  if (kSanitized) {
    GTEST_SKIP() << "AddressSanitizer keeps freed memory in quarantine: RSS says nothing here";
  }
  // README: 48 MiB + --max-memory-mb + 28 bytes x size^2 per image, and for combined=1 the
  // colour table (128 MiB) and up to as much again as the images' points: under 1.05 GiB.
  constexpr long kBoundMiB = 1075;
  ServeProcess server({"--backend", "cpu", "--threads", "2"});
  ASSERT_GT(server.port, 0) << server.log;
  Body body;
  {
    TempDir d;
    cv::theRNG().state = 7;
    for (int i = 0; i < 100; ++i) {
      cv::Mat noise(256, 256, CV_8UC3);
      cv::randu(noise, 0, 256);
      test::write_image(d.file("n.png"), noise, {cv::IMWRITE_PNG_COMPRESSION, 1});
      const auto b = test::read_bytes(d.file("n.png"));
      body.text(part_head("xyz", "images", "n" + std::to_string(i) + ".png") +
                std::string(b.begin(), b.end()) + "\r\n");
    }
  }
  body.text("--xyz\r\nContent-Disposition: form-data; name=\"combined\"\r\n\r\n1\r\n--xyz--\r\n");
  const long rss_before = proc_status_kb(server.pid, "VmRSS");
  std::string first;
  for (int round = 0; round < 2; ++round) {
    Body copy = body;
    const std::size_t size = copy.size();
    const auto a = exchange(server.port, post_head(size), std::move(copy));
    ASSERT_EQ(a.status, 200) << a.head << a.body;
    const auto j = json::parse(a.body);
    ASSERT_EQ(j["images"].size(), 100u);
    ASSERT_TRUE(j["combined"].is_object()) << a.body.substr(0, 200);
    EXPECT_EQ(j["combined"]["colors"].size(), 5u);
    if (round == 0) {
      first = a.body;
    } else {
      EXPECT_EQ(a.body, first);
    }
  }
  const long peak = proc_status_kb(server.pid, "VmHWM");
  long after = proc_status_kb(server.pid, "VmRSS");
  for (int i = 0; i < 30 && after > rss_before + 32 * 1024; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = proc_status_kb(server.pid, "VmRSS");
  }
  std::printf(
      "[ serve    ] 100 noise images, combined=1, twice: server RSS %ld MiB before, peak "
      "%ld MiB, %ld MiB after\n",
      rss_before / 1024, peak / 1024, after / 1024);
  EXPECT_LT(peak / 1024, kBoundMiB);
  EXPECT_LT(after, rss_before + 32 * 1024) << "memory kept after the request";
  const int status = server.stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace palette
