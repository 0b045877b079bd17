"""Example payloads match what the examples' own code accepts."""

import base64
import json

import pytest

from loadgen.errors import SpecError
from loadgen.payloads import EXAMPLES, SKLEARN_FEATURES, encode_png, example, synthetic_pixels

pytestmark = pytest.mark.unit


def test_every_example_builds_json_bodies_deterministically():
    for ex in EXAMPLES.values():
        bodies = ex.bodies()
        assert json.dumps(bodies) == json.dumps(ex.bodies())
        assert ex.route.startswith("/") and ex.method in ("GET", "POST")
        assert bool(bodies) == (ex.method == "POST")


def test_sklearn_rows_have_the_models_feature_count():
    for name, rows in (("sklearn", 1), ("sklearn-batch", 8)):
        for body in example(name).bodies():
            assert len(body["features"]) == rows
            assert all(len(row) == SKLEARN_FEATURES and all(isinstance(v, float) for v in row)
                       for row in body["features"])
    assert len({json.dumps(b) for b in example("sklearn").bodies()}) == 16


def test_content_seeds_cover_the_three_branches():
    assert {b["seed"] for b in example("example:content-seed").bodies()} >= {0, 2, 3}


def test_pixels_and_png_decode_with_the_examples_imaging_code():
    np = pytest.importorskip("numpy")
    imaging = pytest.importorskip("examples.content_understanding.imaging")
    for body in example("content-pixels").bodies():
        image = imaging.pixels_to_image(body["pixels"])
        assert image.shape == (32, 32, 3)
    for seed, body in enumerate(example("content-png").bodies()):
        decoded = imaging.decode_png(base64.b64decode(body["png_b64"], validate=True))
        assert np.array_equal(decoded, np.asarray(synthetic_pixels(seed), dtype=np.uint8))


def test_pixels_are_bytes_and_images_differ():
    a, b = synthetic_pixels(0, side=8), synthetic_pixels(1, side=8)
    assert a != b
    assert all(0 <= v <= 255 for row in a for px in row for v in px)
    assert encode_png(a)[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_example_lists_the_known_ones():
    with pytest.raises(SpecError, match="no example payload 'nope'; known: sklearn, sklearn-batch"):
        example("example:nope")
