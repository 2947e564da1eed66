// palette export --to gpl|ase|css: each format read back by the test: GIMP palette text, the
// Adobe Swatch Exchange byte layout (read per its specification: "ASEF", version 1.0, block
// count, big-endian blocks with UTF-16 names and float32 RGB), CSS custom properties.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cli_helpers.hpp"

namespace palette::test {
namespace {

class ExportTest : public ExtractTest {
 protected:
  std::string library() {
    const std::string p = dir_.file("lib.csv");
    write_text(p,
               "file,color_1,color_2,share_1,share_2,error\n"
               "photos/a.png,#0000ff,#ffffff,0.6000,0.4000,\n"
               "broken.png,,,,,cannot decode\n"
               "photos/caf\xc3\xa9 \xf0\x9f\x98\x80.jpg,#ff8000,,1.0000,,\n");
    return p;
  }
  RunResult exp(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {PALETTE_BINARY, "export"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }
};

TEST_F(ExportTest, GimpPalette) {
  const auto r = exp({library(), "--to", "gpl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "GIMP Palette");
  std::getline(in, line);
  EXPECT_EQ(line, "Name: lib");
  std::getline(in, line);
  EXPECT_EQ(line, "Columns: 2");
  std::vector<std::vector<int>> colors;
  std::vector<std::string> names;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream f(line);
    int rr = -1, g = -1, b = -1;
    f >> rr >> g >> b;
    colors.push_back({rr, g, b});
    names.push_back(line.substr(line.find('\t') + 1));
  }
  EXPECT_EQ(colors, (std::vector<std::vector<int>>{{0, 0, 255}, {255, 255, 255}, {255, 128, 0}}));
  EXPECT_EQ(names[0], "a 1 (blue, 60.0%)");
  EXPECT_EQ(names[1], "a 2 (white, 40.0%)");
}

TEST_F(ExportTest, AdobeSwatchExchange) {
  const std::string out = dir_.file("lib.ase");
  ASSERT_EQ(exp({library(), "--to", "ase", "-o", out}).exit_code, 0);
  const std::vector<std::uint8_t> b = read_bytes(out);
  std::size_t at = 0;
  const auto u16 = [&] {
    EXPECT_LE(at + 2, b.size());
    const int v = b.at(at) << 8 | b.at(at + 1);
    at += 2;
    return v;
  };
  const auto u32 = [&] {
    const std::uint32_t hi = static_cast<std::uint32_t>(u16()),
                        lo = static_cast<std::uint32_t>(u16());
    return hi << 16 | lo;
  };
  const auto f32 = [&] {
    const std::uint32_t bits = u32();
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  };
  // A name: UTF-16 units with a terminating 0, decoded to UTF-8.
  const auto name = [&] {
    const int n = u16();
    std::string s;
    for (int i = 0; i < n; ++i) {
      std::uint32_t cp = static_cast<std::uint32_t>(u16());
      if (cp >= 0xD800 && cp < 0xDC00) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (static_cast<std::uint32_t>(u16()) - 0xDC00);
        ++i;
      }
      if (i == n - 1) {
        EXPECT_EQ(cp, 0u);
        break;
      }
      if (cp < 0x80) {
        s += static_cast<char>(cp);
      } else if (cp < 0x800) {
        s += static_cast<char>(0xC0 | cp >> 6);
        s += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        s += static_cast<char>(0xE0 | cp >> 12);
        s += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        s += static_cast<char>(0xF0 | cp >> 18);
        s += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
        s += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      }
    }
    return s;
  };
  ASSERT_GE(b.size(), 12u);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "ASEF");
  at = 4;
  EXPECT_EQ(u16(), 1);  // version 1.0
  EXPECT_EQ(u16(), 0);
  const std::uint32_t blocks = u32();
  EXPECT_EQ(blocks, 2u + 2 + 1 + 2);  // two groups: start, colours, end
  std::vector<std::string> groups;
  std::vector<std::uint32_t> colors;
  for (std::uint32_t i = 0; i < blocks; ++i) {
    const int type = u16();
    const std::uint32_t length = u32();
    const std::size_t end = at + length;
    if (type == 0xC001) {
      groups.push_back(name());
    } else if (type == 0x0001) {
      name();
      EXPECT_EQ(std::string(b.begin() + static_cast<std::ptrdiff_t>(at),
                            b.begin() + static_cast<std::ptrdiff_t>(at) + 4),
                "RGB ");
      at += 4;
      std::uint32_t rgb = 0;
      for (int c = 0; c < 3; ++c)
        rgb = rgb << 8 | static_cast<std::uint32_t>(std::lround(f32() * 255));
      colors.push_back(rgb);
      EXPECT_EQ(u16(), 2);  // normal colour
    } else {
      EXPECT_EQ(type, 0xC002);
      EXPECT_EQ(length, 0u);
    }
    EXPECT_EQ(at, end) << "block " << i << " has the length it says";
    at = end;
  }
  EXPECT_EQ(at, b.size());
  EXPECT_EQ(groups,
            (std::vector<std::string>{"photos/a.png", "photos/caf\xc3\xa9 \xf0\x9f\x98\x80.jpg"}));
  EXPECT_EQ(colors, (std::vector<std::uint32_t>{0x0000ff, 0xffffff, 0xff8000}));
}

TEST_F(ExportTest, CssCustomProperties) {
  auto r = exp({library(), "--to", "css"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::regex prop("  --([a-z0-9-]+): (#[0-9a-f]{6});  /\\* ([0-9.]+)% \\*/");
  std::vector<std::string> names, values;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, prop)) {
      names.push_back(m[1]);
      values.push_back(m[2]);
    }
  }
  EXPECT_TRUE(r.out.starts_with(":root {\n")) << r.out;
  EXPECT_TRUE(r.out.ends_with("}\n")) << r.out;
  EXPECT_EQ(names, (std::vector<std::string>{"a-1", "a-2", "caf-1"}));
  EXPECT_EQ(values, (std::vector<std::string>{"#0000ff", "#ffffff", "#ff8000"}));
  // One image: the palette's name is the prefix.
  r = exp({library(), "--to", "css", "--file", "photos/a.png", "--name", "Brand Blue"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("  --brand-blue-1: #0000ff;"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("ff8000"), std::string::npos) << r.out;
}

TEST_F(ExportTest, UsageErrors) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{library(), "--to", "pdf"},
                                             {library()},
                                             {library(), "--to", "gpl", "--file", "nowhere.png"},
                                             {dir_.file("missing.csv"), "--to", "gpl"}}) {
    const auto r = exp(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  }
  const std::string errors = dir_.file("errors.csv");
  write_text(errors, "file,color_1,share_1,error\nx.png,,,broken\n");
  EXPECT_EQ(exp({errors, "--to", "css"}).exit_code, 2);
}

}  // namespace
}  // namespace palette::test
