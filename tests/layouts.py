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


MAESTRO_NOTES = [(0.2, 1.3, 60, 90), (1.1, 1.4, 64, 70)]  # piece i plays these, the first transposed by i


def write_maestro(root, seconds=1.5):
    """A maestro-v3.0.0 folder: 5 pieces of `seconds`, 44.1 kHz stereo wav + midi
    (`MAESTRO_NOTES`), csv and json."""
    from audiolm_jax import midi

    base = root / "maestro-v3.0.0"
    (base / "2018").mkdir(parents=True)
    rows = []
    for i, split in enumerate(["train", "train", "train", "validation", "test"]):
        stem = f"2018/MIDI-Unprocessed_{i:02d}_R1_2018_wav--{i}"
        wave = piano_like(seconds, 44100, seed=i)
        sf.write(base / f"{stem}.wav", np.stack([wave, 0.8 * wave], axis=1), 44100)
        notes = np.array(MAESTRO_NOTES, np.float32) + np.array([[0, 0, i, 0], [0, 0, 0, 0]], np.float32)
        midi.write_midi(notes, str(base / f"{stem}.midi"))
        rows.append({"canonical_composer": "Frédéric Chopin", "canonical_title": f"Étude {i}", "split": split,
                     "year": 2018, "midi_filename": f"{stem}.midi", "audio_filename": f"{stem}.wav",
                     "duration": seconds})
    with open(base / "maestro-v3.0.0.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (base / "maestro-v3.0.0.json").write_text(json.dumps({k: {str(i): r[k] for i, r in enumerate(rows)} for k in rows[0]}))
    return root


def write_esc50(root, classes=("dog", "rain", "siren"), per_fold=1, seconds=1.5, corrupt=True):
    """An ESC-50 tree: `audio/<fold>-<id>-A-<target>.wav` (44.1 kHz, `seconds` each) for
    `per_fold` clips of every class in each of the 5 folds, `meta/esc50.csv`, and (with
    `corrupt`) one listed file that is not audio, to be skipped."""
    from audiolm_jax.data import sounds

    base = root / "ESC-50-master"
    (base / "audio").mkdir(parents=True)
    (base / "meta").mkdir()
    generators = [c for c in sounds.CLASSES]
    rows = []
    for fold in range(1, 6):
        for target, category in enumerate(classes):
            for i in range(per_fold):
                name = f"{fold}-{100 * target + i}-A-{target}.wav"
                wave, _ = sounds.synthesize_sound(generators[target % len(generators)], fold, i, seconds, 44100)
                sf.write(base / "audio" / name, wave, 44100)
                rows.append({"filename": name, "fold": fold, "target": target, "category": category,
                             "esc10": "False", "src_file": str(100 * target + i), "take": "A"})
    if corrupt:
        (base / "audio" / "1-999-A-0.wav").write_bytes(b"not audio at all")
        rows.append({"filename": "1-999-A-0.wav", "fold": 1, "target": 0, "category": classes[0], "esc10": "False",
                     "src_file": "999", "take": "A"})
    with open(base / "meta" / "esc50.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return base


def write_urbansound8k(root, classes=("air_conditioner", "car_horn", "siren"), seconds=1.0):
    """An UrbanSound8K tree: `audio/fold<k>/<fsID>-0-0.wav` for every class in each of the 10
    folds (22.05 kHz stereo), and `metadata/UrbanSound8K.csv`."""
    from audiolm_jax.data import sounds

    base = root / "UrbanSound8K"
    (base / "metadata").mkdir(parents=True)
    rows = []
    for fold in range(1, 11):
        (base / "audio" / f"fold{fold}").mkdir(parents=True)
        for class_id, name in enumerate(classes):
            file_name = f"{1000 * fold + class_id}-0-0.wav"
            wave, _ = sounds.synthesize_sound(sounds.CLASSES[class_id], fold, 0, seconds, 22050)
            sf.write(base / "audio" / f"fold{fold}" / file_name, np.stack([wave, wave], axis=1), 22050)
            rows.append({"slice_file_name": file_name, "fsID": 1000 * fold + class_id, "start": 0.0, "end": seconds,
                         "salience": 1, "fold": fold, "classID": class_id, "class": name})
    with open(base / "metadata" / "UrbanSound8K.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return base
