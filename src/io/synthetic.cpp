// Photo-like synthetic images for benchmarks that run without an image folder.

#include <cstddef>
#include <cstdio>
// clang-format off
#include <jpeglib.h>
// clang-format on

#include <cmath>
#include <cstdlib>
#include <random>

#include "palette/image_io.hpp"

namespace palette {

std::vector<std::uint8_t> synthetic_jpeg(int width, int height, unsigned seed, int quality) {
  // A few smooth colour fields, a sharp-edged shape and sensor-like noise: the entropy of a
  // photo, so that decoding costs what a real one does.
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  double corner[4][3];
  for (auto& c : corner) {
    for (double& v : c) v = 20 + 215 * u(rng);
  }
  const double cx = u(rng), cy = u(rng), r = 0.1 + 0.25 * u(rng);
  const double shape[3] = {255 * u(rng), 255 * u(rng), 255 * u(rng)};
  std::vector<double> wave_x(static_cast<std::size_t>(width) * 3), wave_y(height);
  for (int x = 0; x < width; ++x) {
    for (int c = 0; c < 3; ++c) wave_x[x * 3 + c] = 12 * std::sin(40.0 * x / width + c);
  }
  for (int y = 0; y < height; ++y) wave_y[y] = std::cos(25.0 * y / height);
  std::uint32_t state = seed * 2654435761u + 1;  // xorshift noise: cheap, like sensor noise
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    const double fy = static_cast<double>(y) / height;
    for (int x = 0; x < width; ++x) {
      const double fx = static_cast<double>(x) / width;
      const double w[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
      const bool inside = (fx - cx) * (fx - cx) + (fy - cy) * (fy - cy) < r * r;
      for (int c = 0; c < 3; ++c) {
        double v = shape[c];
        if (!inside) {
          v = w[0] * corner[0][c] + w[1] * corner[1][c] + w[2] * corner[2][c] +
              w[3] * corner[3][c] + wave_x[x * 3 + c] * wave_y[y];
        }
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        v += static_cast<double>(state % 25) - 12.0;
        rgb[(static_cast<std::size_t>(y) * width + x) * 3 + c] =
            static_cast<std::uint8_t>(v < 0     ? 0
                                      : v > 255 ? 255
                                                : v);
      }
    }
  }
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buf, &size);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = &rgb[static_cast<std::size_t>(cinfo.next_scanline) * width * 3];
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::vector<std::uint8_t> out(buf, buf + size);
  jpeg_destroy_compress(&cinfo);
  std::free(buf);
  return out;
}

}  // namespace palette
