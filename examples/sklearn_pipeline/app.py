"""Scikit-learn model serving: StandardScaler + LogisticRegression.

The model is trained in the constructor on a fixed synthetic dataset, so every
replica (and every framework running this file) serves the identical model.

HTTP:   POST / {"features": [[f0, f1, f2, f3], ...]}
        -> {"predictions": [...], "probabilities": [[p0, p1], ...]}
Handle: await handle.predict_one.remote([f0, f1, f2, f3])
        -> {"prediction": int, "probabilities": [p0, p1]}   (batched server-side)
Batch scoring: serve-core score items.jsonl --app sklearn --method score_batch --out scores.jsonl
        (items: {"id": ..., "features": [f0, f1, f2, f3]} per line)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from starlette.requests import Request
from starlette.responses import JSONResponse

import serve_core as serve

NUM_FEATURES = 4


def _round(values: np.ndarray) -> list[Any]:
    # Rounded so answers can be compared exactly across serving frameworks.
    return np.round(values, 6).tolist()


@serve.deployment(ray_actor_options={"num_cpus": 0.25})
class SklearnClassifier:
    def __init__(self) -> None:
        features, labels = make_classification(
            n_samples=200,
            n_features=NUM_FEATURES,
            n_informative=3,
            n_redundant=0,
            random_state=0,
        )
        self.model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(random_state=0))]).fit(
            features, labels
        )

    def _predict(self, rows: list[list[float]]) -> tuple[list[int], list[list[float]]]:
        matrix = np.asarray(rows, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != NUM_FEATURES:
            raise ValueError(f"features must be a list of rows of {NUM_FEATURES} numbers")
        predictions = self.model.predict(matrix).astype(int).tolist()
        return predictions, _round(self.model.predict_proba(matrix))

    async def __call__(self, request: Request) -> dict[str, Any] | JSONResponse:
        try:
            body = await request.json()
            predictions, probabilities = self._predict(body["features"])
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return {"predictions": predictions, "probabilities": probabilities}

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def predict_one(self, rows: list[list[float]]) -> list[dict[str, Any]]:
        # Callers send one row each; concurrent calls arrive here as one matrix,
        # so a single vectorised predict serves up to 8 requests.
        predictions, probabilities = self._predict(rows)
        return [{"prediction": p, "probabilities": probs} for p, probs in zip(predictions, probabilities, strict=True)]

    def score_batch(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Batch scoring (`serve-core score ... --method score_batch`): items with "features"
        (one row), one result per item, in order."""
        predictions, probabilities = self._predict([it["features"] for it in items])
        return [{"prediction": p, "probabilities": probs} for p, probs in zip(predictions, probabilities, strict=True)]


app = SklearnClassifier.bind()
