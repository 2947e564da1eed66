#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "palette/inputs.hpp"
#include "support/images.hpp"

namespace palette {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

struct Listed {
  std::vector<std::string> names, errors;
};

Listed expand(const std::vector<std::string>& args, const std::string& stdin_text = "",
              bool hidden = false) {
  InputQueue q;
  std::istringstream in(stdin_text);
  EnumerateOptions o;
  o.hidden = hidden;
  enumerate_inputs(args, o, q, in);
  Listed out;
  std::size_t expect = 0;
  while (auto item = q.next()) {
    EXPECT_EQ(item->first, expect++);
    out.names.push_back(item->second.name);
    out.errors.push_back(item->second.error);
  }
  return out;
}

std::string rel(const TempDir& d, const std::string& p) {
  return p.substr(d.path().string().size() + 1);
}

TEST(Inputs, ImageExtensionsAreCaseInsensitive) {
  for (const char* n : {"a.jpg", "b.JPEG", "c.Png", "d.webp", "e.BMP", "f.tif", "g.TIFF", "h.ppm",
                        "i.PGM", "j.pnm"}) {
    EXPECT_TRUE(has_image_extension(n)) << n;
  }
  for (const char* n : {"a.gif", "b.txt", "jpg", "c.jpg.bak", ".png.txt", "d.pbm"}) {
    EXPECT_FALSE(has_image_extension(n)) << n;
  }
}

TEST(Inputs, DirectoriesAreWalkedRecursivelyInPathOrder) {
  TempDir d;
  fs::create_directories(d.path() / "b" / "c");
  fs::create_directories(d.path() / "a");
  for (const char* f :
       {"b.png", "b/c/z.jpg", "b/a.JPG", "a/x.png", "a.png", "b/c.txt", "B.png", "b/c/readme.md"}) {
    test::write_text(d.file(f), "x");
  }
  const auto got = expand({d.path().string()});
  std::vector<std::string> names;
  for (const auto& n : got.names) names.push_back(rel(d, n));
  // Byte order of the full paths: "B.png" < "a.png" < "a/x.png" < "b.png" < "b/a.JPG" ...
  EXPECT_EQ(names, (std::vector<std::string>{"B.png", "a.png", "a/x.png", "b.png", "b/a.JPG",
                                             "b/c/z.jpg"}));
  std::vector<std::string> sorted = got.names;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(got.names, sorted);
}

TEST(Inputs, HiddenEntriesAreSkippedUnlessAsked) {
  TempDir d;
  fs::create_directories(d.path() / ".cache");
  test::write_text(d.file(".cache/a.png"), "x");
  test::write_text(d.file("._b.jpg"), "x");
  test::write_text(d.file("c.jpg"), "x");
  EXPECT_EQ(expand({d.path().string()}).names.size(), 1u);
  EXPECT_EQ(expand({d.path().string()}, "", true).names.size(), 3u);
}

TEST(Inputs, ExplicitFilesKeepTheirOrderAndRepeat) {
  TempDir d;
  test::write_text(d.file("one.txt"), "x");
  test::write_text(d.file("two.png"), "x");
  const auto got = expand({d.file("two.png"), d.file("one.txt"), d.file("two.png")});
  EXPECT_EQ(got.names,
            (std::vector<std::string>{d.file("two.png"), d.file("one.txt"), d.file("two.png")}));
  for (const auto& e : got.errors) EXPECT_EQ(e, "");
}

TEST(Inputs, ListsAndStdin) {
  TempDir d;
  test::write_text(d.file("a.png"), "x");
  test::write_text(d.file("b.png"), "x");
  test::write_text(d.file("list.txt"), d.file("b.png") + "\r\n\r\n" + d.file("a.png") + "\n");
  const auto got = expand({"@" + d.file("list.txt"), "-"}, d.file("a.png") + "\n\n");
  EXPECT_EQ(got.names,
            (std::vector<std::string>{d.file("b.png"), d.file("a.png"), d.file("a.png")}));
}

TEST(Inputs, ProblemsBecomeItemsWithErrors) {
  TempDir d;
  const auto got = expand({d.file("missing.png"), "@" + d.file("missing-list.txt")});
  ASSERT_EQ(got.names.size(), 2u);
  EXPECT_NE(got.errors[0], "");
  EXPECT_NE(got.errors[1].find("cannot read list"), std::string::npos);
}

TEST(Inputs, UnreadableDirectoryIsAnErrorItem) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads every directory";
  TempDir d;
  fs::create_directories(d.path() / "locked");
  fs::permissions(d.path() / "locked", fs::perms::none);
  const auto got = expand({(d.path() / "locked").string()});
  ASSERT_EQ(got.names.size(), 1u);
  EXPECT_NE(got.errors[0].find("cannot read directory"), std::string::npos);
}

TEST(Inputs, SymlinkLoopsAreWalkedOnce) {
  TempDir d;
  fs::create_directories(d.path() / "dir");
  test::write_text(d.file("dir/a.png"), "x");
  fs::create_directory_symlink(d.path() / "dir", d.path() / "dir" / "loop");
  const auto got = expand({d.path().string()});
  EXPECT_EQ(got.names.size(), 1u);
}

TEST(Inputs, EmptyDirectoryGivesNothing) {
  TempDir d;
  EXPECT_TRUE(expand({d.path().string()}).names.empty());
}

}  // namespace
}  // namespace palette
