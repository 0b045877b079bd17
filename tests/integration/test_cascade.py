"""The cascade example on a real cluster: confident answers come from the small model, the
rest from the large one, and the counts say which share each took."""

import requests

import serve_core as serve
from examples.cascade.app import app
from tests.integration.conftest import BASE


def test_low_confidence_falls_through_to_the_large_model(serve_core_app):
    h = serve.run(app, name="cascade", route_prefix="/cascade")
    short = requests.post(BASE + "/cascade", json={"text": "Is it on?"}, timeout=10).json()
    assert short == {"label": "question", "confidence": 0.95, "answered_by": "small"}
    long = requests.post(BASE + "/cascade", json={"text": "A much longer sentence than the small model trusts. "},
                         timeout=10).json()
    assert long["answered_by"] == "large" and long["small_confidence"] == 0.55 and long["confidence"] == 0.99
    for text in ["ok", "fine?", "x" * 40]:
        h.predict.remote({"text": text}).result(timeout_s=10)
    stats = requests.get(BASE + "/cascade/stats", timeout=10).json()
    assert stats["answered"] == {"small": 3, "large": 2} and stats["kept_by_small"] == 0.6
