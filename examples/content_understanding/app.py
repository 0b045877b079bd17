"""Content understanding pipeline (the classic Ray Serve model-composition demo).

    download -> preprocess -> detect --(category)--> {animal|vehicle|scene} classifier
                         \\-> quality/safety checks, fanned out in parallel

Every step is its own deployment with a fractional CPU so the whole graph fits
on a 2-core machine. See README.md for how to run it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

import numpy as np
import torch
from starlette.requests import Request
from starlette.responses import JSONResponse

import serve_core as serve

from .imaging import ImageTooLarge, base64_limit, decode_png, describe, pixels_to_image, synthetic_image
from .models import CATEGORIES, LABELS, build_model, preprocess, top1

# A DeploymentHandle; left untyped so this module only relies on `serve.deployment`.
Handle = Any
SOURCES = ("seed", "pixels", "png_b64")


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Downloader:
    """Turns the request's image reference into pixels. Never touches the network."""

    def fetch(self, payload: dict[str, Any]) -> np.ndarray:
        try:
            return self._decode(payload)
        except TypeError as exc:  # e.g. {"seed": null}: still the client's fault
            raise ValueError(str(exc)) from exc

    def _decode(self, payload: dict[str, Any]) -> np.ndarray:
        if "seed" in payload:
            return synthetic_image(int(payload["seed"]))
        if "pixels" in payload:
            return pixels_to_image(payload["pixels"])
        try:
            data = base64.b64decode(payload["png_b64"], validate=True)
        except (binascii.Error, TypeError) as exc:
            raise ValueError(f"png_b64 is not valid base64: {exc}") from exc
        return decode_png(data)


@serve.deployment(ray_actor_options={"num_cpus": 0.2})
class Preprocessor:
    def __init__(self) -> None:
        torch.set_num_threads(1)  # many replicas share 2 cores; avoid oversubscription

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        return preprocess(image)


@serve.deployment(ray_actor_options={"num_cpus": 0.3})
class Detector:
    def __init__(self) -> None:
        torch.set_num_threads(1)
        self.model = build_model("detector", len(CATEGORIES))

    def __call__(self, x: torch.Tensor) -> dict[str, Any]:
        result = top1(self.model, x, CATEGORIES)
        return {"category": result["label"], "score": result["score"]}


class _Classifier:
    """Shared body of the three per-category classifiers."""

    category: str

    def __init__(self) -> None:
        torch.set_num_threads(1)
        self.model = build_model(self.category, len(LABELS[self.category]))

    def __call__(self, x: torch.Tensor) -> dict[str, Any]:
        return top1(self.model, x, LABELS[self.category])


@serve.deployment(ray_actor_options={"num_cpus": 0.2})
class AnimalClassifier(_Classifier):
    category = "animal"


@serve.deployment(ray_actor_options={"num_cpus": 0.2})
class VehicleClassifier(_Classifier):
    category = "vehicle"


@serve.deployment(ray_actor_options={"num_cpus": 0.2})
class SceneClassifier(_Classifier):
    category = "scene"


@serve.deployment(ray_actor_options={"num_cpus": 0.2})
class QualityChecker:
    """Independent checks, each exposed as its own method so they can run in parallel."""

    def __init__(self) -> None:
        torch.set_num_threads(1)
        self.safety_model = build_model("safety", 2)

    def brightness(self, x: torch.Tensor) -> float:
        return round(float((x.mean() + 1.0) / 2.0), 6)  # input is scaled to [-1, 1]

    def contrast(self, x: torch.Tensor) -> float:
        return round(float(x.std()), 6)

    def safety(self, x: torch.Tensor) -> dict[str, Any]:
        return top1(self.safety_model, x, ("safe", "unsafe"))


def too_large(exc: ImageTooLarge) -> JSONResponse:
    """413 naming the limit. From the error's fields, not str(exc): on Ray Serve that text
    carries the remote traceback, which is for logs, not clients."""
    return JSONResponse({"error": describe(exc), "limit": exc.limit_name, "max": exc.limit}, status_code=413)


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class ContentPipeline:
    """HTTP ingress: POST {"seed": 3} | {"pixels": [[[r, g, b], ...], ...]} | {"png_b64": "..."}."""

    def __init__(
        self,
        downloader: Handle,
        preprocessor: Handle,
        detector: Handle,
        animal: Handle,
        vehicle: Handle,
        scene: Handle,
        checker: Handle,
    ) -> None:
        self.downloader = downloader
        self.preprocessor = preprocessor
        self.detector = detector
        self.classifiers = {"animal": animal, "vehicle": vehicle, "scene": scene}
        self.checker = checker

    async def __call__(self, request: Request) -> dict[str, Any] | JSONResponse:
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
        if not isinstance(payload, dict) or sum(key in payload for key in SOURCES) != 1:
            return JSONResponse({"error": f"body must have exactly one of {list(SOURCES)}"}, status_code=400)
        png_b64 = payload.get("png_b64")
        if isinstance(png_b64, str) and len(png_b64) > base64_limit():  # refused before it travels on
            return too_large(ImageTooLarge("base64 length", len(png_b64), base64_limit(), "MAX_PNG_BYTES"))
        try:
            return await self.analyze(payload)
        except ImageTooLarge as exc:  # over a decoding limit, refused before its pixels were inflated
            return too_large(exc)
        except ValueError:
            # Raised by the Downloader (bad pixels/PNG/base64) and re-raised here
            # through the awaited response chain; a client error, not a crash.
            return JSONResponse({"error": "could not decode image"}, status_code=400)

    async def analyze(self, payload: dict[str, Any]) -> dict[str, Any]:
        # Chaining: responses are passed on unresolved; the framework resolves them
        # on the callee side, so the pixels never round-trip through this replica.
        image = self.downloader.fetch.remote(payload)
        tensor = self.preprocessor.remote(image)
        detection = await self.detector.remote(tensor)

        # Dynamic dispatch is plain Python: pick the handle from the detector output.
        category = detection["category"]
        label = self.classifiers[category].remote(tensor)

        # Parallel fan-out: all checks are in flight at once (and alongside `label`).
        brightness, contrast, safety = await asyncio.gather(
            self.checker.brightness.remote(tensor),
            self.checker.contrast.remote(tensor),
            self.checker.safety.remote(tensor),
        )
        result = await label
        return {
            "category": category,
            "label": result["label"],
            "score": result["score"],
            "checks": {
                "detector_score": detection["score"],
                "brightness": brightness,
                "contrast": contrast,
                "safety": safety,
            },
        }


app = ContentPipeline.bind(
    Downloader.bind(),
    Preprocessor.bind(),
    Detector.bind(),
    AnimalClassifier.bind(),
    VehicleClassifier.bind(),
    SceneClassifier.bind(),
    QualityChecker.bind(),
)
