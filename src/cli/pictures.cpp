// --swatches and --contact-sheet (see pictures.hpp).

#include "pictures.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "commands.hpp"
#include "palette/image_io.hpp"

namespace palette::cli {

void Pictures::swatches_to(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw UsageError("--swatches: cannot make " + dir + ": " + ec.message());
  swatches_ = dir;
}

void Pictures::contact_sheet_to(const std::string& path) {
  const std::filesystem::path p(path);
  if (p.filename().empty() || p.extension() != ".png") {
    throw UsageError("--contact-sheet: '" + path + "' is not a .png file name");
  }
  std::error_code ec;
  const auto parent = p.parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    throw UsageError("--contact-sheet: no directory " + parent.string());
  }
  sheet_ = path;
}

std::string Pictures::sheet_path(const std::string& path, std::size_t page) {
  if (page == 0) return path;
  const std::filesystem::path p(path);
  return (p.parent_path() / (p.stem().string() + "-" + std::to_string(page + 1) + ".png")).string();
}

std::string Pictures::swatch_name(std::size_t number, const std::string& file) {
  std::string stem = std::filesystem::path(file).stem().string();
  for (char& c : stem) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  if (stem.size() > 80) stem.resize(80);
  char prefix[32];
  std::snprintf(prefix, sizeof prefix, "%06zu-", number);
  return prefix + stem + ".png";
}

void Pictures::add(std::size_t number, const Row& row) {
  if (!swatches_.empty() && row.ok()) {
    write_png_rgb((std::filesystem::path(swatches_) / swatch_name(number, row.file)).string(),
                  kSwatchWidth, kSwatchHeight,
                  swatch_strip(row.palette, kSwatchWidth, kSwatchHeight));
  }
  if (sheet_.empty()) return;
  // A row past this sheet's last cell: the sheet is done.
  while (number > (page_ + 1) * kCellsPerSheet) write_sheet();
  SheetCell cell;
  cell.number = number;
  cell.thumbnail = row.thumbnail;
  cell.palette = row.palette;
  cell.failed = !row.ok();
  cells_.push_back(std::move(cell));
  if (number == (page_ + 1) * kCellsPerSheet) write_sheet();  // its last cell: drawn at once
}

void Pictures::add_combined(const Row& row) {
  if (swatches_.empty()) return;
  write_png_rgb((std::filesystem::path(swatches_) / "combined.png").string(), kSwatchWidth,
                kSwatchHeight, swatch_strip(row.palette, kSwatchWidth, kSwatchHeight));
}

void Pictures::write_sheet() {
  if (!cells_.empty()) {
    // Cells in their places on the page, by number.
    std::vector<SheetCell> placed(cells_.size());
    std::size_t used = 0;
    for (auto& c : cells_) used = std::max(used, c.number - page_ * kCellsPerSheet);
    placed.resize(used);
    for (auto& c : cells_) placed[c.number - page_ * kCellsPerSheet - 1] = std::move(c);
    SheetLayout layout = layout_;  // a sheet of a few images is only as wide as they need
    layout.columns = static_cast<int>(std::min<std::size_t>(placed.size(), layout.columns));
    write_png_rgb(sheet_path(sheet_, page_), layout.sheet_width(),
                  layout.sheet_height(placed.size()), contact_sheet(placed, layout));
    spdlog::debug("{}: images {} to {}", sheet_path(sheet_, page_), page_ * kCellsPerSheet + 1,
                  page_ * kCellsPerSheet + placed.size());
  }
  cells_.clear();
  ++page_;
}

void Pictures::finish() {
  if (!sheet_.empty() && !cells_.empty()) write_sheet();
}

}  // namespace palette::cli
