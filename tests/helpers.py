"""Tiny configs and data shared by the tests (kept small: 2 CPU cores)."""

from __future__ import annotations

import dataclasses
import html.parser

import jax
import numpy as np

from audiolm_jax import config as C
from audiolm_jax.data import Dataset, NormStats


def tiny_config(workdir: str, **sections) -> C.ExperimentConfig:
    """A model of a few thousand parameters on 16-bin mels; `sections` replace fields, e.g.
    `train={"steps": 5}`."""
    cfg = C.ExperimentConfig(
        name="tiny",
        workdir=workdir,
        audio=C.AudioConfig(sample_rate=8000, n_fft=256, win_length=256, hop_length=128, n_mels=16),
        model=C.ModelConfig(num_layers=2, d_model=32, num_heads=2, prenet_dim=32, frames_per_step=2,
                            prenet_dropout=0.0, max_frames=64),
        data=C.DataConfig(segment_seconds=0.5, synthetic_train_clips=8, synthetic_eval_clips=2,
                          synthetic_clip_seconds=1.0, stats_clips=8),
        train=C.TrainConfig(steps=10, batch_size=8, learning_rate=3e-3, warmup_steps=2, eval_every=5,
                            eval_examples=8, log_every=1, checkpoint_every=5),
        sample=C.SampleConfig(prompt_seconds=0.25, seconds=0.5, num_prompts=2, num_samples=1,
                              griffin_lim_iters=4),
    )
    for section, fields in sections.items():
        if isinstance(fields, dict):
            cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **fields)})
        else:
            cfg = dataclasses.replace(cfg, **{section: fields})
    return C.validate(cfg)


def random_walk_mels(n_mels: int = 16, clips: int = 6, frames: int = 40, seed: int = 0
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Train and eval lists of `clips` smooth, learnable normalised 'mels' `[frames, n_mels]`
    without audio synthesis: each bin drifts with a slowly changing velocity, so
    extrapolating beats copying the last frame."""
    rng = np.random.default_rng(seed)

    def clip() -> np.ndarray:  # stationary: velocity AR(1), position mean-reverting
        velocity = rng.normal(0, 0.03 / np.sqrt(1 - 0.97**2), n_mels)
        x, out = rng.normal(0, 1, n_mels), []
        for _ in range(frames):
            velocity = 0.97 * velocity + rng.normal(0, 0.03, n_mels)
            x = 0.98 * x + velocity
            out.append(x.copy())
        return np.asarray(out, np.float32)

    make = lambda: [clip() for _ in range(clips)]
    return make(), make()


def mel_dataset(train: list[np.ndarray], eval: list[np.ndarray], data: C.DataConfig = C.DataConfig()) -> Dataset:
    """The reader over in-memory normalised log-mels (identity statistics), crops cut in frames."""
    n_mels = train[0].shape[1]
    stats = NormStats(np.zeros(n_mels, np.float32), np.ones(n_mels, np.float32))
    return Dataset.from_log_mels(train, eval, stats, C.AudioConfig(n_mels=n_mels), data)


def random_walk_data(n_mels: int = 16, clips: int = 6, frames: int = 40, seed: int = 0) -> Dataset:
    """`mel_dataset` of `random_walk_mels`."""
    return mel_dataset(*random_walk_mels(n_mels, clips, frames, seed))


class _LinkParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.links += [v for k, v in attrs if k in ("src", "href")]


def html_links(page: str) -> list[str]:
    """Every src/href value of an HTML page, in order (the parse fails loudly on bad HTML)."""
    parser = _LinkParser()
    parser.feed(page)
    parser.close()
    return parser.links


def with_postnet_residual(params, key):
    """`params` with the post-net's last (zero-initialised) convolution set to random values."""
    postnet = dict(params["postnet"])
    last = max(name for name in postnet if name.startswith("conv_"))
    postnet[last] = {**postnet[last], "kernel": 0.3 * jax.random.normal(key, postnet[last]["kernel"].shape)}
    return {**params, "postnet": postnet}


def tts_config(workdir, steps=4, **train_fields):
    """`tiny_config` speaking text: the embedded voices set as whole utterances, a gate, a
    one-layer character encoder and one guided head, `steps` steps."""
    model = dataclasses.replace(tiny_config(workdir).model, max_frames=256, gate=True, condition=C.ConditionConfig(
        text=True, max_text_chars=96, text_layers=1, dropout=0.0, guided_layers=1, guided_heads=1))
    return tiny_config(workdir, model=model,
                       data={"source": "voices", "synthetic_train_clips": 24, "synthetic_eval_clips": 16,
                             "segment_seconds": 4.0, "crop": "utterance", "go_frames": 2},
                       train={"steps": steps, "checkpoint_every": steps, "eval_every": steps, **train_fields},
                       sample={"prompt_seconds": 0.5, "seconds": 3.0, "num_prompts": 1, "num_samples": 1,
                               "stop_at_gate": True, "temperature": 0.0})


def first_batch_and_its_examples(cfg):
    """The dataset of `cfg`, its first training batch of 8 and the tfds examples of its rows."""
    from audiolm_jax import data as data_lib
    from audiolm_jax.data.pipeline import batch_examples

    dataset = data_lib.prepare(cfg)
    batch = dataset.train_batch(0, 0, 8, data_lib.segment_frames(4.0, cfg.audio, 2))
    indices, _ = batch_examples(0, 0, 8, len(dataset._train_ids))
    return dataset, batch, [dataset.train[int(i)] for i in dataset._train_ids[indices]]
