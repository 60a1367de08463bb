"""Preparing a recorded dataset (issue 16): audio-hours prepared per wall-minute by one
thread, by one thread per core (`data.prepare_workers`, the default), and by Apache Beam's
local runner on one process per core (`data.beam_options`).

A MAESTRO-layout copy is written first (untimed): `PIECES` performances of `SECONDS` s of
44.1 kHz stereo audio with their MIDI, as the real MAESTRO v3 ships them. Each timed run
prepares it from scratch into a fresh tfds folder exactly as a training run does
(`data.sources.build`: decode, mix to mono, resample to 16 kHz, chunk, read the MIDI, write
ArrayRecord), the three ways interleaved, 5 repeats after a warm-up round. The Beam side
needs the `beam` extra.

    python -m benchmarks.preparation [--pieces=N] [--seconds=S]
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile

import numpy as np
import soundfile as sf

from audiolm_jax import config as C, midi
from audiolm_jax.data import synthetic
from benchmarks.common import emit, emit_timed, interleaved_seconds

PIECES, SECONDS, RATE = 24, 30.0, 44100


def write_maestro_copy(root: str, pieces: int, seconds: float) -> str:
    """A `maestro-v3.0.0/` folder of `pieces` stereo 44.1 kHz wavs with their MIDI and csv
    (every fifth piece in validation); returns its path."""
    base = os.path.join(root, "maestro-v3.0.0")
    os.makedirs(os.path.join(base, "2018"))
    rows = []
    for i in range(pieces):
        stem = f"2018/piece_{i:03d}"
        wave, notes = synthetic.synthesize_clip_with_notes(7, i, seconds, RATE)
        sf.write(os.path.join(base, stem + ".wav"), np.stack([wave, 0.8 * wave], axis=1), RATE, subtype="PCM_16")
        midi.write_midi(notes, os.path.join(base, stem + ".midi"))
        rows.append({"canonical_composer": "Synthetic", "canonical_title": f"Piece {i}",
                     "split": "validation" if i % 5 == 4 else "train", "year": 2018,
                     "midi_filename": stem + ".midi", "audio_filename": stem + ".wav", "duration": seconds})
    with open(os.path.join(base, "maestro-v3.0.0.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return base


def preparation(base: str, root: str, name: str, **data):
    """A function preparing `base` from scratch with the `data` settings."""
    from audiolm_jax.data import sources

    runs = [0]

    def run() -> None:
        runs[0] += 1
        tfds_dir = os.path.join(root, f"tfds_{name}_{runs[0]}")
        cfg = C.validate(C.ExperimentConfig(
            workdir=os.path.join(root, "run"), data=C.DataConfig(source="maestro", dir=base, tfds_dir=tfds_dir,
                                                                 **data)))
        sources.build(cfg)
        shutil.rmtree(tfds_dir)

    return run


def main(argv: list[str]) -> None:
    pieces = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--pieces=")), PIECES)
    seconds = next((float(a.split("=", 1)[1]) for a in argv if a.startswith("--seconds=")), SECONDS)
    cores = os.cpu_count() or 1
    beam = f"--direct_num_workers={cores} --direct_running_mode=multi_processing"
    with tempfile.TemporaryDirectory() as root:
        base = write_maestro_copy(root, pieces, seconds)
        times = interleaved_seconds({"one": preparation(base, root, "one", prepare_workers=1),
                                     "threads": preparation(base, root, "threads", prepare_workers=cores),
                                     "beam": preparation(base, root, "beam", beam_options=beam)}, repeats=5, warmup=1)
    hours = pieces * seconds / 3600.0
    rate = {side: [hours / (t / 60.0) for t in ts] for side, ts in times.items()}
    for side, label in (("one", "one thread"), ("threads", f"{cores} threads (the default)"),
                        ("beam", f"Beam's local runner, {cores} processes")):
        emit("preparation", f"MAESTRO layout, {pieces} x {seconds:g} s 44.1 kHz stereo, {label}: audio-hours/min",
             float(np.median(rate[side])), 1.0, "h/min", target=0.0, higher_is_better=True,
             spread=[min(rate[side]), max(rate[side])], seconds=times[side])
    for side in ("threads", "beam"):
        emit_timed("preparation", f"{side} on {cores} cores vs one thread, s", times[side], times["one"], target=1.0)


if __name__ == "__main__":
    main(sys.argv[1:])
