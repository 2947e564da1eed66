#pragma once
// Reading and decoding images. The format libraries (libjpeg-turbo, libpng, libwebp, libtiff) and
// OpenCV (resizing) stay behind this header.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace palette {

enum class ImageFormat { kUnknown, kJpeg, kPng, kWebp, kBmp, kTiff, kGif, kPnm };

std::string_view to_string(ImageFormat format);

/// What the first bytes of a file say: its format and, when the header holds them, its size.
struct ImageInfo {
  ImageFormat format = ImageFormat::kUnknown;
  std::int64_t width = 0;
  std::int64_t height = 0;
  bool has_size = false;
};

/// Identifies the format from magic bytes and reads the dimensions from the header without
/// decoding anything. Throws palette::Error when a recognised header is cut short or invalid.
ImageInfo sniff_image(std::span<const std::uint8_t> bytes);

/// Decoding options.
struct DecodeOptions {
  int size = 256;                          ///< long side after shrinking (never enlarged)
  int alpha_threshold = 128;               ///< pixels with alpha below it are not counted
  std::uint64_t max_pixels = 200'000'000;  ///< refuse larger images before decoding
};

/// An image after decoding and shrinking: 8-bit RGB, or RGBA when it has an alpha channel that
/// matters (alpha_threshold > 0). Rows are packed (stride = width * channels).
struct DecodedImage {
  int width = 0, height = 0, channels = 3;
  std::vector<std::uint8_t> pixels;
  int source_width = 0, source_height = 0;  ///< dimensions before shrinking
  ImageFormat format = ImageFormat::kUnknown;
};

/// Decodes an encoded image held in memory (JPEG, PNG, WebP, TIFF, BMP, binary PNM) and shrinks
/// it so its long side is at most options.size (INTER_AREA; JPEGs are decoded at a reduced DCT
/// scale first when much larger). Pixels are taken as sRGB (no colour management). 16-bit
/// samples are scaled to 8 bits, grey expands to RGB. Throws palette::Error with a short reason
/// (truncated, corrupt, over the pixel limit, not an image). Thread-safe.
DecodedImage decode_image(std::span<const std::uint8_t> bytes, const DecodeOptions& options);

/// An allocator that leaves bytes uninitialised (a file is read over them anyway).
template <class T>
struct UninitializedAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <class U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

/// File contents.
using FileBytes = std::vector<std::uint8_t, UninitializedAllocator<std::uint8_t>>;

/// The largest file read for decoding: what the largest image allowed (max_pixels) could take
/// uncompressed at 16 bits x 4 samples, plus 16 MiB of metadata.
constexpr std::uint64_t max_file_bytes(std::uint64_t max_pixels) {
  return (max_pixels < (std::uint64_t{1} << 56) ? max_pixels * 8 : std::uint64_t{1} << 59) +
         (std::uint64_t{16} << 20);
}

/// How the error of read_file() starts where the file could not be opened (stat or open
/// failed): a distributed extract asks rank 0 whether it can open such a file (distribute.cpp),
/// and `palette merge` whether it can open those of a part's rows.
inline constexpr std::string_view kCannotOpen = "cannot open: ";

/// Whether this process can open `path` for reading now (without blocking, nor reading it).
bool can_open(const std::string& path);

/// Whether an error row's reason says its file could not be reached (not there, not a
/// directory on its path, not allowed, a stale handle): read_file()'s "cannot open: ...", or
/// the bare reason an input list gives a path it cannot stat (inputs.cpp).
bool unreachable_file_error(std::string_view error);

/// Reads a whole regular file of at most `max_bytes`. Anything else is refused without
/// reading, and without blocking: a FIFO, device or socket named like an image ("not a
/// regular file (FIFO)"), a directory, a file over the limit. Throws palette::Error ("cannot
/// open: ...", "empty file", ...).
FileBytes read_file(const std::string& path,
                    std::uint64_t max_bytes = max_file_bytes(DecodeOptions{}.max_pixels));

/// One-time process set-up for image decoding: silences OpenCV's own logging and keeps OpenCV
/// from starting threads of its own (we parallelise over images). Call before the first decode.
void init_image_io();

/// A photo-like JPEG (smooth colour fields, an edge, noise) of the given size, for benchmarks
/// without an image folder. Deterministic for a given seed.
std::vector<std::uint8_t> synthetic_jpeg(int width, int height, unsigned seed, int quality = 90);

/// Writes an 8-bit RGB image (rows packed) as a PNG file, whole or not at all (via a temporary
/// file beside it). Throws palette::Error.
void write_png_rgb(const std::string& path, int width, int height,
                   const std::vector<std::uint8_t>& rgb);

/// Versions of the image libraries, e.g. "OpenCV 4.6.0, libjpeg-turbo 2.1.5, ...".
std::string image_io_versions();

}  // namespace palette
