"""Normalisation statistics: the per-bin mean and std of the training log-mel in dB.

They travel with every checkpoint (the normalised log-mel is the model's only audio
currency), so this module needs only numpy: sampling and decoding import it without the
data pipeline, TensorFlow or tfds.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from audiolm_jax import atomic


@dataclasses.dataclass(frozen=True)
class NormStats:
    """Per-mel-bin mean and std of the training log-mel (dB), each `[n_mels]`."""

    mean: np.ndarray
    std: np.ndarray

    def normalise(self, log_mel_db: np.ndarray) -> np.ndarray:
        """dB `[..., n_mels]` → zero-mean unit-variance per bin."""
        return ((log_mel_db - self.mean) / self.std).astype(np.float32)

    def denormalise(self, normalised: np.ndarray) -> np.ndarray:
        """Inverse of `normalise`: back to dB `[..., n_mels]`."""
        return (np.asarray(normalised) * self.std + self.mean).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": [float(x) for x in self.mean], "std": [float(x) for x in self.std]}

    @classmethod
    def from_dict(cls, data: dict, source: str = "normalisation statistics") -> "NormStats":
        try:
            mean = np.asarray(data["mean"], np.float32)
            std = np.asarray(data["std"], np.float32)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{source}: expected {{'mean': [...], 'std': [...]}} ({e})") from None
        if mean.shape != std.shape or mean.ndim != 1 or not np.all(std > 0):
            raise ValueError(f"{source}: mean and std must be equal-length lists with std > 0")
        return cls(mean, std)

    def save(self, path: str) -> None:
        atomic.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str) -> "NormStats":
        with open(path) as f:
            return cls.from_dict(json.load(f), f"'{path}'")
