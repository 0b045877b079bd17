"""The online-learning example on a real cluster: while feedback streams into the Learner,
a probe's answer flips from negative to positive within 12 examples, the Predictor replicas
that give it are the same processes as before (no restart), a concurrent stream of
predictions at about 20 requests/s gets 200 every time, and bad feedback gets a 400 that
names the field."""

import threading
import time

import requests

import serve_core as serve
from examples.online_learning.app import app
from examples.online_learning.sample_feedback import DRIFT, PROBE, SEED
from tests.integration.conftest import BASE, post
from tests.unit.test_online_learning import FLIPS_WITHIN

URL = BASE + "/online"


def replicas():
    deps = serve.status().applications["online"].deployments
    return {name: sorted((r["replica_id"], r["pid"]) for r in d.replicas) for name, d in deps.items()}


def predict(text, session=requests):
    r = session.post(URL, json={"text": text}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def answer_at(version, deadline_s=15.0):
    """The probe's answer from a replica that has pulled ``version`` (pulls run every 0.25 s)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        got = predict(PROBE)
        if got["version"] >= version:
            return got
        time.sleep(0.05)
    raise AssertionError(f"no Predictor reached version {version} in {deadline_s} s; last answer {got}")


class Stream(threading.Thread):
    """Predictions at about 20 requests/s; every answer or failure is kept."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop, self.answers, self.failures = threading.Event(), [], []

    def run(self):
        with requests.Session() as s:
            while not self.stop.is_set():
                try:
                    r = s.post(URL, json={"text": "the encore was sick"}, timeout=10)
                    (self.answers if r.status_code == 200 else self.failures).append(r.json() if r.status_code == 200 else r.text)
                except requests.RequestException as e:
                    self.failures.append(repr(e))
                time.sleep(0.05)


def test_answers_change_with_feedback_without_restarts_or_dropped_requests(serve_core_app):
    serve.run(app, name="online", route_prefix="/online")
    before = replicas()
    assert len(before["Predictor"]) == 2 and len(before["Learner"]) == 1, before
    for i, (text, label) in enumerate(SEED, 1):
        assert post("/online/feedback", json={"text": text, "label": label}).json() == {"version": i}
    start = answer_at(len(SEED))
    assert start["label"] == "negative", start

    stream, t0 = Stream(), time.monotonic()
    stream.start()
    curve, flipped = [], None
    for i, (text, label) in enumerate(DRIFT, 1):
        version = post("/online/feedback", json={"text": text, "label": label}).json()["version"]
        got = answer_at(version)
        curve.append(round(got["probabilities"]["positive"], 3))
        if flipped is None and got["label"] == "positive":
            flipped = i
        if flipped is not None and i >= flipped + 8:
            break
    time.sleep(1.0)  # the stream goes on past the last update
    stream.stop.set()
    stream.join(timeout=15)
    rate = len(stream.answers) / (time.monotonic() - t0)

    print(f"\nP(positive) of the probe: {start['probabilities']['positive']} at version {start['version']}, "
          f"then after each drift example: {curve}; flipped after {flipped}; stream: {len(stream.answers)} answers, {rate:.1f}/s")
    assert flipped is not None and flipped <= FLIPS_WITHIN, curve
    assert curve[-1] > start["probabilities"]["positive"] + 0.1, curve

    assert stream.failures == [] and len(stream.answers) >= 40, (stream.failures[:3], len(stream.answers))
    seen: dict[int, int] = {}
    for a in stream.answers:  # each replica only ever moves forward, while it answers
        assert a["version"] >= seen.get(a["pid"], 0), (a, seen)
        seen[a["pid"]] = a["version"]
    assert len({a["version"] for a in stream.answers}) > 5, "the stream should see the model change under it"

    after = replicas()
    assert after == before, (before, after)
    assert set(seen) <= {pid for _, pid in after["Predictor"]}, (seen, after)
    stats = requests.get(URL + "/stats", timeout=10).json()
    assert stats["learner"]["version"] == stats["replica"]["version"] == len(SEED) + i, stats


def test_bad_feedback_gets_a_400_naming_the_field(serve_core_app):
    serve.run(app, name="online", route_prefix="/online")
    for body, field in [({"text": "so sick"}, "field 'label' is missing"),
                        ({"text": "so sick", "label": 1}, "field 'label': 1 is not one of negative, positive"),
                        ({"label": "positive"}, "field 'text'")]:
        r = post("/online/feedback", json=body)
        assert r.status_code == 400 and field in r.json()["message"], (body, r.status_code, r.text)
    r = post("/online", data=b"not json", headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert predict("so sick")["version"] == 0  # nothing bad was learned
