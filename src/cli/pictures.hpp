#pragma once
// extract's pictures of its palettes: --swatches DIR (a PNG strip per image) and
// --contact-sheet FILE.png (pages of thumbnails with their strips).

#include <cstddef>
#include <string>
#include <vector>

#include "palette/sheet.hpp"
#include "palette/writer.hpp"

namespace palette::cli {

class Pictures {
 public:
  static constexpr int kSwatchWidth = 400, kSwatchHeight = 48;
  static constexpr std::size_t kCellsPerSheet = 100;  ///< 10 rows of 10

  /// Strips go to `dir` (made if missing; UsageError if it cannot be).
  void swatches_to(const std::string& dir);
  /// Sheets go to `path`, then PATH-2.png, PATH-3.png, ... for every further 100 images.
  void contact_sheet_to(const std::string& path);
  bool active() const { return !swatches_.empty() || !sheet_.empty(); }

  /// Image `number` (1-based, its row's place in the whole output). Contact sheets need the
  /// numbers in increasing order, a sheet's all from one process; strips take any order (every
  /// MPI rank writes its own). Its strip is drawn at once, and its sheet once its last image, the
  /// 100th, is in (or a later sheet's first).
  void add(std::size_t number, const Row& row);
  /// The whole run's palette (--combined): its strip is combined.png.
  void add_combined(const Row& row);
  /// Writes the last, partial sheet.
  void finish();

  /// The file of sheet `page` (0-based) of `path`.
  static std::string sheet_path(const std::string& path, std::size_t page);
  /// The strip's file name for image `number` from `file`: NNNNNN-STEM.png.
  static std::string swatch_name(std::size_t number, const std::string& file);

 private:
  void write_sheet();

  std::string swatches_, sheet_;
  SheetLayout layout_;
  std::vector<SheetCell> cells_;
  std::size_t page_ = 0;
};

}  // namespace palette::cli
