// The streaming multipart/form-data parser of palette serve: the same parts whatever the reads.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "multipart.hpp"

namespace palette {
namespace {

struct Part {
  std::string name, filename, data;
  bool ended = false;
  bool operator==(const Part&) const = default;
};

class Recorder final : public MultipartHandler {
 public:
  std::vector<Part> parts;
  void part_begin(const std::string& name, const std::string& filename) override {
    parts.push_back({name, filename, "", false});
  }
  void part_data(std::span<const std::uint8_t> bytes) override {
    ASSERT_FALSE(parts.empty());
    ASSERT_FALSE(parts.back().ended);
    parts.back().data.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  void part_end() override {
    ASSERT_FALSE(parts.empty());
    parts.back().ended = true;
  }
};

std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

struct Parsed {
  std::vector<Part> parts;
  bool ok = false;
  std::string error;
};

// Feeds `body` in pieces cut at `cuts` (ascending offsets).
Parsed parse(const std::string& boundary, const std::string& body,
             const std::vector<std::size_t>& cuts = {}) {
  Recorder r;
  MultipartParser p(boundary, r);
  std::size_t at = 0;
  bool fed = true;
  for (std::size_t cut : cuts) {
    fed = p.feed(bytes(std::string_view(body).substr(at, cut - at))) && fed;
    at = cut;
  }
  fed = p.feed(bytes(std::string_view(body).substr(at))) && fed;
  const bool ok = p.finish() && fed;
  return {r.parts, ok, p.error()};
}

const std::string kBody =
    "--xyz\r\n"
    "Content-Disposition: form-data; name=\"images\"; filename=\"a.png\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "\x89PNG\r\n--xy\r\n-\r\r\n--x\r\n\r\n"
    "\r\n--xyz\r\n"
    "content-disposition: form-data; name=images; filename=\"\"\r\n"
    "\r\n"
    "\r\n--xyz\r\n"
    "Content-Disposition: form-data; name=\"images\"; filename=\"\"\r\n"
    "\r\n"
    "\r\n--xyz\r\n"
    "Content-Disposition: form-data; name=\"k\"\r\n"
    "\r\n"
    "3\r\n--xyz--\r\n";

const std::vector<Part> kParts = {
    {"images", "a.png", "\x89PNG\r\n--xy\r\n-\r\r\n--x\r\n\r\n", true},
    {"images", "", "", true},
    {"images", "", "", true},
    {"k", "", "3", true},
};

TEST(ServerMultipart, PartsInOrderWithContentThatLooksLikeABoundary) {
  const auto r = parse("xyz", kBody);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.parts, kParts);
}

TEST(ServerMultipart, TheSamePartsWhereverTheReadsEnd) {
  for (std::size_t cut = 0; cut <= kBody.size(); ++cut) {
    const auto r = parse("xyz", kBody, {cut});
    ASSERT_TRUE(r.ok) << "cut at " << cut << ": " << r.error;
    ASSERT_EQ(r.parts, kParts) << "cut at " << cut;
  }
  for (std::size_t a = 0; a <= kBody.size(); a += 3) {
    for (std::size_t b = a; b <= kBody.size(); b += 5) {
      const auto r = parse("xyz", kBody, {a, b});
      ASSERT_TRUE(r.ok && r.parts == kParts) << "cuts at " << a << ", " << b;
    }
  }
  std::vector<std::size_t> every(kBody.size());
  for (std::size_t i = 0; i < every.size(); ++i) every[i] = i;
  const auto r = parse("xyz", kBody, every);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.parts, kParts);
}

TEST(ServerMultipart, PreambleEpilogueAndPaddingAreIgnored) {
  const std::string body =
      "This is a preamble.\r\n--b1  \r\n"
      "Content-Disposition: form-data; name=\"k\"\r\n\r\n4\r\n--b1--\r\nepilogue --b1\r\n";
  const auto r = parse("b1", body);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.parts, (std::vector<Part>{{"k", "", "4", true}}));
}

TEST(ServerMultipart, MalformedBodiesAreErrors) {
  struct Case {
    const char* what;
    std::string body;
  };
  const std::vector<Case> cases = {
      {"no boundary at all", "hello"},
      {"cut short in a part", "--b\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\n12"},
      {"cut short in headers", "--b\r\nContent-Disposition: form-da"},
      {"no closing boundary", "--b\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\n1\r\n--b"},
      {"garbage after a boundary", "--bx\r\n\r\n--b--"},
      {"a part without a name", "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--"},
      {"a header line without a colon", "--b\r\nnonsense\r\n\r\nx\r\n--b--"},
      {"headers too long", "--b\r\nX-Long: " + std::string(20000, 'a') + "\r\n\r\n\r\n--b--"},
  };
  for (const auto& c : cases) {
    const auto r = parse("b", c.body);
    EXPECT_FALSE(r.ok) << c.what;
    EXPECT_NE(r.error.find("malformed multipart body"), std::string::npos) << c.what;
  }
}

TEST(ServerMultipart, BoundaryFromTheContentType) {
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=xyz"), "xyz");
  EXPECT_EQ(multipart_boundary("Multipart/Form-Data;boundary=\"a b:c\"; charset=utf-8"), "a b:c");
  EXPECT_EQ(multipart_boundary("multipart/form-data; charset=utf-8; BOUNDARY=----WebKitForm123"),
            "----WebKitForm123");
  EXPECT_FALSE(multipart_boundary("multipart/form-data"));
  EXPECT_FALSE(multipart_boundary("multipart/form-data; boundary="));
  EXPECT_FALSE(multipart_boundary("multipart/form-data; boundary=\"\""));
  EXPECT_FALSE(multipart_boundary("multipart/mixed; boundary=xyz"));
  EXPECT_FALSE(multipart_boundary("application/x-www-form-urlencoded"));
  EXPECT_FALSE(multipart_boundary("multipart/form-data; boundary=\"a\rb\""));
  EXPECT_FALSE(multipart_boundary("multipart/form-data; boundary=" + std::string(201, 'a')));
  EXPECT_FALSE(multipart_boundary(""));
}

}  // namespace
}  // namespace palette
