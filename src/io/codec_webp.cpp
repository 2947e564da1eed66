// WebP through libwebp, scaled by the decoder's own rescaler straight to the wanted size.

#include <webp/decode.h>

#include <string>

#include "codecs.hpp"
#include "palette/error.hpp"

namespace palette::codec {
namespace {

std::string status_text(VP8StatusCode s) {
  switch (s) {
    case VP8_STATUS_NOT_ENOUGH_DATA:
      return "truncated WebP";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
      return "unsupported WebP feature (animated WebP?)";
    case VP8_STATUS_OUT_OF_MEMORY:
      return "out of memory decoding WebP";
    default:
      return "corrupt WebP";
  }
}

}  // namespace

cv::Mat decode_webp(std::span<const std::uint8_t> bytes, int size, std::uint64_t max_pixels) {
  WebPDecoderConfig config;
  if (!WebPInitDecoderConfig(&config)) throw Error("cannot initialise the WebP decoder");
  VP8StatusCode st = WebPGetFeatures(bytes.data(), bytes.size(), &config.input);
  if (st != VP8_STATUS_OK) throw Error(status_text(st));
  if (config.input.has_animation) throw Error("animated WebP is not supported");
  check_pixels(config.input.width, config.input.height, max_pixels);
  const bool alpha = config.input.has_alpha != 0;
  const cv::Size to = target_size(config.input.width, config.input.height, size);
  cv::Mat out(to, alpha ? CV_8UC4 : CV_8UC3);
  if (to.width != config.input.width || to.height != config.input.height) {
    config.options.use_scaling = 1;
    config.options.scaled_width = to.width;
    config.options.scaled_height = to.height;
  }
  config.output.colorspace = alpha ? MODE_RGBA : MODE_RGB;
  config.output.is_external_memory = 1;
  config.output.u.RGBA.rgba = out.data;
  config.output.u.RGBA.stride = static_cast<int>(out.step);
  config.output.u.RGBA.size = out.step * static_cast<std::size_t>(out.rows);
  st = WebPDecode(bytes.data(), bytes.size(), &config);
  WebPFreeDecBuffer(&config.output);
  if (st != VP8_STATUS_OK) throw Error(status_text(st));
  return out;
}

}  // namespace palette::codec
