#pragma once
// Palettes for design tools: a GIMP/Inkscape palette (GPL), an Adobe Swatch Exchange file (ASE)
// or CSS custom properties. One implementation for `palette export` (palettes read back from a
// results file) and `palette serve` (a request's rows).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "palette/writer.hpp"

namespace palette {

enum class ExportFormat : std::uint8_t { kGpl, kAse, kCss };

/// Parses "gpl", "ase" or "css".
std::optional<ExportFormat> parse_export_format(std::string_view name);
/// The name parse_export_format() takes, also the usual file extension.
std::string_view to_string(ExportFormat format);

/// One colour of an exported palette.
struct ExportSwatch {
  std::uint32_t rgb;  ///< 0xRRGGBB
  double share;       ///< 0..1
};

/// One image's palette: its file (as in the results' file column) and its colours in order.
struct ExportPalette {
  std::string file;
  std::vector<ExportSwatch> swatches;
};

/// A row's palette with its shares as a results file holds them (rounded to 1/10000), so that
/// exporting rows gives what exporting the CSV written from them gives. `row` must be ok().
ExportPalette export_palette(const Row& row);

/// The name `palette export` gives an export without --name: the file stem of the one palette,
/// or of `source` (the results file read) when there are several.
std::string default_export_name(const std::vector<ExportPalette>& palettes,
                                std::string_view source);

/// The palettes in `format`, as the bytes of a file (ASE is binary). `name` is GPL's "Name:"
/// and, with a single palette, the CSS property prefix (several: each file's stem). Names and
/// file texts are written on one line and, in CSS, cannot end the comment they are in.
std::string export_palettes(ExportFormat format, const std::vector<ExportPalette>& palettes,
                            const std::string& name);

}  // namespace palette
