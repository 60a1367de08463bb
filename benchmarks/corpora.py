"""Realistic measurement corpora in the official layouts, made here from engines Debian ships:

    python -m benchmarks.corpora speech OUT [--speakers 8 --utterances 40 --words 6 13]   # LibriSpeech layout, espeak-ng
    python -m benchmarks.corpora tts OUT [--speakers 8 --utterances 150 --held-out 12]   # the same, for TTS
    python -m benchmarks.corpora piano OUT [--pieces 24 --seconds 40]        # MAESTRO v3 layout, fluidsynth
    python -m benchmarks.corpora sfx OUT [--per-fold 12]                     # ESC-50 layout, fluidsynth

Speech: espeak-ng (`apt-get install espeak-ng`) reads sentences drawn from a word list in
several voices (accent, voice variant, pitch and speed differ per speaker) into
`LibriSpeech/{train-clean-100,dev-clean}/<speaker>/<chapter>/*.flac` with `.trans.txt`
transcripts, `SPEAKERS.TXT` and `CHAPTERS.TXT`; dev-clean speakers read sentences never read
in training. The `tts` corpus has every speaker in both splits: dev-clean holds each
speaker's held-out sentences (never read in training), so synthesis and voice cloning are
measured on new sentences in voices the model knows. Piano: pieces composed here (a key, a tempo, chords in the left hand, a
melody in the right, velocity and sustain-pedal changes) are written as MIDI with
pretty_midi and rendered by fluidsynth (`apt-get install fluidsynth`, with its General MIDI
soundfont) into `maestro-v3.0.0/<year>/*.wav|*.midi` with `maestro-v3.0.0.csv`; whole pieces
are split train/validation/test. Sound effects: ten classes played by fluidsynth's General
MIDI sound effects and percussion (seashore, bird tweet, telephone ring, helicopter,
applause, gunshot, breath noise, guitar fret noise, snare roll, cowbell), each clip with
its own notes, timing, velocity and pitch, in the ESC-50 layout (`audio/*.wav`,
`meta/esc50.csv`, 5 folds): made by other generators than the embedded `sounds` set, to
measure a label-conditioned model on a set it was not designed around. Nothing here is
needed by training or tests.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import tempfile

import numpy as np
import soundfile as sf

from audiolm_jax import atomic

WORDS = ("the a one two three four five six seven eight nine ten red green blue yellow black white small large "
         "quick slow happy quiet bright dark warm cold river mountain garden window kitchen market station "
         "teacher doctor farmer sailor painter writer child mother father sister brother friend neighbour "
         "walks runs reads writes sings paints builds opens closes carries watches finds keeps brings "
         "morning evening winter summer today yesterday always never often slowly gently loudly "
         "under over near behind across through before after with without and but because while").split()

# (espeak-ng voice, pitch 0-99, words per minute) per speaker: accents, variants, pitch and speed differ.
VOICES = [("en-us+m1", 40, 160), ("en-gb+f2", 65, 150), ("en-gb-scotland+m3", 35, 145), ("en-029+f3", 70, 170),
          ("en-us+f1", 60, 155), ("en-gb-x-rp+m2", 45, 140), ("en-us+m4", 30, 175), ("en-gb+f4", 75, 150),
          ("en-gb-x-gbclan+m5", 50, 165), ("en-us+f5", 55, 145)]


SPEECH_WORDS = (6, 13)  # words per sentence [low, high) of the speech corpus by default


def sentence(rng: np.random.Generator, words: tuple[int, int] = SPEECH_WORDS) -> str:
    """A random sentence of `words` [low, high) words from WORDS, upper case as LibriSpeech transcripts are."""
    return " ".join(rng.choice(WORDS, size=int(rng.integers(*words)))).upper()


def speak(text: str, voice: tuple[str, int, int], path: str, sample_rate: int = 16000) -> None:
    """`text` read by espeak-ng in `voice`, written to `path` (flac) at `sample_rate` Hz."""
    name, pitch, speed = voice
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["espeak-ng", "-v", name, "-p", str(pitch), "-s", str(speed), "-w", tmp.name, text.lower()],
                       check=True, capture_output=True)
        wave, rate = sf.read(tmp.name, dtype="float32")
    if rate != sample_rate:
        import librosa

        wave = librosa.resample(wave, orig_sr=rate, target_sr=sample_rate)
    with atomic.atomic_path(path, suffix=".flac") as out:
        sf.write(out, wave, sample_rate, format="FLAC")


def write_speech(root: str, speakers: int, utterances: int, seed: int = 0,
                 words: tuple[int, int] = SPEECH_WORDS) -> None:
    """A LibriSpeech tree below `root`: `speakers` voices, 3/4 of them in train-clean-100, each
    reading `utterances` sentences of `words` [low, high) words (LibriSpeech's own utterances
    run about 35 words, 12 s: `words=(20, 41)` gives held-out clips whose first seconds lie
    inside one sentence, as a continuation prompt from real LibriSpeech does)."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng not found: apt-get install espeak-ng")
    rng = np.random.default_rng(seed)
    base = os.path.join(root, "LibriSpeech")
    train_speakers = max(1, speakers * 3 // 4)
    speaker_lines, chapter_lines = [], []
    for index in range(speakers):
        split = "train-clean-100" if index < train_speakers else "dev-clean"
        speaker, chapter = 100 + index, 1000 + index
        voice = VOICES[index % len(VOICES)]
        folder = os.path.join(base, split, str(speaker), str(chapter))
        os.makedirs(folder, exist_ok=True)
        lines = []
        for utt in range(utterances):
            text = sentence(rng, words)
            name = f"{speaker}-{chapter}-{utt:04d}"
            speak(text, voice, os.path.join(folder, f"{name}.flac"))
            lines.append(f"{name} {text}")
        atomic.write_text(os.path.join(folder, f"{speaker}-{chapter}.trans.txt"), "\n".join(lines) + "\n")
        speaker_lines.append(f"{speaker} | {'F' if '+f' in voice[0] else 'M'} | {split} | 1.00 | {voice[0]}")
        chapter_lines.append(f"{chapter} | {speaker} | 1.00 | {split} | 0 | 0 | generated | generated")
    atomic.write_text(os.path.join(base, "SPEAKERS.TXT"), ";ID|SEX|SUBSET|MINUTES|NAME\n" + "\n".join(speaker_lines) + "\n")
    atomic.write_text(os.path.join(base, "CHAPTERS.TXT"),
                      ";ID|READER|MINUTES|SUBSET|PROJ.|BOOK ID|CH. TITLE|PROJECT TITLE\n" + "\n".join(chapter_lines) + "\n")


def write_tts_speech(root: str, speakers: int, utterances: int, held_out: int, seed: int = 1) -> None:
    """A LibriSpeech tree below `root` for TTS: each of `speakers` voices reads `utterances`
    sentences of 4-8 words in train-clean-100 and `held_out` sentences no one reads in
    training in dev-clean (the same speaker ids, a second chapter each)."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng not found: apt-get install espeak-ng")
    rng = np.random.default_rng(seed)
    base = os.path.join(root, "LibriSpeech")
    training: set[str] = set()
    speaker_lines, chapter_lines = [], []
    for split, count in (("train-clean-100", utterances), ("dev-clean", held_out)):
        for index in range(speakers):
            speaker, chapter = 100 + index, (1000 if split == "train-clean-100" else 2000) + index
            voice = VOICES[index % len(VOICES)]
            folder = os.path.join(base, split, str(speaker), str(chapter))
            os.makedirs(folder, exist_ok=True)
            lines = []
            while len(lines) < count:
                text = sentence(rng, (4, 9))
                if split == "dev-clean" and text in training:
                    continue
                if split == "train-clean-100":
                    training.add(text)
                name = f"{speaker}-{chapter}-{len(lines):04d}"
                speak(text, voice, os.path.join(folder, f"{name}.flac"))
                lines.append(f"{name} {text}")
            atomic.write_text(os.path.join(folder, f"{speaker}-{chapter}.trans.txt"), "\n".join(lines) + "\n")
            if split == "train-clean-100":
                speaker_lines.append(f"{speaker} | {'F' if '+f' in voice[0] else 'M'} | {split} | 1.00 | {voice[0]}")
            chapter_lines.append(f"{chapter} | {speaker} | 1.00 | {split} | 0 | 0 | generated | generated")
    atomic.write_text(os.path.join(base, "SPEAKERS.TXT"), ";ID|SEX|SUBSET|MINUTES|NAME\n" + "\n".join(speaker_lines) + "\n")
    atomic.write_text(os.path.join(base, "CHAPTERS.TXT"),
                      ";ID|READER|MINUTES|SUBSET|PROJ.|BOOK ID|CH. TITLE|PROJECT TITLE\n" + "\n".join(chapter_lines) + "\n")


def general_midi_soundfont() -> str:
    """Debian's General MIDI soundfont; SystemExit saying what to install when fluidsynth or it is missing."""
    soundfont = next((p for p in ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
                      if os.path.exists(p)), None)
    if shutil.which("fluidsynth") is None or soundfont is None:
        raise SystemExit("fluidsynth and a General MIDI soundfont are needed: apt-get install fluidsynth")
    return soundfont


def render_midi(soundfont: str, midi_path: str, wav_path: str) -> None:
    """`midi_path` rendered by fluidsynth into a 44.1 kHz `wav_path`."""
    subprocess.run(["fluidsynth", "-ni", "-g", "0.8", "-r", "44100", "-F", wav_path, soundfont, midi_path],
                   check=True, capture_output=True)


def compose(rng: np.random.Generator, seconds: float):
    """A pretty_midi piano piece: chords (left hand) and a melody (right hand) in a random key
    and tempo, velocities that swell and fade, the sustain pedal down for each bar."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0, name="piano")
    key = int(rng.integers(0, 12))
    scale = [key + s for s in (0, 2, 4, 5, 7, 9, 11)]
    beat = 60.0 / float(rng.uniform(80, 150))
    bar = 4 * beat
    degrees = [0, 3, 4, 5, 0, 1, 4, 0]
    t, b = 0.0, 0
    while t + bar <= seconds:
        root = scale[degrees[b % len(degrees)] % 7]
        loud = int(55 + 30 * np.sin(2 * np.pi * t / max(seconds, 1.0)) + rng.integers(-8, 8))
        for offset in (0, 4, 7):  # the bar's chord, held
            piano.notes.append(pretty_midi.Note(loud - 10, 48 + root + offset, t, t + bar * 0.95))
        step = beat / int(rng.choice([1, 2, 2, 4]))
        melody_t = t
        while melody_t + step <= t + bar + 1e-6:
            pitch = 72 + scale[int(rng.integers(0, 7))]
            piano.notes.append(pretty_midi.Note(int(np.clip(loud + rng.integers(-10, 15), 20, 120)), pitch,
                                                melody_t, melody_t + step * 0.9))
            melody_t += step
        piano.control_changes += [pretty_midi.ControlChange(64, 100, t + 0.01), pretty_midi.ControlChange(64, 0, t + bar - 0.02)]
        t, b = t + bar, b + 1
    midi.instruments.append(piano)
    return midi


def write_piano(root: str, pieces: int, seconds: float, seed: int = 0) -> None:
    """A maestro-v3.0.0 folder below `root`: `pieces` composed pieces rendered at 44.1 kHz."""
    soundfont = general_midi_soundfont()
    rng = np.random.default_rng(seed)
    base = os.path.join(root, "maestro-v3.0.0")
    os.makedirs(os.path.join(base, "2026"), exist_ok=True)
    rows = []
    for i in range(pieces):
        split = "validation" if i % 8 == 6 else "test" if i % 8 == 7 else "train"
        stem = f"2026/generated_{i:03d}"
        midi_path, wav_path = os.path.join(base, stem + ".midi"), os.path.join(base, stem + ".wav")
        compose(rng, seconds).write(midi_path)
        render_midi(soundfont, midi_path, wav_path)
        duration = sf.info(wav_path).duration
        rows.append({"canonical_composer": "audiolm-jax", "canonical_title": f"Generated piece {i}", "split": split,
                     "year": 2026, "midi_filename": stem + ".midi", "audio_filename": stem + ".wav",
                     "duration": round(duration, 3)})
    with atomic.atomic_path(os.path.join(base, "maestro-v3.0.0.csv"), suffix=".csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


# (category, General MIDI program or None for percussion, notes: pitch range or drum keys)
SFX_CLASSES = (("seashore", 122, (40, 70)), ("bird_tweet", 123, (60, 90)), ("telephone_ring", 124, (55, 80)),
               ("helicopter", 125, (30, 60)), ("applause", 126, (50, 70)), ("gunshot", 127, (35, 60)),
               ("breath_noise", 121, (50, 75)), ("guitar_fret_noise", 120, (40, 80)),
               ("snare_roll", None, (38, 40)), ("cowbell", None, (56, 56)))


def sfx_midi(category: int, rng: np.random.Generator, seconds: float):
    """A pretty_midi clip of one sound-effect class: 1-6 events (a drum roll: a burst of hits)
    at random times, pitches and velocities."""
    import pretty_midi

    name, program, (low, high) = SFX_CLASSES[category]
    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=program or 0, is_drum=program is None, name=name)
    if name == "snare_roll":
        t = float(rng.uniform(0, 1.5))
        end = min(t + float(rng.uniform(1.0, 3.0)), seconds - 0.1)
        step = float(rng.uniform(0.04, 0.09))
        while t < end:
            instrument.notes.append(pretty_midi.Note(int(rng.integers(60, 120)), int(rng.choice([low, high])), t, t + 0.05))
            t += step
    else:
        for _ in range(int(rng.integers(1, 7))):
            start = float(rng.uniform(0, seconds - 0.6))
            length = float(rng.uniform(0.3, min(3.0, seconds - start)))
            pitch = int(rng.integers(low, high + 1))
            instrument.notes.append(pretty_midi.Note(int(rng.integers(50, 127)), pitch, start, start + length))
    midi.instruments.append(instrument)
    return midi


def write_sfx(root: str, per_fold: int, seconds: float = 5.0, seed: int = 0) -> None:
    """An ESC-50 folder below `root`: `per_fold` clips of each class in each of 5 folds, 44.1 kHz."""
    soundfont = general_midi_soundfont()
    rng = np.random.default_rng(seed)
    base = os.path.join(root, "ESC-50-master")
    os.makedirs(os.path.join(base, "audio"), exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fold in range(1, 6):
            for target, (category, _, _) in enumerate(SFX_CLASSES):
                for i in range(per_fold):
                    name = f"{fold}-{1000 * target + i}-A-{target}.wav"
                    midi_path, raw = os.path.join(tmp, "clip.mid"), os.path.join(tmp, "clip.wav")
                    sfx_midi(target, rng, seconds).write(midi_path)
                    render_midi(soundfont, midi_path, raw)
                    wave, rate = sf.read(raw, dtype="float32", always_2d=True)
                    clip = np.zeros(int(seconds * rate), np.float32)  # ESC-50 clips are exactly 5 s
                    mono = wave.mean(axis=1)[: len(clip)]
                    clip[: len(mono)] = mono
                    clip += 1e-4 * rng.standard_normal(len(clip)).astype(np.float32)
                    with atomic.atomic_path(os.path.join(base, "audio", name), suffix=".wav") as out:
                        sf.write(out, clip, rate)
                    rows.append({"filename": name, "fold": fold, "target": target, "category": category,
                                 "esc10": "False", "src_file": str(1000 * target + i), "take": "A"})
    os.makedirs(os.path.join(base, "meta"), exist_ok=True)
    with atomic.atomic_path(os.path.join(base, "meta", "esc50.csv"), suffix=".csv") as tmp_csv:
        with open(tmp_csv, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.corpora", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("speech", "tts", "piano", "sfx"))
    parser.add_argument("out", help="folder to write the corpus below")
    parser.add_argument("--speakers", type=int, default=8)
    parser.add_argument("--utterances", type=int, default=None, help="per speaker (speech: 40, tts: 150)")
    parser.add_argument("--held-out", type=int, default=12, help="tts: held-out sentences per speaker")
    parser.add_argument("--pieces", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=40.0, help="per piano piece")
    parser.add_argument("--per-fold", type=int, default=12, help="sound-effect clips per class and fold")
    parser.add_argument("--words", type=int, nargs=2, default=SPEECH_WORDS, metavar=("LOW", "HIGH"),
                        help="speech: words per sentence, [LOW, HIGH) (LibriSpeech-like: 20 41)")
    args = parser.parse_args()
    if args.kind == "speech":
        write_speech(args.out, args.speakers, args.utterances or 40, words=tuple(args.words))
    elif args.kind == "tts":
        write_tts_speech(args.out, args.speakers, args.utterances or 150, args.held_out)
    elif args.kind == "sfx":
        write_sfx(args.out, args.per_fold)
    else:
        write_piano(args.out, args.pieces, args.seconds)
    print(f"wrote {args.kind} corpus below {args.out}")


if __name__ == "__main__":
    main()
