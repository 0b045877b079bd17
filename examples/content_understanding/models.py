"""Small torch models with seeded weights, so every process builds identical nets.

They are untrained: the point of the example is the serving graph, not accuracy.
Outputs are deterministic for a given input (CPU, one thread).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .imaging import synthetic_image

IMAGE_SIZE = 32
CATEGORIES = ("animal", "vehicle", "scene")
LABELS = {
    "animal": ("cat", "dog", "bird", "horse"),
    "vehicle": ("car", "truck", "bicycle", "airplane"),
    "scene": ("beach", "forest", "city", "mountain"),
}
SEEDS = {"detector": 0, "animal": 1, "vehicle": 2, "scene": 3, "safety": 4}
CALIBRATION_SEEDS = range(1000, 1064)


class TinyCNN(nn.Module):
    """conv -> pool -> conv -> global average pool -> linear."""

    logit_mean: torch.Tensor
    logit_std: torch.Tensor

    def __init__(self, num_outputs: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(16, num_outputs)
        # Random nets give near-constant argmax; standardising logits against a
        # calibration set spreads predictions over all classes.
        self.register_buffer("logit_mean", torch.zeros(num_outputs))
        self.register_buffer("logit_std", torch.ones(num_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(x).flatten(1))
        return (logits - self.logit_mean) / self.logit_std

    @torch.inference_mode()
    def calibrate(self, batch: torch.Tensor) -> TinyCNN:
        logits = self.head(self.features(batch).flatten(1))
        self.logit_mean.copy_(logits.mean(dim=0))
        self.logit_std.copy_(logits.std(dim=0).clamp_min(1e-6))
        return self


def preprocess(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, 32, 32) float32 scaled to [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    x = nn.functional.interpolate(x[None], size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)[0]
    return x / 127.5 - 1.0


def build_model(name: str, num_outputs: int) -> TinyCNN:
    """Seeded weights + calibration on fixed synthetic images: identical in every process."""
    torch.manual_seed(SEEDS[name])
    batch = torch.stack([preprocess(synthetic_image(s)) for s in CALIBRATION_SEEDS])
    return TinyCNN(num_outputs).eval().calibrate(batch)


@torch.inference_mode()
def top1(model: nn.Module, x: torch.Tensor, labels: tuple[str, ...]) -> dict[str, object]:
    """Softmax top-1 as JSON-friendly {"label", "score"}; rounded so answers compare exactly."""
    probs = torch.softmax(model(x[None])[0], dim=0)
    index = int(torch.argmax(probs))
    return {"label": labels[index], "score": round(float(probs[index]), 6)}
