"""The example pipeline's PNG decoder is bounded: limits on bytes, sides and pixels are checked
before any pixel is inflated, compressed data behind the declared pixels is never inflated, and
the app answers 413 naming the limit. Decompression bombs are built here in milliseconds: a
zlib stream of zeros made of one full-flush segment repeated (valid, checksum included)."""

import asyncio
import base64
import io
import json
import pickle
import resource
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from examples.content_understanding import imaging  # noqa: E402
from examples.content_understanding.imaging import (  # noqa: E402
    MAX_PNG_BYTES,
    MAX_SIDE,
    ImageTooLarge,
    base64_limit,
    decode_png,
    encode_png,
    pixels_to_image,
    synthetic_image,
)

MiB = 1 << 20


# -- building PNGs by hand (what a hostile client sends) -----------------------------------------

def chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png(width: int, height: int, idat: bytes, depth: int = 8, color: int = 2) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return imaging.PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def zero_deflate(total: int) -> bytes:
    """A valid zlib stream that inflates to ``total`` zero bytes, about 1/1000 of that long."""
    c = zlib.compressobj(9)
    block = bytes(MiB)
    n, rest = divmod(total, MiB)
    parts = []
    if n:
        parts.append(c.compress(block) + c.flush(zlib.Z_FULL_FLUSH))
        if n > 1:  # after a full flush the compressor starts afresh: the next segment repeats as is
            parts.append((c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)) * (n - 1))
    parts.append(c.compress(bytes(rest)) + c.flush(zlib.Z_FULL_FLUSH))
    adler = (total % 65521) << 16 | 1  # Adler-32 of zeros: the byte sum stays 1, the second sum counts bytes
    return b"".join(parts) + b"\x03\x00" + struct.pack(">I", adler)  # an empty final block, the checksum


class Memory:
    """Peak Python allocations (tracemalloc: bytes objects, numpy arrays) and growth of the
    process' peak resident size (ru_maxrss: Pillow's C buffers too) while the block runs."""

    def __enter__(self):
        self.rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        tracemalloc.start()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.python_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        self.rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.rss0
        return False


def test_zero_deflate_is_a_valid_stream():
    for total in (0, 5, MiB, 3 * MiB + 17):
        assert zlib.decompress(zero_deflate(total)) == bytes(total)


# -- what decodes ----------------------------------------------------------------------------------

def test_round_trip_and_modes():
    image = synthetic_image(3)
    assert np.array_equal(decode_png(encode_png(image)), image)
    for mode in ("L", "LA", "RGBA", "P", "1", "I;16"):
        buf = io.BytesIO()
        Image.new(mode, (5, 4)).save(buf, format="PNG")
        out = decode_png(buf.getvalue())
        assert out.shape == (4, 5, 3) and out.dtype == np.uint8, mode
    gray16 = png(2, 1, zlib.compress(b"\0" + struct.pack(">HH", 0x1234, 0xFF00)), depth=16, color=0)
    assert decode_png(gray16).tolist() == [[[0x12] * 3, [0xFF] * 3]]  # the high byte


def test_not_a_png_is_a_value_error_that_says_so():
    for data, words in [(b"", "signature"), (b"GIF89a" + bytes(100), "signature"),
                        (imaging.PNG_SIGNATURE + chunk(b"IEND", b""), "IHDR"),
                        (png(4, 4, b"not zlib"), "could not decode"),
                        (png(4, 4, zlib.compress(bytes(10))), "could not decode")]:  # too few pixels
        with pytest.raises(ValueError, match=words) as e:
            decode_png(data)
        assert not isinstance(e.value, ImageTooLarge)


# -- the limits ------------------------------------------------------------------------------------

def test_byte_limit_is_checked_first_and_named():
    with pytest.raises(ImageTooLarge) as e:
        decode_png(bytes(MAX_PNG_BYTES + 1))
    assert (e.value.limit_name, e.value.value, e.value.limit) == ("MAX_PNG_BYTES", MAX_PNG_BYTES + 1, MAX_PNG_BYTES)
    assert "MAX_PNG_BYTES" in str(e.value) and "send a smaller image" in str(e.value)
    assert isinstance(e.value, ValueError)  # callers that only know ValueError still answer 4xx
    again = pickle.loads(pickle.dumps(e.value))  # it crosses replicas (Downloader -> ingress) pickled
    assert type(again) is ImageTooLarge and str(again) == str(e.value) and again.limit_name == "MAX_PNG_BYTES"


def test_side_and_pixel_limits():
    with pytest.raises(ImageTooLarge, match=r"width in pixels is 1025, over the limit of 1024 \(MAX_SIDE\)"):
        decode_png(png(MAX_SIDE + 1, 1, zero_deflate(MAX_SIDE + 2)))
    with pytest.raises(ImageTooLarge, match="height in pixels"):
        decode_png(png(1, MAX_SIDE + 1, zero_deflate(2 * (MAX_SIDE + 1))))
    with pytest.raises(ImageTooLarge, match=r"pixel count is 100, over the limit of 99 \(MAX_PIXELS\)"):
        decode_png(png(10, 10, zero_deflate(10 * 31)), max_pixels=99)
    with pytest.raises(ImageTooLarge, match="MAX_SIDE"):
        pixels_to_image([[0] * (MAX_SIDE + 1)])
    with pytest.raises(ValueError, match="empty image"):
        decode_png(png(0, 5, zero_deflate(5)))


def test_a_30000_square_bomb_is_refused_before_inflating():
    """900 million zero pixels (1-bit gray) in about 110 KB: refused from the header alone."""
    side = 30_000
    bomb = png(side, side, zero_deflate(side * (1 + side // 8)), depth=1, color=0)
    assert len(bomb) < 400_000
    with Memory() as m, pytest.raises(ImageTooLarge) as e:
        decode_png(bomb)
    assert e.value.limit_name == "MAX_SIDE" and e.value.value == side
    assert m.python_peak < 2 * MiB and m.rss_growth < 16 * MiB and m.seconds < 1, vars(m)


def test_a_7_mb_png_does_not_inflate_to_gigabytes():
    """A header within the limits and 7 MB of IDAT that would inflate to 6.8 GiB: Pillow inflates
    the declared 1024x1024 pixels and stops; the rest is never inflated."""
    stream = zero_deflate(int(6.8 * (1 << 30)))
    for width, height in [(MAX_SIDE, MAX_SIDE), (10, 10)]:
        bomb = png(width, height, stream)
        assert 7 * 10**6 < len(bomb) <= MAX_PNG_BYTES
        with Memory() as m:
            out = decode_png(bomb)
        assert out.shape == (height, width, 3) and not out.any()
        # the image itself is 3 MiB (4 MiB while Pillow holds it as RGBX)
        assert m.python_peak < 16 * MiB and m.rss_growth < 64 * MiB and m.seconds < 2, vars(m)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_bytes_decode_or_raise_value_error(data):
    """Random bytes, truncations and byte flips of a valid PNG: an RGB image within the limits,
    or ValueError; never another exception."""
    valid = encode_png(synthetic_image(data.draw(st.integers(0, 3)), size=16))
    kind = data.draw(st.sampled_from(["random", "truncate", "flip", "header"]))
    if kind == "random":
        blob = imaging.PNG_SIGNATURE + data.draw(st.binary(max_size=300))
    elif kind == "truncate":
        blob = valid[: data.draw(st.integers(0, len(valid)))]
    elif kind == "flip":
        b = bytearray(valid)
        for _ in range(data.draw(st.integers(1, 8))):
            b[data.draw(st.integers(0, len(b) - 1))] = data.draw(st.integers(0, 255))
        blob = bytes(b)
    else:  # a lying header: any size, any depth and colour type, with a valid CRC
        w, h = data.draw(st.integers(0, 2**31 - 1)), data.draw(st.integers(0, 2**31 - 1))
        blob = png(w, h, zero_deflate(data.draw(st.integers(0, 4096))),
                   depth=data.draw(st.sampled_from([1, 2, 4, 8, 16, 3])), color=data.draw(st.sampled_from([0, 2, 3, 4, 6, 5])))
    try:
        out = decode_png(blob)
    except ValueError:
        return
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert 0 < out.shape[0] <= MAX_SIDE and 0 < out.shape[1] <= MAX_SIDE


# -- the app -----------------------------------------------------------------------------------------

class Resp:
    """A fake DeploymentResponse: awaiting it runs the call, resolving responses among its
    arguments first (as serve_core does when a response is passed on)."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def resolve(self):
        return self.fn(*[a.resolve() if isinstance(a, Resp) else a for a in self.args])

    def __await__(self):
        if False:
            yield
        return self.resolve()


class Handle:
    def __init__(self, fn=None, **methods):
        self.fn = fn
        for name, m in methods.items():
            setattr(self, name, Handle(m))

    def remote(self, *args):
        return Resp(self.fn, args)


def pipeline(downloader_fetch):
    app_mod = pytest.importorskip("examples.content_understanding.app")
    cls = app_mod.ContentPipeline.func_or_class
    model = Handle(lambda x: {"label": "cat", "score": 1.0})
    return cls(
        Handle(fetch=downloader_fetch), Handle(lambda image: image), Handle(lambda x: {"category": "animal", "score": 1.0}),
        model, model, model,
        Handle(brightness=lambda x: 0.5, contrast=lambda x: 0.5, safety=lambda x: {"label": "safe", "score": 1.0}),
    )


def post(app, body):
    from starlette.requests import Request

    raw = json.dumps(body).encode()

    async def receive():
        return {"type": "http.request", "body": raw, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
    out = asyncio.run(app(Request(scope, receive)))
    if isinstance(out, dict):
        return 200, out
    return out.status_code, json.loads(out.body)


def real_fetch():
    app_mod = pytest.importorskip("examples.content_understanding.app")
    return app_mod.Downloader.func_or_class().fetch


def test_app_answers_413_naming_the_limit_for_a_bomb():
    side = 30_000
    bomb = png(side, side, zero_deflate(side * (1 + side // 8)), depth=1, color=0)
    status, body = post(pipeline(real_fetch()), {"png_b64": base64.b64encode(bomb).decode()})
    assert status == 413 and body["limit"] == "MAX_SIDE" and body["max"] == MAX_SIDE
    assert "30000" in body["error"] and "MAX_SIDE" in body["error"] and "Traceback" not in body["error"]


def test_app_refuses_too_long_base64_before_calling_the_downloader():
    def never(payload):
        raise AssertionError("the downloader must not be called")

    text = "A" * (base64_limit() + 4)
    status, body = post(pipeline(never), {"png_b64": text})
    assert status == 413 and body["limit"] == "MAX_PNG_BYTES" and str(len(text)) in body["error"]
    assert base64_limit() == len(base64.b64encode(bytes(MAX_PNG_BYTES)))


def test_app_decodes_a_good_png_and_answers_400_for_a_bad_one():
    good = base64.b64encode(encode_png(synthetic_image(1))).decode()
    status, body = post(pipeline(real_fetch()), {"png_b64": good})
    assert status == 200 and body["label"] == "cat"
    status, body = post(pipeline(real_fetch()), {"png_b64": base64.b64encode(b"GIF89a").decode()})
    assert status == 400 and body == {"error": "could not decode image"}
