"""The frame cap on the direct connections, through real handles and the real proxy.

The tier's serve_core runs with max_body_bytes = 1 MiB, so its frames are capped at 2 MiB.
"""

import pytest

import serve_core as serve
from serve_core.errors import FrameTooLargeError
from tests.integration.apps import Counter, Sizes
from tests.integration.conftest import MAX_BODY, post

CAP = MAX_BODY + 1024 * 1024


def test_a_request_over_the_cap_is_refused_at_the_caller_naming_the_setting(serve_core_app):
    handle = serve.run(Counter.bind(), name="cap", route_prefix=None)
    with pytest.raises(FrameTooLargeError, match="max_frame_bytes"):
        handle.add.remote(b"x" * (CAP + 1)).result()
    assert handle.add.remote(1).result() == 1  # the connection and the replica are fine


def test_a_reply_over_the_cap_becomes_an_error_naming_the_setting(serve_core_app):
    handle = serve.run(Sizes.bind(), name="cap_reply", route_prefix=None)
    with pytest.raises(FrameTooLargeError, match="max_frame_bytes"):
        handle.blow_up.remote(CAP + 1).result()
    assert handle.blow_up.remote(10).result() == b"y" * 10


def test_the_largest_body_the_proxy_accepts_fits_in_a_frame(serve_core_app):
    serve.run(Sizes.bind(), name="cap_http", route_prefix="/echo")
    r = post("/echo", data=b"z" * MAX_BODY)
    assert r.status_code == 200 and r.json()["size"] == MAX_BODY
