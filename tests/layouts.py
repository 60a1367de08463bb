"""Small datasets in the official layouts (LibriSpeech, MAESTRO v3), written as real audio
files by the tests themselves."""

import csv
import json

import numpy as np
import soundfile as sf

from tests.signals import piano_like, speech_like


def write_librispeech(root, splits=("train-clean-100", "dev-clean"), first_speaker=19, seconds=0.6):
    """A LibriSpeech tree: per split 2 speakers × 3 flac utterances (16 kHz) of `seconds`,
    `seconds` + 0.2 and `seconds` + 0.4, transcripts, SPEAKERS.TXT and CHAPTERS.TXT."""
    base = root / "LibriSpeech"
    for s, split in enumerate(splits):
        for speaker in (first_speaker + s * 100, first_speaker + 7 + s * 100):
            chapter = 198
            folder = base / split / str(speaker) / str(chapter)
            folder.mkdir(parents=True)
            lines = []
            for utt in range(3):
                name = f"{speaker}-{chapter}-{utt:04d}"
                sf.write(folder / f"{name}.flac", speech_like(seconds + 0.2 * utt, 16000, seed=speaker + utt), 16000)
                lines.append(f"{name} HELLO WORLD NUMBER {utt}")
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    (base / "SPEAKERS.TXT").write_text(";ID|SEX|SUBSET|MINUTES|NAME\n19 | F | train-clean-100 | 25.19 | Kara\n")
    (base / "CHAPTERS.TXT").write_text(";ID|READER|MINUTES|SUBSET|PROJ.|BOOK ID|CH. TITLE|PROJECT TITLE\n")
    return root


def write_maestro(root, seconds=1.5):
    """A maestro-v3.0.0 folder: 5 pieces of `seconds`, 44.1 kHz stereo wav + midi, csv and json."""
    base = root / "maestro-v3.0.0"
    (base / "2018").mkdir(parents=True)
    rows = []
    for i, split in enumerate(["train", "train", "train", "validation", "test"]):
        stem = f"2018/MIDI-Unprocessed_{i:02d}_R1_2018_wav--{i}"
        wave = piano_like(seconds, 44100, seed=i)
        sf.write(base / f"{stem}.wav", np.stack([wave, 0.8 * wave], axis=1), 44100)
        (base / f"{stem}.midi").write_bytes(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0")
        rows.append({"canonical_composer": "Frédéric Chopin", "canonical_title": f"Étude {i}", "split": split,
                     "year": 2018, "midi_filename": f"{stem}.midi", "audio_filename": f"{stem}.wav",
                     "duration": seconds})
    with open(base / "maestro-v3.0.0.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (base / "maestro-v3.0.0.json").write_text(json.dumps({k: {str(i): r[k] for i, r in enumerate(rows)} for k in rows[0]}))
    return root
