#pragma once
// Format decoders behind decode_image. Each takes the encoded bytes and returns 8-bit RGB
// (CV_8UC3) or RGBA (CV_8UC4) pixels, grey expanded to RGB and deeper samples scaled to 8 bits,
// or throws palette::Error with a short reason. None of them writes to stderr.
//
// We call the format libraries directly rather than through OpenCV's imgcodecs: Debian's
// imgcodecs links GDAL and ~140 shared libraries (65 ms of start-up per process, and a closure
// too large to ship in the relocatable bundle), it cannot report a truncated JPEG, it cannot
// decode at reduced size beyond what libjpeg offers, and it prints library warnings on the
// user's terminal.

#include <cstdint>
#include <opencv2/core.hpp>
#include <span>

namespace palette::codec {

/// Every decoder refuses, before allocating anything for the pixels, an image whose own
/// dimensions (the ones it will decode, not a separate sniff) exceed `max_pixels`.
inline constexpr std::uint64_t kDefaultMaxPixels = 200'000'000;

/// Throws palette::Error ("image is WxH pixels, over the limit of N (--max-pixels)") when
/// width * height > max_pixels or either is not positive.
void check_pixels(std::int64_t width, std::int64_t height, std::uint64_t max_pixels);

/// Most scans a JPEG may have. Progressive files have about ten; each scan is a pass over every
/// block, so thousands of tiny ones would keep a decoder busy for minutes (libjpeg-turbo's own
/// fuzzers stop at 500 too).
inline constexpr int kMaxJpegScans = 500;

/// The JPEG DCT scale M/8 (M = 1..8) a JPEG of width x height is decoded at for long side
/// `size`: the smallest whose long side is at least `size`, except that 1/8 is taken over 2/8
/// when its long side comes nearer `size` as a ratio (ties: 1/8), so the result may be smaller
/// than `size` by up to a factor of sqrt(2): a 1920-px photo comes out 240 px long for 256.
/// That lets most photos take decode_jpeg_dc, with no shrink after it. Larger results are
/// shrunk further.
int pick_scale_num(int width, int height, int size);

/// `size`: long side wanted after shrinking; a JPEG is decoded at pick_scale_num()'s scale,
/// WebP with its built-in rescaler to at least `size`.
/// `fast_dc`: at 1/8 scale, use decode_jpeg_dc when it handles the file (false: always libjpeg;
/// tests compare the two).
cv::Mat decode_jpeg(std::span<const std::uint8_t> bytes, int size, bool fast_dc = true,
                    std::uint64_t max_pixels = kDefaultMaxPixels);
/// The image at exactly 1/8 scale from DC coefficients alone (codec_jpeg_dc.cpp), shrunk
/// further to long side `size` when that is smaller (0: not shrunk); an empty Mat for files it
/// leaves to libjpeg.
cv::Mat decode_jpeg_dc(std::span<const std::uint8_t> bytes, int size = 0,
                       std::uint64_t max_pixels = kDefaultMaxPixels);
/// PNG: decode_png_fast where it takes the file, else decode_png_libpng (codec_png.cpp).
cv::Mat decode_png(std::span<const std::uint8_t> bytes,
                   std::uint64_t max_pixels = kDefaultMaxPixels);
/// Our own PNG reader (chunks, libdeflate, unfiltering, conversion). An empty Mat for a file it
/// leaves to libpng: any CRC, stream or layout error, an unusual chunk, a size over the limits.
/// Where it decodes a file, libpng decodes it too, to the same pixels (fuzz_png checks).
cv::Mat decode_png_fast(std::span<const std::uint8_t> bytes,
                        std::uint64_t max_pixels = kDefaultMaxPixels);
/// PNG through libpng: every file, and the errors palette reports for bad ones.
cv::Mat decode_png_libpng(std::span<const std::uint8_t> bytes,
                          std::uint64_t max_pixels = kDefaultMaxPixels);
cv::Mat decode_webp(std::span<const std::uint8_t> bytes, int size,
                    std::uint64_t max_pixels = kDefaultMaxPixels);
cv::Mat decode_tiff(std::span<const std::uint8_t> bytes,
                    std::uint64_t max_pixels = kDefaultMaxPixels);
cv::Mat decode_bmp(std::span<const std::uint8_t> bytes,
                   std::uint64_t max_pixels = kDefaultMaxPixels);
cv::Mat decode_pnm(std::span<const std::uint8_t> bytes,
                   std::uint64_t max_pixels = kDefaultMaxPixels);

/// The numbers at the start of a PNM header ("P6 <ws/comments> width <ws> height <ws> maxval"):
/// reads `count` of them from offset `pos` (just after the magic) and leaves `pos` after the
/// last digit. Each must have 1 to 10 digits and be at most 2^31 - 1 (else "corrupt PNM
/// header"). The sniffer and the decoder share it, so they cannot disagree on a size.
void read_pnm_numbers(std::span<const std::uint8_t> bytes, std::size_t& pos, int count,
                      std::int64_t* values);

/// What decode_image does after decoding (decode.cpp): shrinks `img` (8-bit RGB or RGBA) to long
/// side `size` with INTER_AREA, colours weighted by alpha when alpha matters (a pixel's alpha
/// under 255 and alpha_threshold > 0), and drops an alpha channel that does not. Packed rows.
/// `opencv_resize`: shrink with cv::resize itself, as before resize_area (the same pixels;
/// benchmarks compare the two).
cv::Mat shrink_decoded(cv::Mat img, int size, int alpha_threshold, bool opencv_resize = false);

/// cv::resize(src, out, to, 0, 0, cv::INTER_AREA), bit for bit, several times faster where
/// OpenCV runs scalar code (area.cpp): shrinking 8-bit RGB or RGBA, or 16-bit 4-channel images,
/// by ratios that are not both integers, and 8-bit RGB or RGBA by integer ratios other than
/// 2:1 on both axes. Anything else is cv::resize's own.
cv::Mat resize_area(const cv::Mat& src, cv::Size to);
/// The 16-bit premultiplied image (r*a, g*a, b*a, a*255) of 8-bit RGBA `rgba` (CV_16UC4).
cv::Mat premultiply_alpha(const cv::Mat& rgba);
/// resize_area(premultiply_alpha(rgba), to), with the premultiplied pixels made on the way
/// instead of in a second, twice as large image.
cv::Mat resize_area_premultiplied(const cv::Mat& rgba, cv::Size to);

/// The size an image of width x height should be shrunk to: long side == size, aspect kept,
/// never enlarged.
cv::Size target_size(int width, int height, int size);

}  // namespace palette::codec
