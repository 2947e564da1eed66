// palette serve's HTTP API, in process, on a free port, through a real HTTP client.

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <nlohmann/json.hpp>
#include <thread>

#include "palette/server.hpp"
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

}  // namespace
}  // namespace palette
