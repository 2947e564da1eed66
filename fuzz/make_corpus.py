#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into fuzz/corpus/<target>/ (committed; run again only to
change them). Deterministic: the same files every time.

PNG, TIFF, BMP and PNM are written here with the standard library alone. JPEG and WebP come from
the reference encoders, cjpeg (Debian: libjpeg-turbo-progs) and cwebp (Debian: webp); tiffcp
(libtiff-tools) adds LZW TIFFs when present. Seeds are small (a few KB): libFuzzer mutates them,
and a small input runs many times a second.

    fuzz/make_corpus.py            # rewrites fuzz/corpus/* (except server/, written by hand)
"""

import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
TARGETS = ["jpeg_dc", "jpeg", "png", "webp", "tiff", "bmp", "pnm", "sniff", "decode"]


# ---------------------------------------------------------------------------------------------
# Test pictures: smooth fields, an edge and a little texture, so encoders produce every kind of
# coefficient and the decoders' colour paths all see work. Pixels are (r, g, b, a) tuples.


def picture(width, height, alpha=False):
    rows = []
    for y in range(height):
        row = []
        for x in range(width):
            r = (x * 255) // max(1, width - 1)
            g = (y * 255) // max(1, height - 1)
            b = 200 if (x // 8 + y // 8) % 2 else 40
            if x > width * 2 // 3:  # a flat block with an edge
                r, g, b = 230, 180, 20
            b = (b + int(20 * math.sin(x * 0.7) * math.cos(y * 0.5))) % 256
            a = 255
            if alpha:
                a = 0 if x < width // 4 else (x * 255) // max(1, width - 1)
            row.append((r, g, b, a))
        rows.append(row)
    return rows


def grey(px):
    r, g, b, _ = px
    return (r * 77 + g * 150 + b * 29) >> 8


# ---------------------------------------------------------------------------------------------
# PNG


def png_chunk(kind, data):
    c = kind + data
    return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def png_filter(rows, bpp):
    """Filters packed scanlines, cycling through all five filter types."""
    out = bytearray()
    prev = bytes(len(rows[0])) if rows else b""
    for i, line in enumerate(rows):
        ft = i % 5
        out.append(ft)
        for j, v in enumerate(line):
            a = line[j - bpp] if j >= bpp else 0
            b = prev[j]
            c = prev[j - bpp] if j >= bpp else 0
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][ft]
            out.append((v - pred) & 0xFF)
        prev = line
    return bytes(out)


def png_samples(px, color_type, depth, palette_index=None):
    """The samples of one pixel at the given depth (8 or 16)."""
    r, g, b, a = px
    if color_type == 0:
        vals = [grey(px)]
    elif color_type == 2:
        vals = [r, g, b]
    elif color_type == 4:
        vals = [grey(px), a]
    elif color_type == 6:
        vals = [r, g, b, a]
    else:
        return bytes([palette_index])
    if depth == 16:
        return b"".join(struct.pack(">H", v * 257) for v in vals)
    return bytes(vals)


def png_rows(img, color_type, depth, pal=None):
    rows = []
    for row in img:
        if depth < 8:  # grey or palette, packed
            line, acc, nbits = bytearray(), 0, 0
            for px in row:
                v = pal[px] if pal else grey(px) >> (8 - depth)
                acc, nbits = (acc << depth) | v, nbits + depth
                if nbits == 8:
                    line.append(acc)
                    acc, nbits = 0, 0
            if nbits:
                line.append(acc << (8 - nbits))
            rows.append(bytes(line))
        else:
            rows.append(b"".join(png_samples(px, color_type, depth, pal[px] if pal else None)
                                 for px in row))
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png(img, color_type, depth=8, interlace=False, palette=None, extra=b""):
    h, w = len(img), len(img[0])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    bpp = max(1, channels * depth // 8)
    pal = None
    chunks = [png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0,
                                             1 if interlace else 0))]
    if color_type == 3:
        colours = sorted({px for row in img for px in row})[: 1 << depth]
        pal = {px: min(i, len(colours) - 1) for i, px in enumerate(colours)}
        for px in {px for row in img for px in row}:
            if px not in pal:  # more colours than entries: nearest by red
                pal[px] = min(range(len(colours)), key=lambda i: abs(colours[i][0] - px[0]))
        chunks.append(png_chunk(b"PLTE", b"".join(bytes(c[:3]) for c in colours)))
        chunks.append(png_chunk(b"tRNS", bytes(c[3] for c in colours)))
    chunks.append(extra)
    if interlace:
        data = b""
        for x0, y0, dx, dy in ADAM7:
            sub = [row[x0::dx] for row in img[y0::dy]]
            sub = [r for r in sub if r]
            if sub:
                data += png_filter(png_rows(sub, color_type, depth, pal), bpp)
    else:
        data = png_filter(png_rows(img, color_type, depth, pal), bpp)
    chunks.append(png_chunk(b"IDAT", zlib.compress(data, 9)))
    chunks.append(png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def quantise(img, levels):
    step = 256 // levels
    return [[tuple((c // step) * step for c in px[:3]) + (px[3],) for px in row] for row in img]


# ---------------------------------------------------------------------------------------------
# PNM


def pnm(img, kind, maxval=255, comment=False):
    h, w = len(img), len(img[0])
    head = kind.encode() + b"\n" + (b"# palette fuzz seed\n" if comment else b"")
    head += b"%d %d\n%d\n" % (w, h, maxval)
    body = bytearray()
    for row in img:
        for px in row:
            vals = [grey(px)] if kind == "P5" else list(px[:3])
            for v in vals:
                s = v * maxval // 255
                body += struct.pack(">H", s) if maxval > 255 else bytes([s])
    return head + bytes(body)


# ---------------------------------------------------------------------------------------------
# BMP


def bmp(img, bpp, top_down=False, header=40, masks=None, palette_bits=None):
    """bpp 1/4/8 (palette), 16/24/32; masks (r, g, b[, a]) for BI_BITFIELDS; header 12 (OS/2),
    40, 108 (V4) or 124 (V5)."""
    h, w = len(img), len(img[0])
    rows = img if top_down else img[::-1]
    pal = b""
    index = None
    if bpp <= 8:
        colours = sorted({px[:3] for row in img for px in row})
        n = 1 << bpp
        if len(colours) > n:
            colours = [colours[i * len(colours) // n] for i in range(n)]
        index = {}
        for row in img:
            for px in row:
                if px[:3] not in index:
                    index[px[:3]] = min(range(len(colours)), key=lambda i: sum(
                        abs(a - b) for a, b in zip(colours[i], px[:3])))
        entry = 3 if header == 12 else 4
        if header == 12:  # OS/2 1.x: always a full palette
            colours += [(0, 0, 0)] * (n - len(colours))
        pal = b"".join(bytes([c[2], c[1], c[0]] + ([0] if entry == 4 else [])) for c in colours)
    stride = ((w * bpp + 31) // 32) * 4
    data = bytearray()
    for row in rows:
        line = bytearray()
        if bpp <= 8:
            acc, nbits = 0, 0
            for px in row:
                acc, nbits = (acc << bpp) | index[px[:3]], nbits + bpp
                if nbits == 8:
                    line.append(acc)
                    acc, nbits = 0, 0
            if nbits:
                line.append(acc << (8 - nbits))
        else:
            for px in row:
                r, g, b, a = px
                if bpp == 24:
                    line += bytes([b, g, r])
                    continue
                if masks:
                    v = 0
                    for c, m in zip((r, g, b, a), masks):
                        if m:
                            shift = (m & -m).bit_length() - 1
                            bits = bin(m).count("1")
                            v |= ((c * ((1 << bits) - 1) + 127) // 255) << shift
                elif bpp == 16:
                    v = ((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3)
                else:
                    v = (r << 16) | (g << 8) | b
                line += struct.pack("<H" if bpp == 16 else "<I", v)
        line += bytes(stride - len(line))
        data += line
    compression = 3 if masks else 0
    if header == 12:
        info = struct.pack("<IHHHH", 12, w, h, 1, bpp)
    else:
        info = struct.pack("<IiiHHIIiiII", header, w, -h if top_down else h, 1, bpp, compression,
                           len(data), 2835, 2835, len(pal) // 4 if bpp <= 8 else 0, 0)
        if header > 40:  # V4/V5: masks, colour space, endpoints, gamma (+ V5 intent, profile)
            m = list(masks or (0, 0, 0, 0)) + [0] * 4
            info += struct.pack("<IIII", *m[:4]) + b"sRGB" + bytes(header - 40 - 20)
    extra = b""
    if masks and header == 40:
        extra = struct.pack("<III", *masks[:3])
    offset = 14 + len(info) + len(extra) + len(pal)
    return (b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + extra + pal +
            bytes(data))


# ---------------------------------------------------------------------------------------------
# TIFF (baseline, written by hand: strips or tiles, either byte order)


def tiff(img, mode="rgb", big_endian=False, tile=None, compression=1, depth=8,
         rows_per_strip=8):
    h, w = len(img), len(img[0])
    e = ">" if big_endian else "<"
    spp = {"rgb": 3, "rgba": 4, "grey": 1, "palette": 1, "bilevel": 1}[mode]
    pal_index = None
    if mode == "palette":
        colours = sorted({px[:3] for row in img for px in row})[:256]
        pal_index = {c: i for i, c in enumerate(colours)}

    def sample_bytes(row):
        if mode == "bilevel":
            out, acc, n = bytearray(), 0, 0
            for px in row:
                acc, n = (acc << 1) | (grey(px) >= 128), n + 1
                if n == 8:
                    out.append(acc)
                    acc, n = 0, 0
            if n:
                out.append(acc << (8 - n))
            return bytes(out)
        out = bytearray()
        for px in row:
            if mode == "palette":
                vals = [pal_index.get(px[:3], 0)]
            elif mode == "grey":
                vals = [grey(px)]
            else:
                vals = list(px[:spp])
            for v in vals:
                out += struct.pack(e + "H", v * 257) if depth == 16 else bytes([v])
        return bytes(out)

    def compress(raw):
        if compression == 8:
            return zlib.compress(raw, 9)
        if compression == 32773:  # PackBits: runs of equal bytes, literals otherwise
            out, i = bytearray(), 0
            while i < len(raw):
                j = i
                while j < len(raw) and j - i < 128 and raw[j] == raw[i]:
                    j += 1
                if j - i >= 3:
                    out += bytes([257 - (j - i), raw[i]])
                    i = j
                    continue
                j = i
                while j < len(raw) and j - i < 128 and not (
                        j + 2 < len(raw) and raw[j] == raw[j + 1] == raw[j + 2]):
                    j += 1
                out += bytes([j - i - 1]) + raw[i:j]
                i = j
            return bytes(out)
        return raw

    blocks = []
    if tile:
        tw, th = tile
        for ty in range(0, h, th):
            for tx in range(0, w, tw):
                raw = b""
                for y in range(ty, ty + th):
                    row = img[y][tx:tx + tw] if y < h else []
                    row = row + [(0, 0, 0, 0)] * (tw - len(row))
                    raw += sample_bytes(row)
                blocks.append(compress(raw))
    else:
        for y0 in range(0, h, rows_per_strip):
            blocks.append(compress(b"".join(sample_bytes(r) for r in img[y0:y0 + rows_per_strip])))

    entries = {}  # tag: (type, values)
    SHORT, LONG, RATIONAL = 3, 4, 5
    entries[256] = (LONG, [w])
    entries[257] = (LONG, [h])
    entries[258] = (SHORT, [1 if mode == "bilevel" else depth] * spp)
    entries[259] = (SHORT, [compression])
    entries[262] = (SHORT, [{"rgb": 2, "rgba": 2, "grey": 1, "palette": 3, "bilevel": 1}[mode]])
    entries[277] = (SHORT, [spp])
    entries[282] = (RATIONAL, [(72, 1)])
    entries[283] = (RATIONAL, [(72, 1)])
    entries[284] = (SHORT, [1])
    if mode == "rgba":
        entries[338] = (SHORT, [2])  # unassociated alpha
    if mode == "palette":
        cmap = [0] * (3 * 256)
        for c, i in pal_index.items():
            for k in range(3):
                cmap[k * 256 + i] = c[k] * 257
        entries[320] = (SHORT, cmap)
    offsets_tag, counts_tag = (324, 325) if tile else (273, 279)
    if tile:
        entries[322] = (LONG, [tile[0]])
        entries[323] = (LONG, [tile[1]])
    else:
        entries[278] = (LONG, [rows_per_strip])
    entries[offsets_tag] = (LONG, [0] * len(blocks))
    entries[counts_tag] = (LONG, [len(b) for b in blocks])

    def layout(ifd_offset):
        """The IFD and the out-of-line values, at ifd_offset."""
        tags = sorted(entries)
        after = ifd_offset + 2 + 12 * len(tags) + 4
        ifd, values = struct.pack(e + "H", len(tags)), b""
        for tag in tags:
            typ, vals = entries[tag]
            if typ == RATIONAL:
                payload = b"".join(struct.pack(e + "II", *v) for v in vals)
            else:
                payload = b"".join(struct.pack(e + ("H" if typ == SHORT else "I"), v)
                                   for v in vals)
            if len(payload) <= 4:
                field = payload + bytes(4 - len(payload))
            else:
                field = struct.pack(e + "I", after + len(values))
                values += payload + (b"\0" if len(payload) % 2 else b"")
            ifd += struct.pack(e + "HHI", tag, typ, len(vals)) + field
        return ifd + struct.pack(e + "I", 0) + values

    # The IFD first, right after the header (the sniffer reads sizes from the first bytes), then
    # the image data.
    entries[offsets_tag] = (LONG, [0] * len(blocks))
    data_start = 8 + len(layout(8))
    offsets, pos = [], data_start
    for b in blocks:
        offsets.append(pos)
        pos += len(b) + (len(b) % 2)
    entries[offsets_tag] = (LONG, offsets)
    header = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    body = b"".join(b + (b"\0" if len(b) % 2 else b"") for b in blocks)
    return header + layout(8) + body


# ---------------------------------------------------------------------------------------------
# JPEG and WebP through the reference encoders


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def with_comment(jpeg):
    """A COM segment right after SOI: decoders must skip segments they do not use."""
    text = b"palette fuzz seed"
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + jpeg[2:]


def main():
    for tool in ("cjpeg", "cwebp"):
        if not shutil.which(tool):
            sys.exit(f"make_corpus: {tool} is missing (apt-get install libjpeg-turbo-progs webp)")
    seeds = {t: {} for t in TARGETS}
    tmp = tempfile.mkdtemp(prefix="palette-corpus-")
    try:
        img = picture(64, 48)
        odd = picture(37, 23)
        rgba = picture(32, 24, alpha=True)
        small = picture(16, 12)
        mid = picture(32, 24)

        # JPEG: 160x120 reaches the DC-only decoder through decode_image at long sides <= 20.
        src = os.path.join(tmp, "src.ppm")
        with open(src, "wb") as f:
            f.write(pnm(picture(160, 120), "P6"))
        src_odd = os.path.join(tmp, "odd.ppm")
        with open(src_odd, "wb") as f:
            f.write(pnm(picture(45, 29), "P6"))
        jpegs = {
            "baseline_420": ["-quality", "60", "-sample", "2x2"],
            "baseline_422": ["-quality", "60", "-sample", "2x1"],
            "baseline_440": ["-quality", "60", "-sample", "1x2"],
            "baseline_444": ["-quality", "60", "-sample", "1x1"],
            "baseline_411": ["-quality", "60", "-sample", "4x1"],
            "grey": ["-quality", "60", "-grayscale"],
            "progressive_420": ["-quality", "60", "-progressive"],
            "progressive_grey": ["-quality", "60", "-progressive", "-grayscale"],
            "restart_rows": ["-quality", "60", "-restart", "1"],
            "restart_blocks": ["-quality", "60", "-restart", "3B", "-sample", "1x1"],
            "optimized": ["-quality", "60", "-optimize"],
            "arithmetic": ["-quality", "60", "-arithmetic"],
        }
        for name, args in jpegs.items():
            out = os.path.join(tmp, name + ".jpg")
            run(["cjpeg", *args, "-outfile", out, src])
            with open(out, "rb") as f:
                seeds["jpeg"][name + ".jpg"] = f.read()
        for name, args in {"odd_420": ["-sample", "2x2"], "odd_progressive": ["-progressive"]}.items():
            out = os.path.join(tmp, name + ".jpg")
            run(["cjpeg", "-quality", "60", *args, "-outfile", out, src_odd])
            with open(out, "rb") as f:
                seeds["jpeg"][name + ".jpg"] = f.read()
        seeds["jpeg"]["comment_444.jpg"] = with_comment(seeds["jpeg"]["baseline_444.jpg"])
        seeds["jpeg_dc"] = dict(seeds["jpeg"])

        # PNG
        seeds["png"] = {
            "rgb8.png": png(img, 2),
            "rgba8.png": png(rgba, 6),
            "grey8.png": png(img, 0),
            "grey_alpha8.png": png(rgba, 4),
            "grey1.png": png(odd, 0, depth=1),
            "palette4.png": png(quantise(rgba, 2), 3, depth=4),
            "palette8.png": png(quantise(img, 4), 3, depth=8),
            "rgb16.png": png(small, 2, depth=16),
            "grey16.png": png(small, 0, depth=16),
            "rgba16.png": png(picture(12, 10, alpha=True), 6, depth=16),
            "interlaced_rgb8.png": png(odd, 2, interlace=True),
            "interlaced_rgba16.png": png(picture(11, 9, alpha=True), 6, depth=16, interlace=True),
            "gamma_text.png": png(small, 2, extra=png_chunk(b"gAMA", struct.pack(">I", 45455)) +
                                  png_chunk(b"tEXt", b"Comment\0palette fuzz seed")),
        }

        # WebP: lossy, lossless, each with and without alpha
        for name, source, args in [
            ("lossy", img, ["-q", "40"]),
            ("lossless", img, ["-lossless", "-z", "9"]),
            ("lossy_alpha", rgba, ["-q", "40", "-alpha_q", "50"]),
            ("lossless_alpha", rgba, ["-lossless"]),
            ("lossy_odd", odd, ["-q", "30", "-sns", "0"]),
        ]:
            p = os.path.join(tmp, name + ".png")
            with open(p, "wb") as f:
                f.write(png(source, 6 if "alpha" in name else 2))
            out = os.path.join(tmp, name + ".webp")
            run(["cwebp", "-quiet", *args, p, "-o", out])
            with open(out, "rb") as f:
                seeds["webp"][name + ".webp"] = f.read()

        # TIFF
        seeds["tiff"] = {
            "rgb_le_strips.tif": tiff(mid),
            "rgb_be_strips.tif": tiff(mid, big_endian=True),
            "rgba_le.tif": tiff(rgba, "rgba"),
            "grey_be.tif": tiff(odd, "grey", big_endian=True),
            "grey16_le.tif": tiff(small, "grey", depth=16),
            "palette_le.tif": tiff(quantise(small, 4), "palette"),
            "bilevel_le.tif": tiff(odd, "bilevel"),
            "rgb_tiles_le.tif": tiff(odd, tile=(16, 16)),
            "rgb_tiles_be.tif": tiff(odd, big_endian=True, tile=(16, 16)),
            "rgba_tiles_deflate_be.tif": tiff(picture(20, 18, alpha=True), "rgba", big_endian=True,
                                              tile=(16, 16), compression=8),
            "rgb_packbits.tif": tiff(mid, compression=32773),
            "rgb_deflate.tif": tiff(mid, compression=8),
        }
        if shutil.which("tiffcp"):
            plain = os.path.join(tmp, "plain.tif")
            with open(plain, "wb") as f:
                f.write(seeds["tiff"]["rgb_le_strips.tif"])
            out = os.path.join(tmp, "lzw.tif")
            run(["tiffcp", "-c", "lzw:2", plain, out])
            with open(out, "rb") as f:
                seeds["tiff"]["rgb_lzw_predictor.tif"] = f.read()

        # BMP: every depth, bit fields, top-down, the old OS/2 header
        seeds["bmp"] = {
            "pal1.bmp": bmp(odd, 1),
            "pal4.bmp": bmp(quantise(odd, 2), 4),
            "pal8.bmp": bmp(quantise(img, 4), 8),
            "rgb555.bmp": bmp(odd, 16),
            "rgb565_bitfields.bmp": bmp(odd, 16, masks=(0xF800, 0x07E0, 0x001F)),
            "rgb24.bmp": bmp(odd, 24),
            "rgb24_top_down.bmp": bmp(odd, 24, top_down=True),
            "rgb32.bmp": bmp(small, 32),
            "rgba32_v5.bmp": bmp(rgba, 32, header=124,
                                 masks=(0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)),
            "rgba32_v4_top_down.bmp": bmp(rgba, 32, header=108, top_down=True,
                                          masks=(0x0000FF00, 0x00FF0000, 0xFF000000, 0x000000FF)),
            "os2_pal8.bmp": bmp(quantise(small, 4), 8, header=12),
            "os2_rgb24.bmp": bmp(small, 24, header=12),
        }

        # PNM: P5/P6, 8 and 16 bits, an unusual maxval, a comment
        seeds["pnm"] = {
            "grey8.pgm": pnm(mid, "P5"),
            "grey16.pgm": pnm(small, "P5", maxval=65535),
            "rgb8.ppm": pnm(mid, "P6", comment=True),
            "rgb16.ppm": pnm(small, "P6", maxval=65535),
            "rgb_maxval1000.ppm": pnm(small, "P6", maxval=1000),
            "grey_maxval15.pgm": pnm(odd, "P5", maxval=15, comment=True),
        }

        # The sniffer reads headers only: the first bytes of one file per kind, and a GIF.
        for fmt, names in [("jpeg", ["baseline_420.jpg", "progressive_420.jpg",
                                     "comment_444.jpg"]),
                           ("png", ["rgba8.png", "interlaced_rgb8.png"]),
                           ("webp", ["lossy.webp", "lossless.webp", "lossy_alpha.webp"]),
                           ("tiff", ["rgb_le_strips.tif", "rgb_be_strips.tif"]),
                           ("bmp", ["pal8.bmp", "os2_rgb24.bmp", "rgba32_v5.bmp"]),
                           ("pnm", ["grey8.pgm", "rgb8.ppm"])]:
            for n in names:
                seeds["sniff"][n] = seeds[fmt][n][:256]
        seeds["sniff"]["gif89a.gif"] = (b"GIF89a" + struct.pack("<HH", 40, 30) +
                                        b"\x80\x00\x00" + bytes(6) + b"\x3b")

        # The whole decode path: a few of each format, the large JPEGs for the DC-only path.
        for fmt, names in [("jpeg", ["baseline_420.jpg", "progressive_420.jpg", "grey.jpg",
                                     "restart_rows.jpg", "odd_420.jpg"]),
                           ("png", ["rgba8.png", "palette4.png", "rgb16.png"]),
                           ("webp", ["lossy_alpha.webp", "lossless.webp"]),
                           ("tiff", ["rgba_le.tif", "rgb_tiles_be.tif"]),
                           ("bmp", ["rgba32_v5.bmp", "pal4.bmp"]),
                           ("pnm", ["grey16.pgm", "rgb8.ppm"])]:
            for n in names:
                seeds["decode"][n] = seeds[fmt][n]
    finally:
        shutil.rmtree(tmp)

    for target, files in seeds.items():
        d = os.path.join(CORPUS, target)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
        for name, data in sorted(files.items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        total = sum(len(v) for v in files.values())
        print(f"{target:8} {len(files):3} files {total:7} bytes (largest {max(map(len, files.values()))})")


if __name__ == "__main__":
    main()
