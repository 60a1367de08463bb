"""Normalisation statistics: the per-bin mean and std of the training log-mel in dB.

They travel with every checkpoint (the normalised log-mel is the model's only audio
currency), so this module needs only numpy: sampling and decoding import it without the
data pipeline, TensorFlow or tfds.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Optional

import numpy as np

from audiolm_jax import atomic


@dataclasses.dataclass(frozen=True)
class NormStats:
    """Per-mel-bin mean, std, and lowest and highest level of the training log-mel (dB),
    each `[n_mels]`. `low`/`high` bound generated frames to the range training ever showed
    (statistics written before they existed load with None: no per-bin bound)."""

    mean: np.ndarray
    std: np.ndarray
    low: Optional[np.ndarray] = None
    high: Optional[np.ndarray] = None

    def normalise(self, log_mel_db: np.ndarray) -> np.ndarray:
        """dB `[..., n_mels]` → zero-mean unit-variance per bin."""
        return ((log_mel_db - self.mean) / self.std).astype(np.float32)

    def denormalise(self, normalised: np.ndarray) -> np.ndarray:
        """Inverse of `normalise`: back to dB `[..., n_mels]`."""
        return (np.asarray(normalised) * self.std + self.mean).astype(np.float32)

    def bounds_db(self) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """(`low`, `high`) in dB, each `[n_mels]`, or None when not recorded."""
        return None if self.low is None or self.high is None else (self.low, self.high)

    def normalised_bounds(self) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """(`low`, `high`) normalised, each `[n_mels]`, or None when not recorded."""
        bounds = self.bounds_db()
        return None if bounds is None else (self.normalise(bounds[0]), self.normalise(bounds[1]))

    def to_dict(self) -> dict:
        out = {"mean": [float(x) for x in self.mean], "std": [float(x) for x in self.std]}
        if self.low is not None and self.high is not None:
            out.update(low=[float(x) for x in self.low], high=[float(x) for x in self.high])
        return out

    @classmethod
    def from_dict(cls, data: dict, source: str = "normalisation statistics") -> "NormStats":
        try:
            mean = np.asarray(data["mean"], np.float32)
            std = np.asarray(data["std"], np.float32)
            low = np.asarray(data["low"], np.float32) if "low" in data else None
            high = np.asarray(data["high"], np.float32) if "high" in data else None
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{source}: expected {{'mean': [...], 'std': [...]}} ({e})") from None
        if mean.shape != std.shape or mean.ndim != 1 or not np.all(std > 0):
            raise ValueError(f"{source}: mean and std must be equal-length lists with std > 0")
        for name, bound in (("low", low), ("high", high)):
            if bound is not None and bound.shape != mean.shape:
                raise ValueError(f"{source}: '{name}' must have one value per bin like 'mean'")
        return cls(mean, std, low, high)

    def save(self, path: str) -> None:
        atomic.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str) -> "NormStats":
        with open(path) as f:
            return cls.from_dict(json.load(f), f"'{path}'")
