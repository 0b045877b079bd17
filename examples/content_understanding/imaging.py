"""Tiny, dependency-free image helpers (PIL is not a dependency of this repo).

Only what the example needs: a PNG codec for 8-bit, non-interlaced grayscale /
RGB / RGBA images, and a deterministic synthetic image generator.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_SIDE = 1024  # Refuse huge images: the decoder unfilters row by row in Python.
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def decode_png(data: bytes) -> np.ndarray:
    """Decode PNG bytes into an (H, W, 3) uint8 RGB array."""
    if data[:8] != PNG_SIGNATURE:
        raise ValueError("not a PNG file")
    pos, idat, header = 8, [], None
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        pos += 12 + length  # length + type + payload + CRC
        if ctype == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif ctype == b"IDAT":
            idat.append(chunk)
        elif ctype == b"IEND":
            break
    if header is None:
        raise ValueError("PNG has no IHDR chunk")
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or interlace != 0 or color not in _CHANNELS:
        raise ValueError("only 8-bit, non-interlaced gray/RGB/RGBA PNGs are supported")
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ValueError(f"image side must be in 1..{MAX_SIDE}")

    bpp = _CHANNELS[color]
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    if raw.size != height * (stride + 1):
        raise ValueError("truncated PNG data")
    rows = raw.reshape(height, stride + 1).astype(np.int32)
    out = np.zeros((height, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:]
        if kind == 0:  # None
            cur = line.copy()
        elif kind == 2:  # Up
            cur = (line + prev) & 0xFF
        else:  # Sub / Average / Paeth depend on the left pixel: go pixel by pixel.
            cur = np.zeros(stride, dtype=np.int32)
            for x in range(0, stride, bpp):
                left = cur[x - bpp : x] if x else np.zeros(bpp, dtype=np.int32)
                up = prev[x : x + bpp]
                up_left = prev[x - bpp : x] if x else np.zeros(bpp, dtype=np.int32)
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up) // 2
                elif kind == 4:
                    pred = _paeth(left, up, up_left)
                else:
                    raise ValueError(f"bad PNG filter type {kind}")
                cur[x : x + bpp] = (line[x : x + bpp] + pred) & 0xFF
        out[y] = cur
        prev = cur
    pixels = out.astype(np.uint8).reshape(height, width, bpp)
    if bpp in (1, 2):  # gray (+alpha): drop alpha, replicate gray to RGB
        return np.repeat(pixels[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])


def encode_png(image: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 array as an RGB PNG (filter type 0 everywhere)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    height, width, _ = image.shape

    def chunk(ctype: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(ctype + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", crc)

    scanlines = b"".join(b"\x00" + image[y].tobytes() for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(scanlines)) + chunk(b"IEND", b"")


def pixels_to_image(pixels: list) -> np.ndarray:
    """Accept nested [H][W][3] RGB or [H][W] grayscale values in 0..255."""
    array = np.asarray(pixels, dtype=np.float64)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError("pixels must be [H][W] gray or [H][W][3] RGB values")
    if max(array.shape[:2]) > MAX_SIDE:
        raise ValueError(f"image side must be <= {MAX_SIDE}")
    return np.clip(np.rint(array), 0, 255).astype(np.uint8)


def synthetic_image(seed: int, size: int = 64) -> np.ndarray:
    """A deterministic (size, size, 3) uint8 image: colour gradient + a rectangle.

    numpy's PCG64 stream for a given seed is stable across platforms/versions,
    so the same seed always yields the same pixels.
    """
    rng = np.random.default_rng(seed)
    start, end = rng.uniform(0, 255, size=3), rng.uniform(0, 255, size=3)
    ramp = np.linspace(0.0, 1.0, size)[None, :, None]
    image = np.broadcast_to(start + (end - start) * ramp, (size, size, 3)).copy()
    y0, x0 = rng.integers(0, size // 2, size=2)
    h, w = rng.integers(size // 8, size // 2, size=2)
    image[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255, size=3)
    image += rng.normal(0.0, 8.0, size=image.shape)  # a little texture
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
