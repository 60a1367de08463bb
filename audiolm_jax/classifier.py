"""A small sound classifier the evaluation trains on a run's own real clips: no audio tagger
ships its weights inside a PyPI package, so label accuracy, Fréchet distance and diversity of
generated sound are measured in the embedding of a classifier trained here, beside its
accuracy on held-out real clips (the sanity line) and on their Griffin-Lim resynthesis
(the vocoder's ceiling).

Features per clip (`clip_features`, from a log-mel in dB `[frames, n_mels]`): per-bin mean
and standard deviation over time, per-bin mean absolute frame-to-frame change (flux), and
the frame-energy envelope's spread, quantiles and autocorrelation at rhythmic lags. An MLP
(features → 128 → 64, the embedding → classes) is trained full-batch with Adam.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import linalg

ENVELOPE_LAGS_FRAMES = (2, 4, 8, 16, 32)  # autocorrelation lags of the energy envelope


def clip_features(log_mel_db: np.ndarray) -> np.ndarray:
    """Summary features `[3 * n_mels + 5 + len(ENVELOPE_LAGS_FRAMES)]` of one log-mel `[frames, n_mels]` (dB)."""
    mel = np.asarray(log_mel_db, np.float64)
    energy = mel.mean(axis=1)  # [frames] dB
    flux = np.abs(np.diff(mel, axis=0)).mean(axis=0) if len(mel) > 1 else np.zeros(mel.shape[1])
    centred = energy - energy.mean()
    norm = max(float(centred @ centred), 1e-9)
    auto = [float(centred[:-lag] @ centred[lag:]) / norm if lag < len(centred) else 0.0 for lag in ENVELOPE_LAGS_FRAMES]
    quantiles = np.quantile(energy, [0.1, 0.5, 0.9])
    return np.concatenate([mel.mean(axis=0), mel.std(axis=0), flux, [energy.std(), *quantiles,
                           quantiles[2] - quantiles[0]], auto]).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Classifier:
    """A trained classifier: MLP params and the feature standardisation (mean, std `[F]`)."""

    params: Any
    feature_mean: np.ndarray
    feature_std: np.ndarray

    def _standardise(self, features: np.ndarray) -> jax.Array:
        return jnp.asarray((np.asarray(features) - self.feature_mean) / self.feature_std)

    def embed(self, features: np.ndarray) -> np.ndarray:
        """Features `[N, F]` → embeddings `[N, 64]`."""
        return np.asarray(_embed(self.params, self._standardise(features)))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Features `[N, F]` → class ids `[N]`."""
        return np.asarray(jnp.argmax(_logits(self.params, self._standardise(features)), axis=-1))


def _init(key: jax.Array, sizes: tuple[int, ...]) -> list[dict[str, jax.Array]]:
    keys = jax.random.split(key, len(sizes) - 1)
    return [{"w": jax.random.normal(k, (a, b)) * np.sqrt(2.0 / a), "b": jnp.zeros(b)}
            for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def _embed(params, x):
    for layer in params[:-1]:
        x = jax.nn.gelu(x @ layer["w"] + layer["b"])
    return x


def _logits(params, x):
    return _embed(params, x) @ params[-1]["w"] + params[-1]["b"]


def train_classifier(features: np.ndarray, labels: np.ndarray, num_classes: int, key: jax.Array,
                     steps: int = 600, weight_decay: float = 1e-3) -> Classifier:
    """Fits the MLP to features `[N, F]` and class ids `[N]` (full batch, Adam, label smoothing 0.1)."""
    features = np.asarray(features, np.float64)
    mean, std = features.mean(axis=0), np.maximum(features.std(axis=0), 1e-6)
    x = jnp.asarray((features - mean) / std, jnp.float32)
    y = jax.nn.one_hot(jnp.asarray(labels), num_classes) * 0.9 + 0.1 / num_classes
    dropout_key, init_key = jax.random.split(key)
    params = _init(init_key, (x.shape[1], 128, 64, num_classes))
    tx = optax.adamw(3e-3, weight_decay=weight_decay)
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, k):
        def loss(p):
            noisy = x + 0.1 * jax.random.normal(k, x.shape)  # a little feature noise against overfitting
            return optax.softmax_cross_entropy(_logits(p, noisy), y).mean()
        grads = jax.grad(loss)(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt

    for i in range(steps):
        params, opt = step(params, opt, jax.random.fold_in(dropout_key, i))
    return Classifier(jax.device_get(params), mean.astype(np.float32), std.astype(np.float32))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to embeddings `a` `[N, D]` and `b` `[M, D]`
    (as FID/FAD: |μa − μb|² + tr(Σa + Σb − 2(ΣaΣb)^½)); both need 2 or more rows. As in
    FID's reference code, 1e-6·I is added to both covariances (few rows make them singular)."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"frechet_distance: {len(a)} and {len(b)} rows; at least 2 of each are needed")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    ridge = 1e-6 * np.eye(a.shape[1])
    cov_a, cov_b = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    root = linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))


def mean_pairwise_distance(x: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of rows of `x` `[N, D]` (0 for fewer than 2)."""
    if len(x) < 2:
        return 0.0
    d = np.sqrt(np.maximum(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1), 0.0))
    return float(d[np.triu_indices(len(x), 1)].mean())
