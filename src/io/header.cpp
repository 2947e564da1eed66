// Image header sniffing: format from magic bytes, dimensions from the header, no decoding.
// This lets us refuse decompression bombs before any decoder allocates anything.

#include <cstring>

#include "codecs.hpp"
#include "palette/error.hpp"
#include "palette/image_io.hpp"

namespace palette {
namespace {

using namespace std::string_view_literals;

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> b) : b_(b) {}
  bool has(std::size_t off, std::size_t n) const {
    return off <= b_.size() && n <= b_.size() - off;
  }
  std::uint32_t u8(std::size_t o) const { return b_[o]; }
  std::uint32_t be16(std::size_t o) const { return (u8(o) << 8) | u8(o + 1); }
  std::uint32_t le16(std::size_t o) const { return u8(o) | (u8(o + 1) << 8); }
  std::uint32_t be32(std::size_t o) const { return (be16(o) << 16) | be16(o + 2); }
  std::uint32_t le32(std::size_t o) const { return le16(o) | (le16(o + 2) << 16); }
  std::uint32_t le24(std::size_t o) const { return u8(o) | (u8(o + 1) << 8) | (u8(o + 2) << 16); }
  bool starts(std::size_t o, std::string_view magic) const {
    return has(o, magic.size()) && std::memcmp(b_.data() + o, magic.data(), magic.size()) == 0;
  }
  std::size_t size() const { return b_.size(); }

 private:
  std::span<const std::uint8_t> b_;
};

[[noreturn]] void bad_header(ImageFormat f) {
  throw Error("truncated or corrupt " + std::string(to_string(f)) + " header");
}

void jpeg_size(const Reader& r, ImageInfo& info) {
  std::size_t o = 2;
  while (r.has(o, 4)) {
    if (r.u8(o) != 0xFF) bad_header(info.format);
    const std::uint32_t marker = r.u8(o + 1);
    if (marker == 0xFF) {  // fill byte
      ++o;
      continue;
    }
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      o += 2;
      continue;
    }
    if (marker == 0xD9 || marker == 0xDA) break;  // EOI or start of scan before any frame
    const std::uint32_t len = r.be16(o + 2);
    if (len < 2) bad_header(info.format);
    const bool sof =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (!r.has(o + 5, 4)) break;
      info.height = r.be16(o + 5);
      info.width = r.be16(o + 7);
      info.has_size = info.width > 0 && info.height > 0;
      if (!info.has_size) bad_header(info.format);
      return;
    }
    o += 2 + len;
  }
  bad_header(info.format);
}

void webp_size(const Reader& r, ImageInfo& info) {
  if (r.starts(12, "VP8 "sv)) {
    if (!r.has(26, 4)) bad_header(info.format);
    info.width = r.le16(26) & 0x3FFF;
    info.height = r.le16(28) & 0x3FFF;
  } else if (r.starts(12, "VP8L"sv)) {
    if (!r.has(21, 4)) bad_header(info.format);
    const std::uint32_t b = r.le32(21);
    info.width = 1 + (b & 0x3FFF);
    info.height = 1 + ((b >> 14) & 0x3FFF);
  } else if (r.starts(12, "VP8X"sv)) {
    if (!r.has(24, 6)) bad_header(info.format);
    info.width = 1 + static_cast<std::int64_t>(r.le24(24));
    info.height = 1 + static_cast<std::int64_t>(r.le24(27));
  } else {
    bad_header(info.format);
  }
  info.has_size = true;
}

void tiff_size(const Reader& r, ImageInfo& info) {
  const bool le = r.u8(0) == 'I';
  auto u16 = [&](std::size_t o) { return le ? r.le16(o) : r.be16(o); };
  auto u32 = [&](std::size_t o) { return le ? r.le32(o) : r.be32(o); };
  if (!r.has(4, 4)) bad_header(info.format);
  const std::size_t ifd = u32(4);
  if (!r.has(ifd, 2)) bad_header(info.format);
  const std::size_t entries = u16(ifd);
  bool width_seen = false, height_seen = false;
  for (std::size_t e = 0; e < entries; ++e) {
    const std::size_t o = ifd + 2 + e * 12;
    if (!r.has(o, 12)) bad_header(info.format);
    const std::uint32_t tag = u16(o), type = u16(o + 2);
    const std::int64_t value = type == 3 ? u16(o + 8) : u32(o + 8);  // SHORT or LONG
    // A tag given twice: libtiff keeps the first, and so do we (the decoder checks the
    // dimensions libtiff reads again in any case).
    if (tag == 256 && !width_seen) info.width = value;
    if (tag == 257 && !height_seen) info.height = value;
    width_seen |= tag == 256;
    height_seen |= tag == 257;
  }
  if (info.width <= 0 || info.height <= 0) bad_header(info.format);
  info.has_size = true;
}

void pnm_size(std::span<const std::uint8_t> bytes, ImageInfo& info) {
  // "P6 <ws/comments> width <ws> height ...", read by the decoder's own parser.
  std::size_t o = 2;
  std::int64_t values[2];
  try {
    codec::read_pnm_numbers(bytes, o, 2, values);
  } catch (const Error&) {
    bad_header(info.format);
  }
  info.width = values[0];
  info.height = values[1];
  info.has_size = true;
}

}  // namespace

std::string_view to_string(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return "JPEG";
    case ImageFormat::kPng:
      return "PNG";
    case ImageFormat::kWebp:
      return "WebP";
    case ImageFormat::kBmp:
      return "BMP";
    case ImageFormat::kTiff:
      return "TIFF";
    case ImageFormat::kGif:
      return "GIF";
    case ImageFormat::kPnm:
      return "PNM";
    case ImageFormat::kUnknown:
      break;
  }
  return "unknown";
}

ImageInfo sniff_image(std::span<const std::uint8_t> bytes) {
  const Reader r(bytes);
  ImageInfo info;
  if (r.has(0, 3) && r.u8(0) == 0xFF && r.u8(1) == 0xD8 && r.u8(2) == 0xFF) {
    info.format = ImageFormat::kJpeg;
    jpeg_size(r, info);
  } else if (r.starts(0, "\x89PNG\r\n\x1a\n"sv)) {
    info.format = ImageFormat::kPng;
    if (!r.has(16, 8) || !r.starts(12, "IHDR"sv)) bad_header(info.format);
    info.width = r.be32(16);
    info.height = r.be32(20);
    info.has_size = true;
  } else if (r.starts(0, "RIFF"sv) && r.starts(8, "WEBP"sv)) {
    info.format = ImageFormat::kWebp;
    webp_size(r, info);
  } else if (r.starts(0, "BM"sv)) {
    info.format = ImageFormat::kBmp;
    if (!r.has(14, 4)) bad_header(info.format);
    const std::uint32_t header = r.le32(14);
    if (header == 12) {
      if (!r.has(18, 4)) bad_header(info.format);
      info.width = r.le16(18);
      info.height = r.le16(20);
    } else {
      if (!r.has(18, 8)) bad_header(info.format);
      info.width = static_cast<std::int32_t>(r.le32(18));
      info.height = static_cast<std::int32_t>(r.le32(22));
      if (info.height < 0) info.height = -info.height;
    }
    if (info.width <= 0 || info.height <= 0) bad_header(info.format);
    info.has_size = true;
  } else if (r.starts(0, "II*\0"sv) || r.starts(0, "MM\0*"sv)) {
    info.format = ImageFormat::kTiff;
    tiff_size(r, info);
  } else if (r.starts(0, "GIF87a"sv) || r.starts(0, "GIF89a"sv)) {
    info.format = ImageFormat::kGif;
    if (!r.has(6, 4)) bad_header(info.format);
    info.width = r.le16(6);
    info.height = r.le16(8);
    info.has_size = true;
  } else if (r.has(0, 3) && r.u8(0) == 'P' && r.u8(1) >= '1' && r.u8(1) <= '6') {
    info.format = ImageFormat::kPnm;
    pnm_size(bytes, info);
  }
  return info;
}

}  // namespace palette
