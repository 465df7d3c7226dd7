#!/usr/bin/python3
"""Regenerates the fixtures of the datasets package tests.

Run with Debian's interpreter, which has Pillow 9.4, torch 1.13 and
torchvision 0.14:

    /usr/bin/python3 datasets/testdata/gen_fixtures.py

It writes deterministic source images into datasets/testdata/ and, next to
them, what the Python reference pipeline produces from them:

  * decode/*.rgb.gz   Image.open(p).convert("RGB") as raw RGB bytes
  * resize/*.rgb.gz   img.resize((w, h), Image.BILINEAR) as raw RGB bytes
  * tensor/*.f32.gz   Resize/ToTensor/Normalize outputs as little-endian float32
  * fixtures.json     the list of cases, the ToTensor and Normalize tables,
                      and the MVTec tree with its expected listings.

The Go tests only read these files; they never run Python.
"""

import gzip
import json
import os
import shutil
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms

HERE = Path(__file__).resolve().parent
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def wgz(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the output byte-identical between runs.
    with open(path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, compresslevel=9) as g:
            g.write(data)


def rel(p):
    return str(Path(p).relative_to(HERE))


# --------------------------------------------------------------------------
# Source images

def pattern_rgb(w, h, seed, noise_frac=0.35):
    """Gradients, hard edges, saturated areas and a band of full-range noise."""
    rs = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 127.5 + 127.5 * np.sin(x / 7.0 + y / 11.0)
    img = np.stack([r, g, b], axis=-1)
    # checkerboard with hard edges
    cb = ((x // 5 + y // 3) % 2 == 0)
    img[cb & (y < h // 4)] = [255, 0, 255]
    img[(~cb) & (y < h // 4)] = [0, 255, 0]
    # saturated blocks
    img[h // 2:h // 2 + 6, :w // 3] = 255
    img[h // 2 + 6:h // 2 + 12, :w // 3] = 0
    # noise band
    nb = int(w * noise_frac)
    img[:, w - nb:] = rs.randint(0, 256, size=(h, nb, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def save_png(arr, path, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path, optimize=True)


def png_chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def pack_row(samples, depth):
    """samples: 1-D array of channel samples for one row."""
    if depth == 16:
        return samples.astype(">u2").tobytes()
    if depth == 8:
        return samples.astype(np.uint8).tobytes()
    per = 8 // depth
    out = bytearray()
    for i in range(0, len(samples), per):
        byte = 0
        chunk = samples[i:i + per]
        for j in range(per):
            v = int(chunk[j]) if j < len(chunk) else 0
            byte |= v << (8 - depth * (j + 1))
        out.append(byte)
    return bytes(out)


def write_png(path, arr, ctype, depth, plte=None, trns=None, interlace=False):
    """Writes a PNG by hand (any colour type / bit depth, optional Adam7).

    arr has shape (h, w, channels) with the raw sample values."""
    h, w = arr.shape[:2]
    ch = arr.shape[2]
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0)
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = arr[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for row in sub:
            raw += b"\x00" + pack_row(row.reshape(-1), depth)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    if plte is not None:
        data += png_chunk(b"PLTE", bytes(np.asarray(plte, np.uint8).reshape(-1)))
    if trns is not None:
        data += png_chunk(b"tRNS", trns)
    data += png_chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + png_chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def decode_sources():
    """PNG variants (exact) and JPEGs (approximate). Returns case dicts."""
    rs = np.random.RandomState(7)
    d = HERE / "decode"
    w, h = 37, 23
    cases = []

    def u16(shape):
        a = rs.randint(0, 65536, size=shape)
        a.flat[:8] = [0, 1, 254, 255, 256, 300, 65535, 0x00FF]
        return a

    specs = []
    rgb8 = pattern_rgb(w, h, 1, 0.5)
    specs.append(("rgb8_interlaced.png", rgb8, 2, 8, {"interlace": True}))
    specs.append(("rgb8_trns.png", rgb8, 2, 8, {"trns": struct.pack(">HHH", *rgb8[0, 0])}))
    specs.append(("rgba8.png", np.concatenate([rgb8, rs.randint(0, 256, (h, w, 1))], 2), 6, 8, {}))
    specs.append(("rgb16.png", u16((h, w, 3)), 2, 16, {}))
    specs.append(("rgb16_trns.png", u16((h, w, 3)), 2, 16, {"trns": struct.pack(">HHH", 1, 2, 3)}))
    specs.append(("rgba16.png", u16((h, w, 4)), 6, 16, {"interlace": True}))
    g16 = rs.randint(0, 600, size=(h, w, 1))
    g16[::3] = rs.randint(0, 65536, size=g16[::3].shape)
    g16.flat[:8] = [0, 1, 254, 255, 256, 300, 65535, 255]
    specs.append(("grey16.png", g16, 0, 16, {}))
    specs.append(("grey16_trns.png", g16, 0, 16, {"trns": struct.pack(">H", 7)}))
    specs.append(("greyalpha16.png", u16((h, w, 2)), 4, 16, {}))
    g8 = rgb8[..., :1]
    specs.append(("grey8.png", g8, 0, 8, {}))
    specs.append(("grey8_trns.png", g8, 0, 8, {"trns": struct.pack(">H", int(g8[0, 0, 0]))}))
    specs.append(("greyalpha8.png", np.concatenate([g8, rs.randint(0, 256, (h, w, 1))], 2), 4, 8, {}))
    for depth in (1, 2, 4):
        specs.append((f"grey{depth}.png", rs.randint(0, 1 << depth, (h, w, 1)), 0, depth, {}))
    pal = rs.randint(0, 256, size=(256, 3))
    specs.append(("palette8_trns.png", rs.randint(0, 256, (h, w, 1)), 3, 8,
                  {"plte": pal, "trns": bytes(rs.randint(0, 256, 100).astype(np.uint8))}))
    # Short palette: indices 5..15 point past the PLTE entries.
    specs.append(("palette4_short.png", rs.randint(0, 16, (h, w, 1)), 3, 4, {"plte": pal[:5]}))
    specs.append(("palette1.png", rs.randint(0, 2, (h, w, 1)), 3, 1, {"plte": pal[:2], "interlace": True}))
    for name, arr, ctype, depth, kw in specs:
        write_png(d / name, arr, ctype, depth, **kw)
        cases.append({"file": "decode/" + name, "exact": True})

    # Pillow-written PNGs (filtered, optimised) of the main modes.
    save_png(rgb8, d / "pil_rgb.png")
    save_png(np.concatenate([rgb8, rs.randint(0, 256, (h, w, 1)).astype(np.uint8)], 2), d / "pil_rgba.png", "RGBA")
    save_png(g8[..., 0], d / "pil_l.png", "L")
    Image.fromarray(rgb8).convert("P", palette=Image.ADAPTIVE, colors=50).save(d / "pil_p.png")
    for name in ("pil_rgb.png", "pil_rgba.png", "pil_l.png", "pil_p.png"):
        cases.append({"file": "decode/" + name, "exact": True})

    # JPEGs: odd size to exercise the chroma edges.
    jw, jh = 121, 89
    src = pattern_rgb(jw, jh, 3, 0.25)
    im = Image.fromarray(src)
    im.save(d / "jpeg_420.jpg", quality=90)
    im.save(d / "jpeg_422.jpg", quality=90, subsampling=1)
    im.save(d / "jpeg_444.jpg", quality=95, subsampling=0)
    im.save(d / "jpeg_420_progressive.jpg", quality=85, progressive=True)
    im.convert("L").save(d / "jpeg_grey.jpg", quality=90)
    im.convert("CMYK").save(d / "jpeg_cmyk.jpg", quality=90)
    for name in ("jpeg_420.jpg", "jpeg_422.jpg", "jpeg_444.jpg", "jpeg_420_progressive.jpg",
                 "jpeg_grey.jpg", "jpeg_cmyk.jpg"):
        cases.append({"file": "decode/" + name, "exact": False})

    cases += bmp_sources(d) + tiff_sources(d)
    # Grey16Scale of every 16-bit value, as numpy rounds it.
    wgz(d / "grey16_scale_table.gz", np.rint(np.arange(65536) * 255 / 65535).astype(np.uint8).tobytes())

    for c in cases:
        im = Image.open(HERE / c["file"])
        c["pillow_mode"] = im.mode
        stem = c["file"].rsplit(".", 1)[0]
        if c["pillow_mode"] in ("I", "I;16", "I;16B"):
            # The Grey16Scale option: round(v * 255 / 65535), computed by numpy.
            v = np.asarray(im).astype(np.float64)
            grey = np.rint(v * 255 / 65535).astype(np.uint8)
            c["expect_scaled"] = stem + ".scaled.gz"
            wgz(HERE / c["expect_scaled"], np.repeat(grey[..., None], 3, axis=2).tobytes())
        rgb = np.asarray(im.convert("RGB"))
        c["w"], c["h"] = rgb.shape[1], rgb.shape[0]
        c["expect"] = stem + ".rgb.gz"
        wgz(HERE / c["expect"], rgb.tobytes())
    return cases


def write_bmp(path, arr, bpp, palette=None, header=40, top_down=False, masks=None):
    """Writes an uncompressed BMP by hand: arr is (h, w) palette indices for
    bpp <= 8, (h, w) raw pixel values for 16, (h, w, 3) RGB for 24 and
    (h, w, 4) RGBA for 32 bits. A 108 or 124-byte header on 32 bits declares
    the alpha channel with bit fields; masks gives 16-bit bit fields."""
    h, w = arr.shape[:2]
    rows = []
    for row in arr:
        if bpp <= 8:
            raw = pack_row(row.reshape(-1), bpp)
        elif bpp == 16:
            raw = row.astype("<u2").tobytes()
        elif bpp == 24:
            raw = row[:, ::-1].astype(np.uint8).tobytes()
        else:
            raw = row[:, [2, 1, 0, 3]].astype(np.uint8).tobytes()
        rows.append(raw + b"\0" * (-len(raw) % 4))
    if not top_down:
        rows.reverse()
    pixels = b"".join(rows)
    pal = b""
    if palette is not None:
        pal = b"".join(bytes([b, g, r, 0]) for r, g, b in np.asarray(palette, np.uint8))
    compression = 3 if header > 40 or masks else 0
    info = struct.pack("<IiiHHIIiiII", header, w, -h if top_down else h, 1, bpp, compression,
                       len(pixels), 2835, 2835, len(palette) if palette is not None else 0, 0)
    if masks:
        # After a 40-byte header, or at the start of the longer ones' masks.
        info += struct.pack("<III", *masks)
        if header > 40:
            info += struct.pack("<I", 0)
    elif header > 40:
        info += struct.pack("<IIII", 0xFF0000, 0xFF00, 0xFF, 0xFF000000)
    if header > 40:
        info += b"sRGB" + b"\0" * (header - len(info) - 4)
    offset = 14 + len(info) + len(pal)
    head = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    path.write_bytes(head + info + pal + pixels)


def bmp_sources(d):
    """BMPs written by Pillow and by hand. Returns case dicts."""
    rs = np.random.RandomState(21)
    w, h = 37, 23
    rgb = pattern_rgb(w, h, 4, 0.5)
    rgba = np.concatenate([rgb, rs.randint(0, 256, (h, w, 1)).astype(np.uint8)], 2)
    Image.fromarray(rgb).save(d / "bmp_rgb24.bmp")
    Image.fromarray(rgba, "RGBA").save(d / "bmp_rgba32.Bmp")
    Image.fromarray(rgb[..., 1]).save(d / "bmp_grey8.bmp")
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=50).save(d / "bmp_palette8.BMP")
    Image.fromarray(rgb[..., 0] > 128).save(d / "bmp_bilevel1.bmp")
    pal = rs.randint(0, 256, size=(16, 3))
    write_bmp(d / "bmp_palette4.bmp", rs.randint(0, 16, (h, w)), 4, pal)
    # Only 10 palette entries: indices 10..15 point past them.
    write_bmp(d / "bmp_palette4_short.bmp", rs.randint(0, 16, (h, w)), 4, pal[:10], top_down=True)
    write_bmp(d / "bmp_rgb24_topdown.bmp", rgb, 24, top_down=True)
    write_bmp(d / "bmp_rgba32_v4.bmp", rgba, 32, header=108)
    write_bmp(d / "bmp_rgba32_v5.bmp", rgba, 32, header=124, top_down=True)
    rgb16 = rs.randint(0, 65536, (h, w))
    rgb16.flat[:4] = [0, 0xFFFF, 0x7FFF, 0x8000]
    write_bmp(d / "bmp_rgb555.bmp", rgb16 & 0x7FFF, 16)
    write_bmp(d / "bmp_rgb565.bmp", rgb16, 16, masks=(0xF800, 0x7E0, 0x1F))
    write_bmp(d / "bmp_rgb555_v5.bmp", rgb16, 16, header=124, top_down=True, masks=(0x7C00, 0x3E0, 0x1F))
    names = ["bmp_rgb555.bmp", "bmp_rgb565.bmp", "bmp_rgb555_v5.bmp", "bmp_rgb24.bmp", "bmp_rgba32.Bmp", "bmp_grey8.bmp", "bmp_palette8.BMP", "bmp_bilevel1.bmp",
             "bmp_palette4.bmp", "bmp_palette4_short.bmp", "bmp_rgb24_topdown.bmp",
             "bmp_rgba32_v4.bmp", "bmp_rgba32_v5.bmp"]
    return [{"file": "decode/" + n, "exact": True} for n in names]


def write_tiff(path, arr, bits, photometric, extra=None, big_endian=False, palette=None):
    """Writes an uncompressed single-strip TIFF by hand: arr is (h, w, samples)."""
    e = ">" if big_endian else "<"
    h, w, spp = arr.shape
    pix = arr.astype(np.dtype(e + ("u2" if bits == 16 else "u1"))).tobytes()
    entries = [(256, 4, [w]), (257, 4, [h]), (258, 3, [bits] * spp), (259, 3, [1]),
               (262, 3, [photometric]), (273, 4, [0]), (277, 3, [spp]), (278, 4, [h]),
               (279, 4, [len(pix)]), (284, 3, [1])]
    if palette is not None:
        entries.append((320, 3, [int(v) for v in np.asarray(palette).T.reshape(-1)]))
    if extra is not None:
        entries.append((338, 3, [extra]))
    entries.sort()
    ool_start = 8 + 2 + 12 * len(entries) + 4
    ool = bytearray()
    values = []
    for tag, typ, vals in entries:
        raw = struct.pack(e + ("H" if typ == 3 else "I") * len(vals), *vals)
        if len(raw) > 4:
            values.append(struct.pack(e + "I", ool_start + len(ool)))
            ool += raw + b"\0" * (len(raw) % 2)
        else:
            values.append(raw.ljust(4, b"\0"))
    pix_off = ool_start + len(ool)
    ifd = struct.pack(e + "H", len(entries))
    for (tag, typ, vals), val in zip(entries, values):
        if tag == 273:
            val = struct.pack(e + "I", pix_off)
        ifd += struct.pack(e + "HHI", tag, typ, len(vals)) + val
    ifd += b"\0\0\0\0"
    head = (b"MM\0*" if big_endian else b"II*\0") + struct.pack(e + "I", 8)
    path.write_bytes(head + ifd + bytes(ool) + pix)


def tiff_sources(d):
    """TIFFs written by Pillow (every compression it offers) and by hand
    (16-bit colour, associated alpha, big-endian). Returns case dicts."""
    rs = np.random.RandomState(22)
    w, h = 37, 23
    rgb = pattern_rgb(w, h, 5, 0.5)
    rgba = np.concatenate([rgb, rs.randint(0, 256, (h, w, 1)).astype(np.uint8)], 2)
    im = Image.fromarray(rgb)
    names = []

    def save(img, name, **kw):
        img.save(d / name, **kw)
        names.append(name)

    save(im, "tiff_rgb8.tif")
    save(im, "tiff_rgb8_lzw.TIF", compression="tiff_lzw")
    save(im, "tiff_rgb8_deflate.tiff", compression="tiff_adobe_deflate")
    save(im, "tiff_rgb8_packbits.tif", compression="packbits")
    save(Image.fromarray(rgba, "RGBA"), "tiff_rgba8.tif")
    save(Image.fromarray(rgba, "RGBA"), "tiff_rgba8_lzw.tif", compression="tiff_lzw")
    save(Image.fromarray(rgb[..., 2]), "tiff_grey8.tif")
    save(im.convert("P", palette=Image.ADAPTIVE, colors=50), "tiff_palette8.tif")
    save(Image.fromarray(rgb[..., 0] > 128), "tiff_bilevel1.tif")
    save(Image.fromarray(rgb[..., 1] > 100), "tiff_bilevel1_group3.tif", compression="group3")
    save(Image.fromarray(rgb[..., 1] > 100), "tiff_bilevel1_group4.tif", compression="group4")
    g16 = rs.randint(0, 600, size=(h, w)).astype(np.uint16)
    g16[::3] = rs.randint(0, 65536, size=g16[::3].shape)
    g16.flat[:8] = [0, 1, 254, 255, 256, 300, 65535, 255]
    save(Image.fromarray(g16), "tiff_grey16.TIFF")
    save(Image.fromarray(g16), "tiff_grey16_lzw.tif", compression="tiff_lzw")

    def u16(shape):
        return rs.randint(0, 65536, size=shape)

    hand = [
        ("tiff_rgb16.tif", u16((h, w, 3)), 16, 2, {}),
        ("tiff_rgb16_be.tif", u16((h, w, 3)), 16, 2, {"big_endian": True}),
        ("tiff_rgba16.tif", u16((h, w, 4)), 16, 2, {"extra": 2}),
        ("tiff_rgba16_assoc.tif", u16((h, w, 4)), 16, 2, {"extra": 1}),
        ("tiff_rgba8_assoc.tif", rgba, 8, 2, {"extra": 1}),
        ("tiff_rgb8_be.tif", rgb, 8, 2, {"big_endian": True}),
        ("tiff_grey16_be.tif", g16[..., None], 16, 1, {"big_endian": True}),
        ("tiff_grey8_miniswhite.tif", rgb[..., :1], 8, 0, {}),
        # Pillow reads 16-bit "white is zero" grey without inverting it.
        ("tiff_grey16_miniswhite.tif", g16[..., None], 16, 0, {}),
    ]
    for name, arr, bits, photometric, kw in hand:
        write_tiff(d / name, arr, bits, photometric, **kw)
        names.append(name)
    return [{"file": "decode/" + n, "exact": True} for n in names]


def go_bytes_literal(data):
    """data as the Go expression []byte("...")."""
    out = []
    for b in data:
        c = chr(b)
        out.append(c if 0x20 <= b < 0x7F and c not in '"\\' else "\\x%02x" % b)
    return '[]byte("' + "".join(out) + '")'


def fuzz_seeds():
    """Small images of every kind each decoder reads, written as the seed
    corpora of the Fuzz tests (testdata/fuzz/<target>/<name>)."""
    rs = np.random.RandomState(31)
    w, h = 9, 7
    rgb = rs.randint(0, 256, (h, w, 3)).astype(np.uint8)
    rgba = np.concatenate([rgb, rs.randint(0, 256, (h, w, 1)).astype(np.uint8)], 2)
    im = Image.fromarray(rgb)
    tmp = Path(tempfile.mkdtemp())
    seeds = {"FuzzDecodePNG": [], "FuzzDecodeJPEG": [], "FuzzDecodeBMP": [], "FuzzDecodeTIFF": []}

    def pil(target, name, img, **kw):
        img.save(tmp / name, **kw)
        seeds[target].append((name, (tmp / name).read_bytes()))

    def hand(target, name, writer, *args, **kw):
        writer(tmp / name, *args, **kw)
        seeds[target].append((name, (tmp / name).read_bytes()))

    try:
        pil("FuzzDecodePNG", "rgb.png", im)
        pil("FuzzDecodePNG", "rgba.png", Image.fromarray(rgba, "RGBA"))
        hand("FuzzDecodePNG", "grey16_trns.png", write_png, rs.randint(0, 65536, (h, w, 1)), 0, 16,
             trns=struct.pack(">H", 7))
        hand("FuzzDecodePNG", "rgba16_interlaced.png", write_png, rs.randint(0, 65536, (h, w, 4)), 6, 16,
             interlace=True)
        hand("FuzzDecodePNG", "palette2_short.png", write_png, rs.randint(0, 4, (h, w, 1)), 3, 2,
             plte=rgb[0, :3], trns=b"\x80")
        pil("FuzzDecodeJPEG", "420.jpg", im, quality=90)
        pil("FuzzDecodeJPEG", "444_progressive.jpg", im, quality=90, subsampling=0, progressive=True)
        pil("FuzzDecodeJPEG", "grey.jpg", im.convert("L"))
        pil("FuzzDecodeJPEG", "cmyk.jpg", im.convert("CMYK"))
        pil("FuzzDecodeBMP", "rgb24.bmp", im)
        pil("FuzzDecodeBMP", "palette8.bmp", im.convert("P", palette=Image.ADAPTIVE, colors=7))
        pil("FuzzDecodeBMP", "bilevel1.bmp", im.convert("1"))
        hand("FuzzDecodeBMP", "palette4_topdown.bmp", write_bmp, rs.randint(0, 16, (h, w)), 4,
             rgb[0, :5], top_down=True)
        hand("FuzzDecodeBMP", "rgba32_v5.bmp", write_bmp, rgba, 32, header=124)
        hand("FuzzDecodeBMP", "rgb565.bmp", write_bmp, rs.randint(0, 65536, (h, w)), 16,
             masks=(0xF800, 0x7E0, 0x1F))
        hand("FuzzDecodeBMP", "rgb555_topdown.bmp", write_bmp, rs.randint(0, 32768, (h, w)), 16, top_down=True)
        pil("FuzzDecodeTIFF", "rgb_lzw.tif", im, compression="tiff_lzw")
        pil("FuzzDecodeTIFF", "rgba_deflate.tif", Image.fromarray(rgba, "RGBA"), compression="tiff_adobe_deflate")
        pil("FuzzDecodeTIFF", "palette_packbits.tif", im.convert("P", palette=Image.ADAPTIVE, colors=7),
            compression="packbits")
        pil("FuzzDecodeTIFF", "bilevel_group4.tif", im.convert("1"), compression="group4")
        pil("FuzzDecodeTIFF", "grey16.tif", Image.fromarray(rs.randint(0, 65536, (h, w)).astype(np.uint16)))
        hand("FuzzDecodeTIFF", "rgba16_assoc_be.tif", write_tiff, rs.randint(0, 65536, (h, w, 4)), 16, 2,
             extra=1, big_endian=True)
    finally:
        shutil.rmtree(tmp)
    root = HERE / "fuzz"
    shutil.rmtree(root, ignore_errors=True)
    for target, files in seeds.items():
        files.append(("empty", b""))
        (root / target).mkdir(parents=True)
        for name, data in files:
            (root / target / name).write_text("go test fuzz v1\n" + go_bytes_literal(data) + "\n")


def resize_cases():
    r = HERE / "resize"
    srcs = {
        "src_300x217.png": pattern_rgb(300, 217, 11),
        "src_97x131.png": pattern_rgb(97, 131, 12, 0.12),
        "src_512x384.png": pattern_rgb(512, 384, 13, 0.08),
        "src_3x2.png": np.random.RandomState(14).randint(0, 256, (2, 3, 3)).astype(np.uint8),
        "src_1x1.png": np.array([[[10, 200, 255]]], np.uint8),
        "src_1x40.png": np.random.RandomState(15).randint(0, 256, (40, 1, 3)).astype(np.uint8),
    }
    for name, arr in srcs.items():
        save_png(arr, r / name)
    targets = [
        ("src_300x217.png", 256, 256),
        ("src_97x131.png", 256, 256),
        ("src_512x384.png", 64, 64),
        ("src_300x217.png", 300, 64),   # vertical pass only
        ("src_300x217.png", 64, 217),   # horizontal pass only
        ("src_300x217.png", 300, 217),  # same size
        ("src_300x217.png", 123, 45),
        ("src_300x217.png", 7, 5),
        ("src_97x131.png", 200, 13),
        ("src_512x384.png", 33, 250),
        ("src_3x2.png", 64, 64),
        ("src_1x1.png", 5, 3),
        ("src_1x40.png", 3, 7),
    ]
    cases = []
    for name, w, h in targets:
        im = Image.open(r / name).convert("RGB")
        out = np.asarray(im.resize((w, h), Image.BILINEAR))
        # What torchvision's Resize((h, w)) does on a PIL image must be the same.
        tv = np.asarray(transforms.Resize((h, w))(im))
        assert (tv == out).all(), (name, w, h)
        if (w, h) == im.size:
            # Same size: Pillow returns a copy, which the test checks against
            # the decoded source; no need to store it twice.
            assert (out == np.asarray(im)).all()
            expect = None
        else:
            expect = f"resize/{name[:-4]}_to_{w}x{h}.rgb.gz"
            wgz(HERE / expect, out.tobytes())
        cases.append({"src": "resize/" + name, "w": w, "h": h, "expect": expect})
    return cases


def synthetic_rgb(w, h):
    """Full-size sources computed by a formula the Go test reproduces."""
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    chans = [(((x * (3 + c)) ^ (y * (5 - c))) + ((x * y) >> 9)) & 255 for c in range(3)]
    return np.stack(chans, -1).astype(np.uint8)


def synthetic_resize_cases():
    """Typical MVTec / ImageNet sizes. The outputs are too large to store, so
    only a CRC-32 per output row is kept."""
    cases = []
    for w, h, ow, oh in [(1600, 1100, 256, 256), (800, 800, 256, 256), (1024, 1024, 256, 256),
                         (900, 900, 256, 256), (500, 375, 512, 512), (1600, 1100, 512, 512)]:
        out = np.asarray(Image.fromarray(synthetic_rgb(w, h)).resize((ow, oh), Image.BILINEAR))
        cases.append({"w": w, "h": h, "out_w": ow, "out_h": oh,
                      "row_crc32": [zlib.crc32(row.tobytes()) for row in out]})
    return cases


def tensor_cases():
    """ToTensor and Normalize of every byte value, and a full pipeline."""
    a = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    t = transforms.ToTensor()(Image.fromarray(a))
    n = transforms.Normalize(MEAN, STD)(t.clone())
    unit = t[0].flatten().numpy().astype("<f4")
    norm = n.reshape(3, 256).numpy().astype("<f4")
    out = {
        "to_tensor_bits": [int(v) for v in unit.view("<u4")],
        "normalize_bits": [[int(v) for v in norm[c].view("<u4")] for c in range(3)],
        "mean_bits": [int(v) for v in torch.tensor(MEAN).numpy().view("<u4")],
        "std_bits": [int(v) for v in torch.tensor(STD).numpy().view("<u4")],
        "pipelines": [],
    }
    for src, size in (("resize/src_512x384.png", 64), ("decode/jpeg_444.jpg", 32)):
        tf = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor(),
                                 transforms.Normalize(MEAN, STD)])
        x = tf(Image.open(HERE / src).convert("RGB")).numpy().astype("<f4")
        expect = f"tensor/{Path(src).stem}_{size}.f32.gz"
        wgz(HERE / expect, x.tobytes())
        out["pipelines"].append({"src": src, "size": size, "expect": expect,
                                 "exact_decode": src.endswith(".png")})
    return out


# --------------------------------------------------------------------------
# MVTec layout

TRAIN_NAMES = ["000.png", "001.png", "010.png", "1.png", "10.png", "2.png", "B.png", "a.png",
               "Z.png", "_x.png", "a b.png", "a-b.png", "\u00e9t\u00e9.png", "x..png",
               # excluded by the reference's case-sensitive suffix test:
               "A.PNG", "c.jpg", ".png", "noext", "x.png.bak", "x.", "y.Png"]

TEST_ENTRIES = [
    # (kind, path, target)
    ("file", "good/000.png", None),
    ("file", "good/001.PNG", None),
    ("file", "good/a.JPEG", None),
    ("file", "good/b.tiff", None),
    ("file", "good/c.webp", None),
    ("file", "good/readme.txt", None),
    ("file", "good/.png", None),
    ("file", "good/sub/002.png", None),
    ("file", "good/sub/inner/003.png", None),
    ("file", "good/sub b/004.png", None),
    ("file", "good/sub-b/005.bmp", None),
    ("file", "good/Sub/006.pgm", None),
    ("file", "good/sub0/007.ppm", None),
    ("file", "good/z.tif", None),
    ("file", "logical_anomalies/000.png", None),
    ("file", "logical_anomalies/10.png", None),
    ("file", "logical_anomalies/9.png", None),
    ("file", "logical_anomalies/notes.md", None),
    ("dir", "logical_anomalies/empty_sub", None),
    ("symlink", "logical_anomalies/linked", "../../extra"),
    ("file", "structural_anomalies/Zeta.png", None),
    ("file", "structural_anomalies/alpha.png", None),
    ("file", "structural_anomalies/deep/a/b/c/x.jpg", None),
    ("file", "Broken/x.png", None),
    ("file", "b10/q.png", None),
    ("file", "b2/q.png", None),
    ("file", "_under/q.png", None),
    ("symlink", "zlinked_class", "../extra"),
    ("file", "top_level_file.png", None),
]

EXTRA_ENTRIES = [("file", "extra/e1.png", None), ("file", "extra/E0.png", None),
                 ("file", "extra/sub/e2.jpg", None), ("file", "extra/skip.gif", None)]


def make_entries(root, entries):
    for kind, p, target in entries:
        path = root / p
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "file":
            path.write_bytes(b"")
        elif kind == "dir":
            path.mkdir(parents=True, exist_ok=True)
        else:
            os.symlink(target, path)


def normal_listing(d):
    # The reference's NormalDataset._get_img_paths.
    return [p for p in sorted(Path(d).iterdir()) if p.suffix == ".png"]


def split(paths, ratio=0.15):
    # The reference's split_dataset.
    n_train = len(paths) - int(len(paths) * ratio)
    g = torch.Generator()
    g.manual_seed(42)
    idx = torch.randperm(len(paths), generator=g).tolist()
    return idx, [paths[i] for i in idx[:n_train]], [paths[i] for i in idx[n_train:]]


def mvtec_tree():
    tmp = Path(tempfile.mkdtemp())
    try:
        cat = tmp / "my_dataset" / "cat_A"
        entries = []
        entries += [("file", "train/good/" + n, None) for n in TRAIN_NAMES]
        entries += [("dir", "train/good/dir.png", None)]
        entries += [("file", "validation/good/" + n, None) for n in ("v2.png", "v10.png", "V1.png", "v.PNG")]
        entries += [("file", "test/" + p, None) if k == "file" else (k, "test/" + p, t)
                    for k, p, t in TEST_ENTRIES]
        entries += [(k, "test/../" + p, t) for k, p, t in EXTRA_ENTRIES]
        # Normalise "test/../extra" to "extra".
        entries = [(k, os.path.normpath(p), t) for k, p, t in entries]
        make_entries(cat, entries)

        def r(ps):
            return [os.path.relpath(str(p), cat) for p in ps]

        train = normal_listing(cat / "train" / "good")
        valid = normal_listing(cat / "validation" / "good")
        ds = torchvision.datasets.ImageFolder(str(cat / "test"))
        classes = ds.classes
        samples = [[os.path.relpath(p, cat), i] for p, i in ds.samples]

        # Split case: 20 train images, no validation folder.
        split_names = [f"img_{i:03d}.png" for i in range(20)]
        perm, s_train, s_valid = split([f"train/good/{n}" for n in split_names])
        return {
            "entries": [{"kind": k, "path": p, "target": t} for k, p, t in entries],
            "dataset_name": "my_dataset",
            "category": "cat_A",
            "train": r(train),
            "valid": r(valid),
            "classes": classes,
            "test": samples,
            "split": {"names": split_names, "perm": perm, "train": s_train, "valid": s_valid},
        }
    finally:
        shutil.rmtree(tmp)


def main():
    assert Image.__version__.startswith("9.4"), Image.__version__
    for sub in ("decode", "resize", "tensor"):
        shutil.rmtree(HERE / sub, ignore_errors=True)
    fixtures = {
        "versions": {"pillow": Image.__version__, "torch": torch.__version__,
                     "torchvision": torchvision.__version__},
        "decode": decode_sources(),
        "resize": resize_cases(),
        "resize_synthetic": synthetic_resize_cases(),
        "tensor": tensor_cases(),
        "mvtec": mvtec_tree(),
    }
    fuzz_seeds()
    with open(HERE / "fixtures.json", "w") as f:
        json.dump(fixtures, f, indent=1, ensure_ascii=True)
        f.write("\n")
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"fixtures written, {total} bytes in {HERE}", file=sys.stderr)


if __name__ == "__main__":
    main()
