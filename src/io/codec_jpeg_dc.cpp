// A JPEG decoder for one job only: the image at 1/8 scale, where every output pixel is the mean
// of an 8x8 block, i.e. its DC coefficient. It Huffman-decodes DC values and skips AC codes
// without dequantising or transforming anything, skips the AC scans of progressive files
// entirely, and never holds more than one DC value per block. For the large photos palette
// mostly sees this is 2-8x faster than a general decoder asked for 1/8 scale.
//
// Scope: 8-bit Huffman-coded baseline/extended sequential and progressive JPEG, grey or YCbCr.
// Anything else (arithmetic coding, 12-bit, lossless, CMYK/RGB colour, quantisation tables
// redefined between scans) returns an empty Mat and the caller uses libjpeg. Colour conversion
// uses libjpeg's integer tables, so grey and 4:4:4 files give exactly libjpeg's 1/8 decode.
// Subsampled chroma is interpolated linearly between chroma block centres (libjpeg replicates
// it, or for 4:2:0 runs a 2x2 IDCT on it): as close to the true 8x8 means on smooth images.

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "codecs.hpp"
#include "palette/error.hpp"

namespace palette::codec {
namespace {

[[noreturn]] void truncated() { throw Error("truncated JPEG"); }
[[noreturn]] void corrupt(const char* why) { throw Error(std::string("corrupt JPEG: ") + why); }

// Canonical Huffman table with a 9-bit lookahead.
struct Huffman {
  static constexpr int kLookahead = 9;
  std::array<std::uint16_t, 1 << kLookahead> fast{};  // (length << 8) | symbol, 0: longer code
  std::array<std::int32_t, 18> maxcode{};             // largest code of each length, -1 none
  std::array<std::int32_t, 17> valptr{};              // index of the first symbol of a length
  std::array<std::int32_t, 17> mincode{};
  std::array<std::uint8_t, 256> values{};
  // For AC tables: the next kSkipBits bits -> what skipping one coefficient does when its code
  // is at most that long: (code + magnitude bits) << 8 | k-advance (run + 1, 16 for ZRL, 64 for
  // end of block); 0: a longer code, take the slow path.
  static constexpr int kSkipBits = 11;
  std::array<std::uint16_t, 1 << kSkipBits> skip{};
  // Two coefficients per lookup where both fit in the next kPairBits bits: bits of the first
  // (bits 0-4), of both (5-9), k-advance of the first (10-16) and of both (17-24); 0: none.
  // (The second may only be taken while the first leaves the block unfinished.)
  static constexpr int kPairBits = 12;
  std::array<std::uint32_t, 1 << kPairBits> pair{};
  bool defined = false;

  // Checks the table as a whole before anything is written: codes of each length must fit in
  // the code space left by the shorter ones (an over-subscribed table would index past the
  // lookup tables below), and there are at most 256 symbols.
  static bool valid(const std::uint8_t counts[16], int n) {
    if (n < 0 || n > 256) return false;
    std::int64_t code = 0;
    int total = 0;
    for (int len = 1; len <= 16; ++len) {
      code += counts[len - 1];
      total += counts[len - 1];
      if (code > (std::int64_t{1} << len)) return false;
      code <<= 1;
    }
    return total == n;
  }

  void build(const std::uint8_t counts[16], const std::uint8_t* symbols, int n) {
    if (!valid(counts, n)) corrupt("bad Huffman table");
    defined = false;
    std::copy(symbols, symbols + n, values.begin());
    fast.fill(0);
    int code = 0, k = 0;
    for (int len = 1; len <= 16; ++len) {
      valptr[len] = k;
      mincode[len] = code;
      for (int i = 0; i < counts[len - 1]; ++i, ++k, ++code) {
        if (len <= kLookahead) {
          const int shift = kLookahead - len;
          for (int f = code << shift; f < (code + 1) << shift; ++f) {
            fast[f] = static_cast<std::uint16_t>((len << 8) | symbols[k]);
          }
        }
      }
      maxcode[len] = counts[len - 1] ? code - 1 : -1;
      code <<= 1;
    }
    maxcode[17] = 0x7fffffff;
    skip.fill(0);
    code = 0;
    k = 0;
    for (int len = 1; len <= kSkipBits; ++len) {
      for (int i = 0; i < counts[len - 1]; ++i, ++k, ++code) {
        const int rs = symbols[k], r = rs >> 4, size = rs & 15;
        const int advance = size ? r + 1 : (r == 15 ? 16 : 64);
        const int shift = kSkipBits - len;
        for (int f = code << shift; f < (code + 1) << shift; ++f) {
          skip[f] = static_cast<std::uint16_t>(((len + size) << 8) | advance);
        }
      }
      code <<= 1;
    }
    for (int v = 0; v < (1 << kPairBits); ++v) {
      const std::uint16_t e1 = skip[v >> (kPairBits - kSkipBits)];
      const int bits1 = e1 >> 8, adv1 = e1 & 0xFF;
      if (!e1 || bits1 > kPairBits) {
        pair[v] = 0;
        continue;
      }
      int total = bits1, adv_total = adv1;
      const int rest = kPairBits - bits1;
      if (adv1 < 64 && rest > 0) {
        // The next symbol, from the bits after the first (padded with zeros to kSkipBits).
        const int after = (v << bits1) & ((1 << kPairBits) - 1);
        const std::uint16_t e2 = skip[after >> (kPairBits - kSkipBits)];
        if (e2 && (e2 >> 8) <= rest) {
          total += e2 >> 8;
          adv_total += e2 & 0xFF;
        }
      }
      pair[v] = static_cast<std::uint32_t>(bits1 | (total << 5) | (adv1 << 10) | (adv_total << 17));
    }
    defined = true;
  }
};

// Reads the entropy-coded bits of one scan. The data is first copied without its byte stuffing
// (FF00 -> FF) and split at restart markers, so that refilling the bit buffer needs no branch:
// load 8 bytes, keep what fits (F. Giesen, "Reading bits in far too many ways").
class BitReader {
 public:
  BitReader(const std::uint8_t* begin, const std::uint8_t* end) {
    thread_local std::vector<std::uint8_t> storage;
    auto& d = storage;
    d.clear();
    d.reserve(static_cast<std::size_t>(end - begin) + kPad);
    starts_.assign(1, 0);
    for (const std::uint8_t* p = begin; p < end;) {
      const auto* ff = static_cast<const std::uint8_t*>(std::memchr(p, 0xFF, end - p));
      if (!ff) {
        d.insert(d.end(), p, end);
        break;
      }
      d.insert(d.end(), p, ff);
      if (ff + 1 >= end) break;
      const std::uint8_t m = ff[1];
      if (m == 0x00) {
        d.push_back(0xFF);
        p = ff + 2;
      } else if (m >= 0xD0 && m <= 0xD7) {
        starts_.push_back(d.size());
        p = ff + 2;
      } else {
        p = ff + 1;  // fill byte
      }
    }
    starts_.push_back(d.size());
    d.resize(d.size() + kPad, 0);
    base_ = d.data();
    guard_ = base_ + (d.size() - kPad) + kPad / 2;
    p_ = base_;
    interval_end_ = starts_[1];
  }

  // At least 56 bits in the buffer afterwards.
  void refill() {
    std::uint64_t w;
    std::memcpy(&w, p_, 8);
    buf_ |= __builtin_bswap64(w) >> bits_;
    p_ += (63 - bits_) >> 3;
    bits_ |= 56;
  }
  std::uint32_t peek(int n) const { return static_cast<std::uint32_t>(buf_ >> (64 - n)); }
  void skip(int n) {
    buf_ <<= n;
    bits_ -= n;
  }
  std::uint32_t get(int n) {  // n <= 56 bits after a refill
    const std::uint32_t v = peek(n);
    skip(n);
    return v;
  }

  // One Huffman-coded symbol; needs a refill before (codes are at most 16 bits).
  int symbol(const Huffman& h) {
    const std::uint16_t f = h.fast[peek(Huffman::kLookahead)];
    if (f) {
      skip(f >> 8);
      return f & 0xFF;
    }
    const std::uint32_t bits16 = peek(16);
    for (int len = Huffman::kLookahead + 1; len <= 16; ++len) {
      const auto code = static_cast<std::int32_t>(bits16 >> (16 - len));
      if (code <= h.maxcode[len]) {
        skip(len);
        return h.values[h.valptr[len] + code - h.mincode[len]];
      }
    }
    corrupt("bad Huffman code");
  }

  // Skips the 63 AC coefficients of a sequential block, with the bit buffer in registers. A
  // fast-path step uses at most 11 + 15 bits, so one refill (>= 56 bits) serves two steps.
  void skip_ac(const Huffman& ac) {
    std::uint64_t buf = buf_;
    int bits = bits_;
    const std::uint8_t* p = p_;
    int k = 1;
    auto slow = [&] {
      buf_ = buf;
      bits_ = bits;
      p_ = p;
      refill();
      const int rs = symbol(ac);  // at most 16 + 15 bits, within the 56
      const int r = rs >> 4, size = rs & 15;
      if (size) {
        skip(size);
        k += r + 1;
      } else {
        k += r == 15 ? 16 : 64;
      }
      buf = buf_;
      bits = bits_;
      p = p_;
    };
    // One step: a pair of coefficients when both fit in 12 bits (and the block goes on after
    // the first), else one; at most 26 bits, so a refill (>= 56) serves two steps.
    auto step = [&]() -> bool {
      const std::uint32_t e = ac.pair[buf >> (64 - Huffman::kPairBits)];
      if (e) {
        const int adv1 = (e >> 10) & 127;
        const bool two = k + adv1 < 64;
        const int used = two ? (e >> 5) & 31 : e & 31;
        k += two ? (e >> 17) & 255 : adv1;
        buf <<= used;
        bits -= used;
        return true;
      }
      const std::uint16_t e1 = ac.skip[buf >> (64 - Huffman::kSkipBits)];
      if (!e1) return false;
      buf <<= e1 >> 8;
      bits -= e1 >> 8;
      k += e1 & 0xFF;
      return true;
    };
    while (k < 64) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      buf |= __builtin_bswap64(w) >> bits;
      p += (63 - bits) >> 3;
      bits |= 56;
      if (!step()) {
        slow();
        continue;
      }
      if (k >= 64) break;
      if (!step()) slow();
    }
    buf_ = buf;
    bits_ = bits;
    p_ = p;
    if (p_ > guard_) truncated();  // a damaged stream running far past its data
  }

  // Whether reading has gone so far past the data that the next refills could leave the zero
  // padding. Checked after every block or MCU: a block reads at most ~250 bytes (64 codes of
  // at most 31 bits), well inside the half of the padding beyond the guard.
  bool past_guard() const { return p_ > guard_; }

  // Whether the current interval used more bits than it holds.
  bool overrun() const {
    const auto consumed =
        static_cast<std::size_t>(p_ - base_) * 8 - static_cast<std::size_t>(bits_);
    return consumed > interval_end_ * 8;
  }
  // Moves to the next restart interval.
  void restart() {
    if (overrun()) truncated();
    if (interval_ + 2 >= starts_.size()) corrupt("restart marker missing");
    ++interval_;
    p_ = base_ + starts_[interval_];
    interval_end_ = starts_[interval_ + 1];
    buf_ = 0;
    bits_ = 0;
  }

 private:
  static constexpr std::size_t kPad = 1024;  // zeros after the data: refills never read beyond
  std::vector<std::size_t> starts_;          // offset of each interval, then the end
  const std::uint8_t* base_ = nullptr;
  const std::uint8_t* p_ = nullptr;
  const std::uint8_t* guard_ = nullptr;
  std::size_t interval_ = 0, interval_end_ = 0;
  std::uint64_t buf_ = 0;
  int bits_ = 0;
};

// JPEG's EXTEND: an s-bit magnitude category to its signed value.
int extend(std::uint32_t v, int s) {
  return v < (1u << (s - 1)) ? static_cast<int>(v) - (1 << s) + 1 : static_cast<int>(v);
}

// DC prediction plus a difference, wrapping like the unsigned arithmetic it is (a damaged or
// hostile file may add 2^16 per block for millions of blocks; signed overflow would be UB).
inline int add_dc(int pred, int diff) {
  return static_cast<int>(static_cast<std::uint32_t>(pred) + static_cast<std::uint32_t>(diff));
}

struct Component {
  int id = 0, h = 1, v = 1, tq = 0;
  int blocks_w = 0, blocks_h = 0;  // blocks that hold image data
  int plane_w = 0, plane_h = 0;    // blocks in the plane (padded to whole MCUs)
  std::vector<std::int32_t> dc;    // DC coefficient per block
  bool seen = false;
  int pred = 0;
};

struct Frame {
  int width = 0, height = 0, max_h = 1, max_v = 1, mcus_x = 0, mcus_y = 0;
  bool progressive = false;
  std::vector<Component> comps;
};

struct Scan {
  int ns = 0;
  int comp[4] = {}, td[4] = {}, ta[4] = {};
  int ss = 0, se = 0, ah = 0, al = 0;
};

// Decodes one block of a sequential scan: the DC difference, then skips the AC codes.
inline void sequential_block(BitReader& br, const Huffman& dc, const Huffman& ac, Component& c,
                             std::int32_t* out) {
  br.refill();
  const int s = br.symbol(dc);
  if (s > 16) corrupt("bad DC magnitude");
  if (s) c.pred = add_dc(c.pred, extend(br.get(s), s));
  *out = c.pred;
  br.skip_ac(ac);
}

void decode_scan(const std::uint8_t* begin, const std::uint8_t* end, Frame& f, const Scan& sc,
                 const Huffman* dc_tables, const Huffman* ac_tables, int restart_interval) {
  BitReader br(begin, end);
  Component* comps[4];
  for (int i = 0; i < sc.ns; ++i) {
    comps[i] = &f.comps[sc.comp[i]];
    comps[i]->pred = 0;
    comps[i]->seen = true;
    if (sc.ah == 0 && !dc_tables[sc.td[i]].defined) corrupt("missing DC Huffman table");
    if (!f.progressive && !ac_tables[sc.ta[i]].defined) corrupt("missing AC Huffman table");
  }
  const bool single = sc.ns == 1;
  const int units_x = single ? comps[0]->blocks_w : f.mcus_x;
  const int units_y = single ? comps[0]->blocks_h : f.mcus_y;
  int until_restart = restart_interval;

  auto block = [&](int i, std::int32_t* dst) {
    Component& c = *comps[i];
    if (!f.progressive) {
      sequential_block(br, dc_tables[sc.td[i]], ac_tables[sc.ta[i]], c, dst);
    } else if (sc.ah == 0) {
      br.refill();
      const int s = br.symbol(dc_tables[sc.td[i]]);
      if (s > 16) corrupt("bad DC magnitude");
      if (s) c.pred = add_dc(c.pred, extend(br.get(s), s));
      *dst = static_cast<std::int32_t>(static_cast<std::uint32_t>(c.pred) << sc.al);
    } else {
      br.refill();
      if (br.get(1)) *dst |= 1 << sc.al;
    }
  };

  for (int uy = 0; uy < units_y; ++uy) {
    for (int ux = 0; ux < units_x; ++ux) {
      // A scan whose data ends early (progressive DC scans read a few bits per block, so a
      // cut one would otherwise walk off the padding over a large image).
      if (br.past_guard()) truncated();
      if (restart_interval) {
        if (until_restart == 0) {
          br.restart();
          for (int i = 0; i < sc.ns; ++i) comps[i]->pred = 0;
          until_restart = restart_interval;
        }
        --until_restart;
      }
      if (single) {
        Component& c = *comps[0];
        block(0, &c.dc[static_cast<std::size_t>(uy) * c.plane_w + ux]);
      } else {
        for (int i = 0; i < sc.ns; ++i) {
          Component& c = *comps[i];
          for (int v = 0; v < c.v; ++v) {
            std::int32_t* row =
                &c.dc[static_cast<std::size_t>(uy * c.v + v) * c.plane_w + ux * c.h];
            for (int h = 0; h < c.h; ++h) block(i, row + h);
          }
        }
      }
    }
  }
  if (br.overrun()) truncated();
}

// libjpeg's YCbCr -> RGB tables (jdcolor.c), so colours match its output to the bit.
struct YccTables {
  std::array<int, 256> cr_r, cb_b;
  std::array<std::int32_t, 256> cr_g, cb_g;
  YccTables() {
    constexpr int kBits = 16;
    auto fix = [](double x) { return static_cast<std::int32_t>(x * (1 << kBits) + 0.5); };
    for (int i = 0; i < 256; ++i) {
      const std::int32_t x = i - 128;
      cr_r[i] = (fix(1.40200) * x + (1 << (kBits - 1))) >> kBits;
      cb_b[i] = (fix(1.77200) * x + (1 << (kBits - 1))) >> kBits;
      cr_g[i] = -fix(0.71414) * x;
      cb_g[i] = -fix(0.34414) * x + (1 << (kBits - 1));
    }
  }
};

std::uint8_t clamp8(int v) { return static_cast<std::uint8_t>(std::clamp(v, 0, 255)); }

// For each output position along one axis (n luma blocks), the two chroma blocks around it and
// the weight of the second in units of 1/(2r), r = luma blocks per chroma block. Position x has
// its centre at chroma coordinate (2x + 1 - r) / 2r (in chroma blocks, centre-aligned).
struct Taps {
  std::vector<int> i0, i1, w;
};
Taps linear_taps(int n, int r, int chroma_blocks) {
  Taps t;
  for (int x = 0; x < n; ++x) {
    const int num = 2 * x + 1 - r;  // chroma coordinate * 2r
    int i0 = num >= 0 ? num / (2 * r) : -1;
    int w = num - i0 * 2 * r;  // 0 .. 2r-1
    int i1 = i0 + 1;
    if (i0 < 0) i0 = 0;
    if (i1 > chroma_blocks - 1) i1 = chroma_blocks - 1;
    if (i0 > chroma_blocks - 1) i0 = chroma_blocks - 1;
    t.i0.push_back(i0);
    t.i1.push_back(i1);
    t.w.push_back(w);
  }
  return t;
}

// A chroma plane resampled to one value per luma block (out_w x out_h).
std::vector<std::uint8_t> chroma_at_luma_blocks(const Component& c,
                                                const std::vector<std::uint8_t>& plane,
                                                const Frame& f, int out_w, int out_h) {
  const int rh = f.max_h / c.h, rv = f.max_v / c.v;
  std::vector<std::uint8_t> out(static_cast<std::size_t>(out_w) * out_h);
  if (rh == 1 && rv == 1) {
    for (int y = 0; y < out_h; ++y) {
      std::copy_n(&plane[static_cast<std::size_t>(y) * c.plane_w], out_w,
                  &out[static_cast<std::size_t>(y) * out_w]);
    }
    return out;
  }
  const Taps tx = linear_taps(out_w, rh, c.blocks_w), ty = linear_taps(out_h, rv, c.blocks_h);
  const int den = 4 * rh * rv;  // a power of two: ratios are 1, 2 or 4
  const int shift = std::countr_zero(static_cast<unsigned>(den));
  for (int y = 0; y < out_h; ++y) {
    const std::uint8_t* r0 = &plane[static_cast<std::size_t>(ty.i0[y]) * c.plane_w];
    const std::uint8_t* r1 = &plane[static_cast<std::size_t>(ty.i1[y]) * c.plane_w];
    const int wy1 = ty.w[y], wy0 = 2 * rv - wy1;
    std::uint8_t* o = &out[static_cast<std::size_t>(y) * out_w];
    for (int x = 0; x < out_w; ++x) {
      const int wx1 = tx.w[x], wx0 = 2 * rh - wx1;
      const int top = r0[tx.i0[x]] * wx0 + r0[tx.i1[x]] * wx1;
      const int bottom = r1[tx.i0[x]] * wx0 + r1[tx.i1[x]] * wx1;
      o[x] = static_cast<std::uint8_t>((top * wy0 + bottom * wy1 + den / 2) >> shift);
    }
  }
  return out;
}

}  // namespace

cv::Mat decode_jpeg_dc(std::span<const std::uint8_t> b, int size, std::uint64_t max_pixels) {
  const std::size_t n = b.size();
  if (n < 4 || b[0] != 0xFF || b[1] != 0xD8) corrupt("not a JPEG");
  Frame f;
  std::array<std::array<std::uint16_t, 64>, 4> quant{};
  std::array<bool, 4> quant_defined{};
  Huffman dc_tables[4], ac_tables[4];
  int restart_interval = 0;
  bool jfif = false, adobe = false, scanned = false, ended = false;
  int scans = 0;
  int adobe_transform = -1;

  std::size_t o = 2;
  while (o < n) {
    if (b[o] != 0xFF) corrupt("marker expected");
    while (o + 1 < n && b[o + 1] == 0xFF) ++o;  // fill bytes
    if (o + 1 >= n) truncated();
    const std::uint8_t m = b[o + 1];
    if (m == 0xD9) {
      ended = true;
      break;
    }
    if (m >= 0xD0 && m <= 0xD7) {  // stray restart marker between scans
      o += 2;
      continue;
    }
    if (o + 4 > n) truncated();
    const std::size_t len = (static_cast<std::size_t>(b[o + 2]) << 8) | b[o + 3];
    if (len < 2) corrupt("bad segment length");
    if (o + 2 + len > n) truncated();
    const std::uint8_t* seg = b.data() + o + 4;
    const std::size_t seg_len = len - 2;
    std::size_t next = o + 2 + len;

    if (m == 0xC0 || m == 0xC1 || m == 0xC2) {
      if (!f.comps.empty()) corrupt("two frames");
      if (seg_len < 6 || seg[0] != 8) return {};  // 12-bit: libjpeg's job
      f.progressive = m == 0xC2;
      f.height = (seg[1] << 8) | seg[2];
      f.width = (seg[3] << 8) | seg[4];
      const int nf = seg[5];
      if (f.width == 0 || f.height == 0) return {};  // height from DNL: rare, leave to libjpeg
      check_pixels(f.width, f.height, max_pixels);
      if ((nf != 1 && nf != 3) || seg_len < 6 + 3u * nf) return {};
      for (int c = 0; c < nf; ++c) {
        Component comp;
        comp.id = seg[6 + 3 * c];
        comp.h = seg[7 + 3 * c] >> 4;
        comp.v = seg[7 + 3 * c] & 15;
        comp.tq = seg[8 + 3 * c];
        if (comp.h < 1 || comp.h > 4 || comp.v < 1 || comp.v > 4 || comp.tq > 3) {
          corrupt("bad frame header");
        }
        f.max_h = std::max(f.max_h, comp.h);
        f.max_v = std::max(f.max_v, comp.v);
        f.comps.push_back(comp);
      }
      // Both output paths index every plane on the luma grid (one value per luma block):
      // luma sampled more coarsely than a chroma component in either direction is rare and
      // libjpeg's job (its plane would be read past its rows).
      if (f.comps[0].h != f.max_h || f.comps[0].v != f.max_v) return {};
      f.mcus_x = (f.width + 8 * f.max_h - 1) / (8 * f.max_h);
      f.mcus_y = (f.height + 8 * f.max_v - 1) / (8 * f.max_v);
      for (auto& c : f.comps) {
        // Fractional or 3x sampling: libjpeg's job (ratios here are 1, 2 or 4).
        if (f.max_h % c.h || f.max_v % c.v || f.max_h / c.h == 3 || f.max_v / c.v == 3) return {};
        const int cw = (f.width * c.h + f.max_h - 1) / f.max_h;
        const int ch = (f.height * c.v + f.max_v - 1) / f.max_v;
        c.blocks_w = (cw + 7) / 8;
        c.blocks_h = (ch + 7) / 8;
        c.plane_w = f.mcus_x * c.h;
        c.plane_h = f.mcus_y * c.v;
        // At least one bit per block (its DC code): more blocks than the file has bits is a
        // cut file, refused before its planes are allocated.
        if (static_cast<std::uint64_t>(c.blocks_w) * c.blocks_h > 8 * n) truncated();
        c.dc.assign(static_cast<std::size_t>(c.plane_w) * c.plane_h, 0);
      }
    } else if ((m >= 0xC3 && m <= 0xCF) && m != 0xC4 && m != 0xC8 && m != 0xCC) {
      return {};             // lossless, hierarchical or arithmetic coding
    } else if (m == 0xC4) {  // DHT
      std::size_t p = 0;
      while (p < seg_len) {
        if (p + 17 > seg_len) corrupt("bad Huffman table");
        const int tc = seg[p] >> 4, th = seg[p] & 15;
        if (tc > 1 || th > 3) corrupt("bad Huffman table");
        int total = 0;
        for (int i = 0; i < 16; ++i) total += seg[p + 1 + i];
        if (total > 256 || p + 17 + total > seg_len) corrupt("bad Huffman table");
        (tc ? ac_tables : dc_tables)[th].build(&seg[p + 1], &seg[p + 17], total);
        p += 17 + total;
      }
    } else if (m == 0xDB) {    // DQT
      if (scanned) return {};  // tables changed between scans: libjpeg latches them per scan
      std::size_t p = 0;
      while (p < seg_len) {
        const int pq = seg[p] >> 4, tq = seg[p] & 15;
        if (tq > 3 || pq > 1 || p + 1 + 64 * (pq + 1) > seg_len) corrupt("bad quantisation table");
        for (int i = 0; i < 64; ++i) {
          quant[tq][i] =
              pq ? static_cast<std::uint16_t>((seg[p + 1 + 2 * i] << 8) | seg[p + 2 + 2 * i])
                 : seg[p + 1 + i];
        }
        quant_defined[tq] = true;
        p += 1 + 64 * (pq + 1);
      }
    } else if (m == 0xDD) {  // DRI
      if (seg_len < 2) corrupt("bad restart interval");
      restart_interval = (seg[0] << 8) | seg[1];
    } else if (m == 0xE0) {
      jfif |= seg_len >= 5 && std::memcmp(seg, "JFIF\0", 5) == 0;
    } else if (m == 0xEE) {
      if (seg_len >= 12 && std::memcmp(seg, "Adobe", 5) == 0) {
        adobe = true;
        adobe_transform = seg[11];
      }
    } else if (m == 0xDA) {  // SOS
      if (f.comps.empty()) corrupt("scan before frame");
      if (seg_len < 1) corrupt("bad scan header");
      Scan sc;
      sc.ns = seg[0];
      if (sc.ns < 1 || sc.ns > 4 || seg_len < 4 + 2u * sc.ns) corrupt("bad scan header");
      for (int i = 0; i < sc.ns; ++i) {
        const int id = seg[1 + 2 * i];
        int idx = -1;
        for (std::size_t c = 0; c < f.comps.size(); ++c) {
          if (f.comps[c].id == id) idx = static_cast<int>(c);
        }
        if (idx < 0) corrupt("scan names an unknown component");
        sc.comp[i] = idx;
        sc.td[i] = seg[2 + 2 * i] >> 4;
        sc.ta[i] = seg[2 + 2 * i] & 15;
        if (sc.td[i] > 3 || sc.ta[i] > 3) corrupt("bad scan header");
      }
      sc.ss = seg[1 + 2 * sc.ns];
      sc.se = seg[2 + 2 * sc.ns];
      sc.ah = seg[3 + 2 * sc.ns] >> 4;
      sc.al = seg[3 + 2 * sc.ns] & 15;
      // Entropy-coded data: up to the next marker that is not stuffing or a restart.
      std::size_t e = next;
      for (;;) {
        if (e >= n) truncated();
        const void* ff = std::memchr(&b[e], 0xFF, n - e);
        if (!ff) truncated();
        e = static_cast<std::size_t>(static_cast<const std::uint8_t*>(ff) - b.data());
        if (e + 1 >= n) truncated();
        const std::uint8_t mm = b[e + 1];
        if (mm == 0x00 || (mm >= 0xD0 && mm <= 0xD7)) {
          e += 2;
        } else if (mm == 0xFF) {
          ++e;
        } else {
          break;
        }
      }
      if (!f.progressive || sc.ss == 0) {
        if (f.progressive && (sc.se != 0 || sc.ah > 13 || sc.al > 13)) corrupt("bad DC scan");
        for (int i = 0; i < sc.ns; ++i) {
          // A first DC scan per component, refinements only after it.
          if (f.comps[sc.comp[i]].seen != (f.progressive && sc.ah > 0)) corrupt("bad scan order");
        }
        if (sc.ns > 1) {
          int blocks = 0;
          for (int i = 0; i < sc.ns; ++i) blocks += f.comps[sc.comp[i]].h * f.comps[sc.comp[i]].v;
          if (blocks > 10) corrupt("too many blocks per MCU");
        }
        decode_scan(&b[next], &b[e], f, sc, dc_tables, ac_tables, restart_interval);
      }
      scanned = true;
      if (++scans > kMaxJpegScans) corrupt("too many scans");
      next = e;
    }
    o = next;
  }
  if (!ended) truncated();
  if (f.comps.empty()) corrupt("no frame");
  for (const auto& c : f.comps) {
    if (!c.seen) corrupt("a component has no data");
    if (!quant_defined[c.tq]) corrupt("missing quantisation table");
  }
  const bool ycc =
      f.comps.size() == 3 &&
      (jfif || (adobe ? adobe_transform != 0
                      : !(f.comps[0].id == 'R' && f.comps[1].id == 'G' && f.comps[2].id == 'B')));
  if (f.comps.size() == 3 && !ycc) return {};  // RGB-coded JPEG: libjpeg's job

  // Block means: (DC * Q0) / 8 + 128, rounded as libjpeg's 1x1 inverse DCT does.
  const int out_w = (f.width + 7) / 8, out_h = (f.height + 7) / 8;
  std::vector<std::vector<std::uint8_t>> planes;
  for (auto& c : f.comps) {
    std::vector<std::uint8_t> p(c.dc.size());
    const int q = quant[c.tq][0];
    for (std::size_t i = 0; i < p.size(); ++i) {
      // 64 bits: a wrapped DC times a 16-bit quantiser does not fit in an int.
      const std::int64_t mean = ((std::int64_t{c.dc[i]} * q + 4) >> 3) + 128;
      p[i] = static_cast<std::uint8_t>(std::clamp<std::int64_t>(mean, 0, 255));
    }
    planes.push_back(std::move(p));
  }
  // Shrinking on the way: each plane is area-averaged to the wanted size on its own (chroma
  // straight from its own, coarser grid) and only the small result is converted to RGB. The
  // conversion is affine up to clamping, so this is what shrinking the RGB image would give,
  // for a tenth of the work, and chroma needs no upsampling at all.
  const cv::Size want = size > 0 ? target_size(out_w, out_h, size) : cv::Size(out_w, out_h);
  if (want != cv::Size(out_w, out_h)) {
    auto shrink = [&](std::size_t c, int w, int h) {
      const cv::Mat plane(h, w, CV_8U, planes[c].data(),
                          static_cast<std::size_t>(f.comps[c].plane_w) * 1);
      cv::Mat small;
      cv::resize(plane, small, want, 0, 0, cv::INTER_AREA);
      return small;
    };
    const cv::Mat y = shrink(0, out_w, out_h);
    cv::Mat out(want, CV_8UC3);
    if (f.comps.size() == 1) {
      cv::cvtColor(y, out, cv::COLOR_GRAY2RGB);
      return out;
    }
    auto chroma = [&](std::size_t c) {
      const int rh = f.max_h / f.comps[c].h, rv = f.max_v / f.comps[c].v;
      return shrink(c, (out_w + rh - 1) / rh, (out_h + rv - 1) / rv);
    };
    const cv::Mat cb = chroma(1), cr = chroma(2);
    static const YccTables t;
    for (int r = 0; r < want.height; ++r) {
      const std::uint8_t* py = y.ptr<std::uint8_t>(r);
      const std::uint8_t* pb = cb.ptr<std::uint8_t>(r);
      const std::uint8_t* pr = cr.ptr<std::uint8_t>(r);
      std::uint8_t* d = out.ptr<std::uint8_t>(r);
      for (int x = 0; x < want.width; ++x, d += 3) {
        const int Y = py[x], Cb = pb[x], Cr = pr[x];
        d[0] = clamp8(Y + t.cr_r[Cr]);
        d[1] = clamp8(Y + ((t.cb_g[Cb] + t.cr_g[Cr]) >> 16));
        d[2] = clamp8(Y + t.cb_b[Cb]);
      }
    }
    return out;
  }

  cv::Mat out(out_h, out_w, CV_8UC3);
  if (f.comps.size() == 1) {
    const auto& c = f.comps[0];
    for (int y = 0; y < out_h; ++y) {
      const std::uint8_t* row = &planes[0][static_cast<std::size_t>(y) * c.plane_w];
      std::uint8_t* d = out.ptr<std::uint8_t>(y);
      for (int x = 0; x < out_w; ++x, d += 3) d[0] = d[1] = d[2] = row[x];
    }
    return out;
  }
  static const YccTables t;
  const auto& cy = f.comps[0];
  // Chroma block means sit at the centres of blocks covering r luma blocks; each output pixel
  // (a luma block) takes chroma interpolated linearly between the nearest centres, which is
  // what its own 8x8 mean is when chroma varies smoothly.
  const std::vector<std::uint8_t> cb =
      chroma_at_luma_blocks(f.comps[1], planes[1], f, out_w, out_h);
  const std::vector<std::uint8_t> cr =
      chroma_at_luma_blocks(f.comps[2], planes[2], f, out_w, out_h);
  for (int y = 0; y < out_h; ++y) {
    const std::uint8_t* py = &planes[0][static_cast<std::size_t>(y) * cy.plane_w];
    const std::uint8_t* pb = &cb[static_cast<std::size_t>(y) * out_w];
    const std::uint8_t* pr = &cr[static_cast<std::size_t>(y) * out_w];
    std::uint8_t* d = out.ptr<std::uint8_t>(y);
    for (int x = 0; x < out_w; ++x, d += 3) {
      const int Y = py[x], Cb = pb[x], Cr = pr[x];
      d[0] = clamp8(Y + t.cr_r[Cr]);
      d[1] = clamp8(Y + ((t.cb_g[Cb] + t.cr_g[Cr]) >> 16));
      d[2] = clamp8(Y + t.cb_b[Cb]);
    }
  }
  return out;
}

}  // namespace palette::codec
