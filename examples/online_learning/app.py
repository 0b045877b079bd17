"""Online learning: a model that learns from a stream of labelled feedback while it serves.
One Learner replica owns the model and updates it per example (``SGDClassifier.partial_fit``
on hashed words); each update bumps the model version. Predictor replicas answer from a copy
of the weights and pull a newer copy in the background, so no request waits on learning and
no replica restarts to pick up a new model.

    POST /           {"text": ...}                -> {"label": ..., "probabilities": {...}, "version": 7, "pid": ...}
    POST /feedback   {"text": ..., "label": ...}   -> {"version": 8}
    GET  /stats                                    -> the Learner's version and examples, this replica's version and pulls

One Learner (``num_replicas=1``): more would each learn on their own share of the feedback.
A failed pull keeps the old weights, so a Learner outage freezes the model, not the service.
The model is in memory only: a restarted Learner starts again from version 0, and Predictors
keep their newer copy until it catches up.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import SGDClassifier
from starlette.requests import Request
from starlette.responses import JSONResponse

import serve_core as serve

log = logging.getLogger(__name__)
CLASSES = ("negative", "positive")
# Stateless, so the Learner and every Predictor hash a word to the same column; 4096 columns
# keep a copy of the weights at 32 KB.
VECTORIZER = HashingVectorizer(n_features=2**12, alternate_sign=False)


def fields(body: Any, classes: tuple[str, ...] | None = None) -> tuple[str, Any]:
    """The text of a request body and, given the classes, its label; errors name the field."""
    if not isinstance(body, dict):
        raise ValueError(f"body: send a JSON object like {{\"text\": \"...\"}}, got {type(body).__name__}")
    text, label = body.get("text"), body.get("label")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"field 'text': give a non-empty string, got {text!r}")
    if classes is not None and "label" not in body:
        raise ValueError(f"field 'label' is missing: give one of {', '.join(classes)}")
    if classes is not None and label not in classes:
        raise ValueError(f"field 'label': {label!r} is not one of {', '.join(classes)}")
    return text, label


@dataclass(frozen=True)
class Weights:
    """One version of the model: what a Predictor needs to answer, without sklearn's state."""

    version: int
    classes: tuple[str, ...]  # sorted, as sklearn orders the rows of coef
    coef: np.ndarray  # (1, n_features) for two classes, else (n_classes, n_features)
    intercept: np.ndarray

    def predict(self, text: str) -> dict[str, Any]:
        p = 1.0 / (1.0 + np.exp(-((VECTORIZER.transform([text]) @ self.coef.T)[0] + self.intercept)))
        probs = np.array([1.0 - p[0], p[0]]) if len(self.classes) == 2 else p / p.sum()  # as sklearn's log loss
        return {"label": self.classes[int(np.argmax(probs))], "version": self.version,
                "probabilities": {c: round(float(q), 6) for c, q in zip(self.classes, probs, strict=True)}}


class OnlineModel:
    """The Learner's model and its version; the lock keeps an update and a copy apart."""

    def __init__(self, classes: tuple[str, ...] = CLASSES, learning_rate: float = 0.5) -> None:
        if len(set(classes)) < 2 or not learning_rate > 0:
            raise ValueError(f"classes={classes!r}, learning_rate={learning_rate!r}: give two or more labels and a step above 0")
        self.classes = tuple(sorted(classes))
        self.clf = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=learning_rate, alpha=1e-5)
        self.version, self.counts = 0, dict.fromkeys(self.classes, 0)
        self._lock = threading.Lock()

    def learn(self, text: str, label: str) -> int:
        if label not in self.classes:
            raise ValueError(f"label {label!r} is not one of {', '.join(self.classes)}")
        with self._lock:
            self.clf.partial_fit(VECTORIZER.transform([text]), [label], classes=list(self.classes))
            self.version += 1
            self.counts[label] += 1
            return self.version

    def weights(self) -> Weights:
        with self._lock:
            if self.version == 0:  # untrained: every class equally likely
                rows = 1 if len(self.classes) == 2 else len(self.classes)
                return Weights(0, self.classes, np.zeros((rows, VECTORIZER.n_features)), np.zeros(rows))
            return Weights(self.version, self.classes, self.clf.coef_.copy(), self.clf.intercept_.copy())


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0.1})
class Learner:
    def __init__(self, classes: tuple[str, ...] = CLASSES, learning_rate: float = 0.5) -> None:
        self.model = OnlineModel(classes, learning_rate)

    def learn(self, text: str, label: str) -> int:
        return self.model.learn(text, label)

    def weights(self, since: int = -1) -> Weights | None:
        """None when the caller has the current version already, so an idle pull is a few bytes."""
        return None if self.model.version == since else self.model.weights()

    def stats(self) -> dict[str, Any]:
        return {"version": self.model.version, "examples": dict(self.model.counts)}


@serve.deployment(num_replicas=2, ray_actor_options={"num_cpus": 0.1})
class Predictor:
    def __init__(self, learner: Any, classes: tuple[str, ...] = CLASSES, refresh_s: float = 0.25) -> None:
        if not refresh_s > 0:
            raise ValueError(f"refresh_s={refresh_s!r}: give the seconds between weight pulls, e.g. 0.25")
        self.learner, self.classes, self.refresh_s = learner, tuple(classes), refresh_s
        self.current = OnlineModel(self.classes).weights()  # version 0 until the first pull
        self.pulls = {"updated": 0, "failed": 0}
        threading.Thread(target=self._refresh_loop, name="weights-refresh", daemon=True).start()

    def _refresh_loop(self) -> None:
        # Off the event loop: requests read self.current, this thread swaps in a newer copy whole.
        failing = False
        while True:
            try:
                new = self.learner.weights.remote(self.current.version).result(timeout_s=5)
                if new is not None and new.version > self.current.version:
                    self.current, self.pulls["updated"] = new, self.pulls["updated"] + 1
                if failing:
                    log.warning("weights pull works again; serving version %d", self.current.version)
                failing = False
            except Exception as e:
                self.pulls["failed"] += 1
                if not failing:  # once per outage, not four times a second
                    log.warning("weights pull from the Learner failed, still serving version %d: %s", self.current.version, e)
                failing = True
            time.sleep(self.refresh_s)

    async def __call__(self, request: Request) -> Any:
        if request.url.path.endswith("/stats"):
            return await self.stats()
        try:
            body = await request.json()
            if request.url.path.endswith("/feedback"):
                return await self.feedback(body)
            return self.predict(body)
        except ValueError as e:  # also a body that is not JSON
            return JSONResponse({"error": "BadRequest", "message": str(e)}, status_code=400)

    def predict(self, payload: Any) -> dict[str, Any]:
        return {**self.current.predict(fields(payload)[0]), "pid": os.getpid()}

    async def feedback(self, payload: Any) -> dict[str, Any]:
        return {"version": await self.learner.learn.remote(*fields(payload, self.classes))}

    async def stats(self) -> dict[str, Any]:
        return {"learner": await self.learner.stats.remote(),
                "replica": {"pid": os.getpid(), "version": self.current.version, "pulls": dict(self.pulls)}}


app = Predictor.bind(Learner.bind())
