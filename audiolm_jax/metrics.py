"""Metrics of generated log-mels against their prompts (numpy only, no model): the collapse
detectors of free-running continuation. Log-mels are in dB `[frames, n_mels]`."""

from __future__ import annotations

from typing import Optional

import numpy as np

from audiolm_jax import decibels


def frame_flux_db(log_mel_db: np.ndarray) -> np.ndarray:
    """RMS over bins of the dB change from the previous frame, `[frames - 1]`."""
    return np.sqrt(np.mean(np.diff(log_mel_db, axis=0) ** 2, axis=-1))


def gated_level_db(log_mel_db: np.ndarray, frames_per_second: float, block_seconds: float = 0.4,
                   hop_seconds: float = 0.1, relative_gate_db: float = 10.0) -> float:
    """Level in dB of a log-mel `[frames, n_mels]` (dB) gated as ITU-R BS.1770 gates loudness
    (without its K-weighting filter): the mean power of the `block_seconds` blocks (every
    `hop_seconds`) whose power lies within `relative_gate_db` of the ungated mean level.
    Pauses and silent lead-ins are left out, so the level says how loud the sound is, not
    how deep its silences go (a mean of frame dB is dominated by them). A stretch shorter
    than a block is one block."""
    power = np.sum(decibels.db_to_power(log_mel_db), axis=-1)  # [frames]
    block = max(1, int(round(block_seconds * frames_per_second)))
    hop = max(1, int(round(hop_seconds * frames_per_second)))
    starts = range(0, max(1, len(power) - block + 1), hop)
    blocks = np.array([power[s : s + block].mean() for s in starts])  # [blocks]
    ungated = 10.0 * np.log10(blocks.mean() + 1e-10)
    loud = blocks[10.0 * np.log10(blocks + 1e-10) > ungated - relative_gate_db]
    return float(10.0 * np.log10(loud.mean() + 1e-10))


def long_term_spectrum_db(log_mel_db: np.ndarray) -> np.ndarray:
    """Long-term average mel spectrum in dB `[n_mels]`: mean power per bin over frames."""
    return 10.0 * np.log10(np.mean(decibels.db_to_power(log_mel_db), axis=0) + 1e-10)


def pinned_fraction(log_mel_db: np.ndarray, low_db: np.ndarray, high_db: np.ndarray, tolerance_db: float = 1e-3
                    ) -> float:
    """Share of the values of a log-mel `[frames, n_mels]` (dB) that sit on their bin's
    training range `low_db` / `high_db` `[n_mels]`: where decoding's range clip held them.
    Real audio almost never lands exactly there; a free-running bin driven past the range
    and held on its edge draws a sustained horizontal stripe, which the whole-frame
    detectors (silent, frozen) miss while the other bins still move."""
    on_edge = (np.abs(log_mel_db - low_db) < tolerance_db) | (np.abs(log_mel_db - high_db) < tolerance_db)
    return float(np.mean(on_edge))


def continuation_metrics(prompt_db: np.ndarray, continuation_db: np.ndarray, frames_per_second: float,
                         range_db: Optional[tuple[np.ndarray, np.ndarray]] = None) -> dict[str, float]:
    """Collapse detectors comparing a continuation `[frames, n_mels]` with its prompt (dB).

    `energy_drift_db`: mean frame energy (dB) of the continuation minus the prompt's;
    `loudness_drift_db`: the same with each side's `gated_level_db` (pauses and silences
    left out; `frames_per_second` sets its 400 ms blocks).
    `timbre_distance_db`: RMS over bins of the difference between the two long-term average
    spectra after removing their mean level difference (the level is `energy_drift_db`).
    `median_bin_drift_db`: the median over bins of that difference: how much louder the
    typical bin became. `shape_loudness_drift_db`: the part of `loudness_drift_db` owed to
    the spectrum's shape, not its level: the drift minus the drift of the continuation
    reshaped bin by bin to its prompt's long-term spectrum (its median change kept). A power
    level follows its loudest bins, so energy piled into a few bins (other notes, a stripe)
    reads as a louder continuation while the typical bin holds its level.
    With the training range per bin `range_db` (low, high, each `[n_mels]` dB), also
    `pinned_fraction` (see `pinned_fraction`).
    """
    prompt_energy, cont_energy = decibels.frame_energy_db(prompt_db), decibels.frame_energy_db(continuation_db)
    prompt_flux = float(np.mean(frame_flux_db(prompt_db)))
    cont_flux = frame_flux_db(continuation_db)
    spectrum_gap = long_term_spectrum_db(continuation_db) - long_term_spectrum_db(prompt_db)  # [n_mels] dB
    median_gap = float(np.median(spectrum_gap))
    prompt_level = gated_level_db(prompt_db, frames_per_second)
    loudness_drift = gated_level_db(continuation_db, frames_per_second) - prompt_level
    reshaped_drift = gated_level_db(continuation_db - (spectrum_gap - median_gap), frames_per_second) - prompt_level
    pinned = {} if range_db is None else {"pinned_fraction": pinned_fraction(continuation_db, *range_db)}
    return {
        **pinned,
        "energy_drift_db": float(np.mean(cont_energy) - np.mean(prompt_energy)),
        "loudness_drift_db": loudness_drift,
        "median_bin_drift_db": median_gap,
        "shape_loudness_drift_db": loudness_drift - reshaped_drift,
        "spectral_flux_ratio": float(np.mean(cont_flux) / max(prompt_flux, 1e-6)),
        "silent_fraction": float(np.mean(cont_energy < np.max(prompt_energy) - 60.0)),
        "frozen_fraction": float(np.mean(cont_flux < 0.1)),
        "timbre_distance_db": float(np.sqrt(np.mean((spectrum_gap - spectrum_gap.mean()) ** 2))),
    }


CONTINUATION_KEYS = ("energy_drift_db", "loudness_drift_db", "median_bin_drift_db", "shape_loudness_drift_db",
                     "spectral_flux_ratio", "silent_fraction",
                     "frozen_fraction", "timbre_distance_db")
DRIFT_KEYS = ("energy_drift_db", "loudness_drift_db")  # signed level changes, also summarised by magnitude


def continuation_summary(continuations: list, frames_per_second: float,
                         range_db: Optional[tuple[np.ndarray, np.ndarray]] = None
                         ) -> tuple[dict[str, float], list[list[dict[str, float]]]]:
    """Means over every sample of every `continuation.Continuation` (and `abs_<drift>`, the
    mean of |drift|, for each of `DRIFT_KEYS`), and the metrics of each sample, per prompt; a
    generation without an audio prompt has nothing to be compared with (empty metrics, left
    out of the means). `frames_per_second` and `range_db` (the training range per bin, when
    known): see `continuation_metrics`."""
    per = [[continuation_metrics(log_mel[: c.prompt_frames], log_mel[c.prompt_frames :], frames_per_second, range_db)
            if c.prompt_frames else {} for log_mel in c.full_log_mel] for c in continuations]
    flat = [m for row in per for m in row if m]
    keys = CONTINUATION_KEYS + (() if range_db is None else ("pinned_fraction",))
    summary = {key: float(np.mean([m[key] for m in flat])) if flat else float("nan") for key in keys}
    for key in DRIFT_KEYS:
        summary[f"abs_{key}"] = float(np.mean([abs(m[key]) for m in flat])) if flat else float("nan")
    return summary, per


def rendering_metrics(reference_db: np.ndarray, rendered_db: np.ndarray, sounding: np.ndarray) -> dict[str, float]:
    """A rendering of MIDI `[frames, n_mels]` (dB) against the real recording of the same
    notes `[frames', n_mels]`, over their common frames, where `sounding` `[frames'']` marks
    the frames in which the MIDI has a note: `energy_error_db` (mean frame energy,
    rendering minus recording), and among the sounding frames `silent_where_notes` (60 dB
    below the recording's peak) and `frozen_where_notes` (changing < 0.1 dB RMS from the
    previous frame)."""
    frames = min(len(reference_db), len(rendered_db), len(sounding))
    reference_energy = decibels.frame_energy_db(reference_db[:frames])
    rendered_energy = decibels.frame_energy_db(rendered_db[:frames])
    flux = np.concatenate([[np.inf], frame_flux_db(rendered_db[:frames])])
    notes_on = np.asarray(sounding[:frames], bool)
    share = lambda hit: float(np.mean(hit[notes_on])) if notes_on.any() else 0.0
    return {"energy_error_db": float(np.mean(rendered_energy) - np.mean(reference_energy)),
            "silent_where_notes": share(rendered_energy < np.max(reference_energy) - 60.0),
            "frozen_where_notes": share(flux < 0.1)}
