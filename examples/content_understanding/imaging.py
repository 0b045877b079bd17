"""Image helpers of the example: a bounded PNG decoder, a PNG encoder for payloads and
tests, and a deterministic synthetic image generator.

Decoding is bounded before a single pixel is inflated. A PNG is refused when its bytes are
over ``MAX_PNG_BYTES``, or when the size its header declares is over ``MAX_SIDE`` on a side
or ``MAX_PIXELS`` in all; both come from the header, read before any image data. Pillow then
inflates exactly width x height pixels and stops: compressed data behind them (a 7 MB stream
of zeros that would inflate to 7 GB, behind a header that declares a small image) is never
inflated. So a decode holds at most about ``MAX_PIXELS`` x 4 bytes of pixels, whatever the
client sends. (Pillow's own zTXt/iTXt limits, 1 MB a chunk and 64 MB in all, bound text chunks.)
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_SIDE = 1024  # pixels on a side, for PNGs and for {"pixels": ...}
MAX_PIXELS = MAX_SIDE * MAX_SIDE  # width x height of a PNG
MAX_PNG_BYTES = 7 * 1024 * 1024  # a PNG's own bytes; its base64 (4/3 of it) in JSON fits the proxy's 10 MiB body limit


class ImageTooLarge(ValueError):
    """An image over one of the decoding limits: the client's fault (HTTP 413), refused before
    its pixels are inflated. ``limit_name`` is the constant in this module that sets the limit."""

    def __init__(self, what: str, value: int, limit: int, limit_name: str) -> None:
        super().__init__(what, value, limit, limit_name)
        self.what, self.value, self.limit, self.limit_name = what, value, limit, limit_name

    def __str__(self) -> str:
        return describe(self)


def describe(exc: ImageTooLarge) -> str:
    """The message of ``exc`` from its fields (the app uses it on a Ray Serve error too, whose
    ``str`` carries the remote traceback)."""
    return (f"the image's {exc.what} is {exc.value}, over the limit of {exc.limit} ({exc.limit_name}); "
            "send a smaller image")


def base64_limit(max_bytes: int = MAX_PNG_BYTES) -> int:
    """Length of the base64 text of a ``max_bytes`` PNG: longer text is over the limit."""
    return 4 * ((max_bytes + 2) // 3)


def png_header_size(data: bytes) -> tuple[int, int]:
    """(width, height) as the PNG's IHDR declares them, from its first 24 bytes.

    The PNG standard puts IHDR first, and Pillow refuses a PNG where it is not; reading the
    two numbers here checks the declared size before Pillow sees the file (and before its own
    decompression-bomb check, which warns at 89 million pixels and refuses only at twice that).
    """
    if data[:8] != PNG_SIGNATURE:
        raise ValueError("not a PNG file (the PNG signature is missing)")
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file (no IHDR chunk first)")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def check_size(width: int, height: int, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS) -> None:
    if width == 0 or height == 0:
        raise ValueError(f"the PNG declares an empty image ({width}x{height})")
    if width > max_side:
        raise ImageTooLarge("width in pixels", width, max_side, "MAX_SIDE")
    if height > max_side:
        raise ImageTooLarge("height in pixels", height, max_side, "MAX_SIDE")
    if width * height > max_pixels:
        raise ImageTooLarge("pixel count", width * height, max_pixels, "MAX_PIXELS")


def decode_png(data: bytes, *, max_bytes: int = MAX_PNG_BYTES, max_side: int = MAX_SIDE,
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode PNG bytes into an (H, W, 3) uint8 RGB array (gray is replicated, alpha dropped).

    Raises ``ImageTooLarge`` for a PNG over a limit (checked before any pixel is inflated) and
    ``ValueError`` for anything that is not a PNG Pillow can decode.
    """
    if len(data) > max_bytes:
        raise ImageTooLarge("size in bytes", len(data), max_bytes, "MAX_PNG_BYTES")
    check_size(*png_header_size(data), max_side=max_side, max_pixels=max_pixels)
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            check_size(*im.size, max_side=max_side, max_pixels=max_pixels)  # as Pillow read the header
            im.load()
            rgb = im if im.mode == "RGB" else _to_rgb(im)
            return np.asarray(rgb, dtype=np.uint8).copy()
    except ImageTooLarge:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError, KeyError, TypeError) as e:
        # Pillow reports a corrupt file with any of these (UnidentifiedImageError is an OSError).
        raise ValueError(f"could not decode the PNG: {e}") from None


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit gray: keep the high byte
        return Image.fromarray((np.asarray(im, dtype=np.uint32) >> 8).astype(np.uint8), "L").convert("RGB")
    return im.convert("RGB")


def encode_png(image: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 array as an RGB PNG."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB").save(out, format="PNG")
    return out.getvalue()


def pixels_to_image(pixels: list) -> np.ndarray:
    """Accept nested [H][W][3] RGB or [H][W] grayscale values in 0..255."""
    array = np.asarray(pixels, dtype=np.float64)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError("pixels must be [H][W] gray or [H][W][3] RGB values")
    if max(array.shape[:2]) > MAX_SIDE:
        raise ImageTooLarge("side in pixels", max(array.shape[:2]), MAX_SIDE, "MAX_SIDE")
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
