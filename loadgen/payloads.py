"""Realistic request bodies for the routes of ``examples/``, selectable by name (``example:NAME``).

Built here with the standard library only (no numpy, torch or serve_core), deterministic, and
checked against the examples' own decoders in the unit tests. Several bodies per payload are used
in turn, so e.g. every branch of the content-understanding pipeline gets traffic.
"""

from __future__ import annotations

import base64
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loadgen.errors import SpecError

SKLEARN_FEATURES = 4  # examples/sklearn_pipeline/app.py: NUM_FEATURES
IMAGE_SIDE = 32  # small enough for 100s of requests/s as JSON, big enough to be resized by the Preprocessor


@dataclass(frozen=True)
class ExamplePayload:
    name: str
    app: str
    method: str
    route: str
    description: str
    build: Callable[[], list[Any]]

    def bodies(self) -> list[Any]:
        return self.build()


def _feature_rows(seed: int, rows: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[round(rng.gauss(0.0, 1.5), 4) for _ in range(SKLEARN_FEATURES)] for _ in range(rows)]


def synthetic_pixels(seed: int, side: int = IMAGE_SIDE) -> list[list[list[int]]]:
    """An RGB image as nested lists [H][W][3] of 0..255: a colour gradient, a rectangle, a little noise."""
    rng = random.Random(seed)
    start = [rng.uniform(0, 255) for _ in range(3)]
    end = [rng.uniform(0, 255) for _ in range(3)]
    y0, x0 = rng.randrange(side // 2), rng.randrange(side // 2)
    h, w = rng.randrange(side // 8, side // 2), rng.randrange(side // 8, side // 2)
    fill = [rng.uniform(0, 255) for _ in range(3)]
    image = []
    for y in range(side):
        row = []
        for x in range(side):
            inside = y0 <= y < y0 + h and x0 <= x < x0 + w
            base = fill if inside else [s + (e - s) * x / (side - 1) for s, e in zip(start, end, strict=True)]
            row.append([min(255, max(0, round(v + rng.gauss(0.0, 8.0)))) for v in base])
        image.append(row)
    return image


def encode_png(pixels: list[list[list[int]]]) -> bytes:
    """8-bit RGB PNG, no filtering: what examples/content_understanding/imaging.decode_png reads."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(v for px in row for v in px) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


EXAMPLES: dict[str, ExamplePayload] = {
    p.name: p
    for p in [
        ExamplePayload(
            "sklearn", "examples/sklearn_pipeline", "POST", "/",
            f"one row of {SKLEARN_FEATURES} features: {{\"features\": [[f0, f1, f2, f3]]}} (16 different rows)",
            lambda: [{"features": _feature_rows(seed, 1)} for seed in range(16)],
        ),
        ExamplePayload(
            "sklearn-batch", "examples/sklearn_pipeline", "POST", "/",
            "8 rows per request: {\"features\": [[...] x 8]} (4 different bodies)",
            lambda: [{"features": _feature_rows(100 + seed, 8)} for seed in range(4)],
        ),
        ExamplePayload(
            "content-seed", "examples/content_understanding", "POST", "/",
            "a synthetic image by seed: {\"seed\": n}; seeds 0, 2, 3 take the animal, vehicle and scene branches",
            lambda: [{"seed": s} for s in (0, 2, 3, 1)],
        ),
        ExamplePayload(
            "content-pixels", "examples/content_understanding", "POST", "/",
            f"the image as JSON lists: {{\"pixels\": [H][W][3]}}, {IMAGE_SIDE}x{IMAGE_SIDE} RGB (4 images)",
            lambda: [{"pixels": synthetic_pixels(seed)} for seed in range(4)],
        ),
        ExamplePayload(
            "content-png", "examples/content_understanding", "POST", "/",
            f"the image as a base64 PNG: {{\"png_b64\": \"...\"}}, {IMAGE_SIDE}x{IMAGE_SIDE} RGB (4 images)",
            lambda: [{"png_b64": base64.b64encode(encode_png(synthetic_pixels(seed))).decode()} for seed in range(4)],
        ),
        ExamplePayload(
            "function", "examples/function_app", "GET", "/?name=Ada",
            "no body; the name in the query string",
            lambda: [],
        ),
    ]
}


def example(ref: str) -> ExamplePayload:
    """``example:NAME`` (or just NAME) to its payload; unknown names list the known ones."""
    name = ref.removeprefix("example:")
    if name not in EXAMPLES:
        raise SpecError([f"no example payload {name!r}; known: {', '.join(EXAMPLES)} (use example:NAME)"])
    return EXAMPLES[name]
