"""Piano transcription for evaluation: Spotify's basic-pitch model (ICASSP 2022), run offline.

The model's weights ship inside the `basic-pitch` wheel (0.4.0) as an ONNX file. Its
package metadata pins a TensorFlow older than this project's, so it is installed without
its dependencies (`pip install --no-deps basic-pitch==0.4.0`, as `run.sh` does) and never
imported: `model_path` finds the ONNX file in the installed package, onnxruntime runs it.
The windowing is basic-pitch's own (`inference.run_inference`: 2 s windows at 22050 Hz,
30 frames of overlap, half trimmed at each side) and so is the time of each output frame
(`note_creation.model_frames_to_time`); notes are read from its onset and note posteriors
as `output_to_notes_polyphonic` does with its defaults (onset peaks ≥ 0.5, held while the
note posterior ≥ 0.3 with 11 frames of tolerance, notes longer than 11 frames), without
the optional 'melodia trick' (which adds notes that have no predicted onset).

Scores are mir_eval's transcription metrics on onsets only (50 ms, pitch within 50 cents).
Nothing here is needed for training: it is the `eval` extra.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Optional

import numpy as np

from audiolm_jax import midi

SAMPLE_RATE = 22050  # Hz, the model's input rate
HOP = 256  # samples per output frame
WINDOW = 2 * SAMPLE_RATE - HOP  # samples per model input (AUDIO_N_SAMPLES)
OVERLAP_FRAMES = 30
FRAMES_PER_WINDOW = 172  # ANNOT_N_FRAMES: output frames per 2 s window
ONSET_THRESHOLD, FRAME_THRESHOLD, MIN_NOTE_FRAMES, ENERGY_TOLERANCE = 0.5, 0.3, 11, 11
INSTALL_HINT = "pip install --no-deps basic-pitch==0.4.0 onnxruntime mir_eval (./run.sh installs them)"


class TranscriberUnavailable(RuntimeError):
    """basic-pitch's model file or onnxruntime is not installed."""


def model_path() -> str:
    """The ONNX file inside the installed basic-pitch package (the package is not imported)."""
    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or not spec.submodule_search_locations:
        raise TranscriberUnavailable(f"basic-pitch is not installed: {INSTALL_HINT}")
    path = os.path.join(list(spec.submodule_search_locations)[0], "saved_models", "icassp_2022", "nmp.onnx")
    if not os.path.isfile(path):
        raise TranscriberUnavailable(f"'{path}' is missing: reinstall basic-pitch 0.4.0 ({INSTALL_HINT})")
    return path


def available() -> bool:
    """Whether the transcriber and the scorer can run here."""
    try:
        model_path()
        import mir_eval  # noqa: F401
        import onnxruntime  # noqa: F401
    except (TranscriberUnavailable, ImportError):
        return False
    return True


def frame_times(frames: int) -> np.ndarray:
    """Seconds `[frames]` of each output frame, basic-pitch's `model_frames_to_time`."""
    original = np.arange(frames) * HOP / SAMPLE_RATE
    window_offset = (HOP / SAMPLE_RATE) * (FRAMES_PER_WINDOW - WINDOW / HOP) + 0.0018
    return original - window_offset * np.floor(np.arange(frames) / FRAMES_PER_WINDOW)


class PianoTranscriber:
    """basic-pitch's network in an onnxruntime session (one CPU thread unless told)."""

    def __init__(self, path: Optional[str] = None, threads: int = 1):
        try:
            import onnxruntime as ort
        except ImportError:
            raise TranscriberUnavailable(f"onnxruntime is not installed: {INSTALL_HINT}") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(path or model_path(), options, providers=["CPUExecutionProvider"])

    def posteriors(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """Note and onset posteriors `[frames, 88]` of mono audio `[samples]` at `sample_rate`."""
        import soxr

        audio = np.asarray(waveform, np.float32)
        if sample_rate != SAMPLE_RATE:
            audio = soxr.resample(audio, sample_rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
        overlap = OVERLAP_FRAMES * HOP
        padded = np.concatenate([np.zeros(overlap // 2, np.float32), audio])
        hop = WINDOW - overlap
        windows = [padded[i : i + WINDOW] for i in range(0, len(padded), hop)]
        batch = np.stack([np.pad(w, (0, WINDOW - len(w))) for w in windows])[..., None]
        note, onset = self._session.run(["StatefulPartitionedCall:1", "StatefulPartitionedCall:2"],
                                        {"serving_default_input_2:0": batch})
        keep = int(np.floor(len(audio) * (SAMPLE_RATE // HOP) / SAMPLE_RATE))
        trim = OVERLAP_FRAMES // 2
        unwrap = lambda x: x[:, trim:-trim].reshape(-1, x.shape[-1])[:keep]
        return unwrap(note), unwrap(onset)

    def notes(self, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
        """Transcribed notes `[N, 4]` (onset s, offset s, pitch, velocity 1-127) of mono `[samples]`."""
        return notes_from_posteriors(*self.posteriors(waveform, sample_rate))


def notes_from_posteriors(note: np.ndarray, onset: np.ndarray) -> np.ndarray:
    """Notes `[N, 4]` from note and onset posteriors `[frames, 88]` (see the module docstring)."""
    frames = len(note)
    if frames < 3:
        return midi.EMPTY.copy()
    peaks = np.zeros_like(onset, dtype=bool)
    peaks[1:-1] = (onset[1:-1] > onset[:-2]) & (onset[1:-1] > onset[2:])
    starts, keys = np.nonzero(peaks & (onset >= ONSET_THRESHOLD))
    order = np.argsort(-starts, kind="stable")  # later onsets first, as basic-pitch does
    energy = note.copy()
    times = frame_times(frames + 1)
    out = []
    for start, key in zip(starts[order], keys[order]):
        if start >= frames - 1:
            continue
        i, below = start + 1, 0
        while i < frames - 1 and below < ENERGY_TOLERANCE:
            below = below + 1 if energy[i, key] < FRAME_THRESHOLD else 0
            i += 1
        i -= below
        if i - start <= MIN_NOTE_FRAMES:
            continue
        energy[start:i, max(key - 1, 0) : key + 2] = 0.0
        velocity = np.clip(round(127 * float(np.mean(note[start:i, key]))), 1, 127)
        out.append((times[start], times[i], key + midi.LOWEST_KEY, velocity))
    notes = np.array(out, np.float32).reshape(-1, 4)
    return notes[np.argsort(notes[:, 0], kind="stable")]


def onset_scores(reference: np.ndarray, estimated: np.ndarray) -> dict[str, float]:
    """mir_eval onset-only precision, recall and F1 (50 ms, 50 cents) of estimated notes
    `[N, 4]` against reference notes `[M, 4]` (reference notes held from before the
    audio starts are left out); all 0 when either side is empty."""
    import mir_eval

    ref_intervals, ref_hz = midi.onsets_and_pitches(reference)
    est_intervals, est_hz = midi.onsets_and_pitches(estimated)
    if not len(ref_hz) or not len(est_hz):
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    precision, recall, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref_intervals, ref_hz, est_intervals, est_hz, onset_tolerance=0.05, pitch_tolerance=50.0, offset_ratio=None)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}
