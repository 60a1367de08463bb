"""MIDI → notes → frame-aligned piano-roll features (and back to a MIDI file).

Notes travel as float32 arrays `[N, 4]`: onset and offset in seconds, MIDI pitch (21-108
for the 88 piano keys), velocity (1-127), sorted by onset. `read_notes` parses a file with
pretty_midi and applies the sustain pedal (CC64) to note durations as MAESTRO's own
transcription work does (onsets-and-frames, note-seq): a key released while the pedal is
down sounds on until the pedal lifts, or until the same key is struck again.

`piano_roll` turns notes into per-frame features for the model, `[frames, 3 * 88]`: for
each key whether a note starts in the frame (onset), whether one sounds (frame), and its
velocity / 127 while it sounds. Frame f is centred at sample `f * hop_length`, as the
log-mel frames are (`audio.py`, librosa's `center=True`), so feature frame f describes
what log-mel frame f hears.
"""

from __future__ import annotations

import io
import os
import tempfile
from typing import Optional

import numpy as np

LOWEST_KEY, KEYS = 21, 88  # A0 .. C8
FEATURES_PER_FRAME = 3 * KEYS  # onset, frame (sounding), velocity per key
SUSTAIN_CONTROL = 64
EMPTY = np.zeros((0, 4), np.float32)


class MidiError(ValueError):
    """A MIDI file that cannot be read."""


def _sustain_intervals(control_changes, end: float) -> list[tuple[float, float]]:
    """(down, up) seconds of the sustain pedal from an instrument's control changes."""
    intervals, down = [], None
    for cc in sorted((c for c in control_changes if c.number == SUSTAIN_CONTROL), key=lambda c: c.time):
        if cc.value >= 64 and down is None:
            down = cc.time
        elif cc.value < 64 and down is not None:
            intervals.append((down, cc.time))
            down = None
    if down is not None:
        intervals.append((down, end))
    return intervals


def apply_sustain(notes: np.ndarray, pedal: list[tuple[float, float]]) -> np.ndarray:
    """Notes `[N, 4]` with each offset that falls while the pedal is down moved to the
    pedal's release, but never past the next onset of the same pitch."""
    notes = notes[np.argsort(notes[:, 0], kind="stable")].copy()
    for i, (onset, offset, pitch, _) in enumerate(notes):
        for down, up in pedal:
            if down <= offset < up:
                offset = up
                break
        later = notes[(notes[:, 2] == pitch) & (notes[:, 0] > onset), 0]
        notes[i, 1] = min(offset, later.min()) if len(later) else offset
    return notes


def read_notes(source: bytes | str, name: Optional[str] = None) -> np.ndarray:
    """The piano notes `[N, 4]` (onset s, offset s, pitch, velocity) of a MIDI file given as
    bytes or a path, sustain applied, drums dropped, keys outside the piano dropped,
    sorted by onset then pitch.
    Raises MidiError naming `name` (or the path) when the file cannot be parsed."""
    import pretty_midi  # the MIDI parser; imported here so audio-only runs never load it

    label = name or (source if isinstance(source, str) else "MIDI bytes")
    try:
        pm = pretty_midi.PrettyMIDI(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Exception as e:  # pretty_midi/mido raise many types on a damaged file
        raise MidiError(f"{label}: not a readable MIDI file ({type(e).__name__}: {e})") from None
    end = pm.get_end_time()
    parts = []
    for instrument in pm.instruments:
        if instrument.is_drum or not instrument.notes:
            continue
        notes = np.array([[n.start, n.end, n.pitch, n.velocity] for n in instrument.notes], np.float32)
        parts.append(apply_sustain(notes, _sustain_intervals(instrument.control_changes, end)))
    notes = np.concatenate(parts) if parts else EMPTY
    keep = (notes[:, 2] >= LOWEST_KEY) & (notes[:, 2] < LOWEST_KEY + KEYS) & (notes[:, 1] > notes[:, 0])
    notes = notes[keep]
    return notes[np.lexsort((notes[:, 2], notes[:, 0]))].astype(np.float32)  # by onset, then pitch


def write_midi(notes: np.ndarray, path: str, program: int = 0) -> None:
    """Writes notes `[N, 4]` as a one-track MIDI file (General MIDI `program`, 0 = piano),
    atomically (a temporary file renamed into place)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=program)
    for onset, offset, pitch, velocity in np.asarray(notes, np.float64):
        piano.notes.append(pretty_midi.Note(velocity=int(np.clip(round(velocity), 1, 127)), pitch=int(pitch),
                                            start=float(onset), end=float(max(offset, onset + 1e-3))))
    pm.instruments.append(piano)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=folder, suffix=".mid.tmp")
    os.close(handle)
    try:
        pm.write(tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def window_notes(notes: np.ndarray, start_seconds: float, seconds: float) -> np.ndarray:
    """The notes sounding in [start, start + seconds), times made relative to `start`:
    a note begun earlier keeps its negative onset (it is held across the cut), offsets
    past the window are kept as they are (the roll cuts them)."""
    notes = np.asarray(notes, np.float32).reshape(-1, 4)
    keep = (notes[:, 1] > start_seconds) & (notes[:, 0] < start_seconds + seconds)
    out = notes[keep].copy()
    out[:, :2] -= start_seconds
    return out


def piano_roll(notes: np.ndarray, frames: int, sample_rate: int, hop_length: int) -> np.ndarray:
    """Features `[frames, 3 * 88]` float32 of notes `[N, 4]` (seconds relative to the audio's
    sample 0): columns 0-87 onset (1 in the frame whose centre is nearest the onset),
    88-175 sounding (1 from the onset's frame to the offset's, at least one frame),
    176-263 velocity / 127 where sounding. A note with a negative onset (held from
    before) sounds from frame 0 without an onset."""
    roll = np.zeros((frames, FEATURES_PER_FRAME), np.float32)
    frame_rate = sample_rate / hop_length  # frames per second
    for onset, offset, pitch, velocity in np.asarray(notes, np.float64).reshape(-1, 4):
        key = int(pitch) - LOWEST_KEY
        if not 0 <= key < KEYS:
            continue
        first = int(np.floor(onset * frame_rate + 0.5))
        last = max(int(np.floor(offset * frame_rate + 0.5)), first + 1)  # exclusive
        if 0 <= first < frames:
            roll[first, key] = 1.0
        lo, hi = max(first, 0), min(last, frames)
        if lo < hi:
            roll[lo:hi, KEYS + key] = 1.0
            roll[lo:hi, 2 * KEYS + key] = np.maximum(roll[lo:hi, 2 * KEYS + key], velocity / 127.0)
    return roll


def pitch_hz(pitches: np.ndarray) -> np.ndarray:
    """Fundamental frequency in Hz of MIDI pitches (A4 = 69 = 440 Hz, equal temperament)."""
    return 440.0 * 2.0 ** ((np.asarray(pitches, np.float64) - 69.0) / 12.0)


def onsets_and_pitches(notes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Onset-only note intervals `[N, 2]` (seconds) and pitches `[N]` in Hz, as mir_eval's
    transcription metrics take them (notes with negative onsets, held from before a cut,
    are left out: their onset is not in the audio)."""
    notes = np.asarray(notes, np.float64).reshape(-1, 4)
    notes = notes[notes[:, 0] >= 0]
    return notes[:, :2], pitch_hz(notes[:, 2])


def shuffled_notes(notes: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """The floor's MIDI: the same notes (durations, velocities) with pitches permuted
    among them and onsets drawn uniformly over [0, seconds), sorted by onset."""
    notes = np.asarray(notes, np.float32).reshape(-1, 4).copy()
    if not len(notes):
        return notes
    durations = notes[:, 1] - notes[:, 0]
    notes[:, 0] = rng.uniform(0, seconds, len(notes))
    notes[:, 1] = notes[:, 0] + durations
    notes[:, 2] = rng.permutation(notes[:, 2])
    return notes[np.argsort(notes[:, 0], kind="stable")]


# Note-event tokens (music-spectrogram-diffusion's encoding, Hawthorne et al. 2022): a "tie"
# section naming the keys already sounding when the window starts, then events in time
# order, each introduced by the window-relative time (10 ms bins) when it changes and the
# velocity (32 bins; 0 = note-off) when it changes, then the key.
TOKEN_PAD, TOKEN_TIE_END = 0, 1
TIME_BINS_PER_SECOND = 100
TIME_BINS = 1024  # windows up to 10.24 s
VELOCITY_BINS = 32
TIME_OFFSET = 2
VELOCITY_OFFSET = TIME_OFFSET + TIME_BINS
PITCH_OFFSET = VELOCITY_OFFSET + VELOCITY_BINS
TOKEN_VOCABULARY = PITCH_OFFSET + KEYS
MAX_TOKEN_SECONDS = TIME_BINS / TIME_BINS_PER_SECOND


def velocity_bin(velocity: float) -> int:
    """MIDI velocity 1-127 → bin 1..31 (0 is note-off)."""
    return int(np.clip(np.ceil(velocity * (VELOCITY_BINS - 1) / 127.0), 1, VELOCITY_BINS - 1))


def note_tokens(notes: np.ndarray, seconds: float, max_tokens: int) -> np.ndarray:
    """Token ids `[max_tokens]` int32 (TOKEN_PAD after the end) of the notes `[N, 4]` heard in
    [0, seconds) (times relative to the window's start; `window_notes` cuts them): the tie
    section (keys held from before 0, ascending) and TOKEN_TIE_END, then onsets and offsets
    in time order. Events that do not fit in `max_tokens` are dropped from the end."""
    notes = np.asarray(notes, np.float64).reshape(-1, 4)
    notes = notes[(notes[:, 1] > 0) & (notes[:, 0] < seconds)]
    tokens = [PITCH_OFFSET + int(p) - LOWEST_KEY for p in sorted(set(notes[notes[:, 0] < 0, 2]))] + [TOKEN_TIE_END]
    events = []  # (time bin, 0 = off / 1 = on, key, velocity bin)
    for onset, offset, pitch, velocity in notes:
        key = int(pitch) - LOWEST_KEY
        if onset >= 0:
            events.append((min(int(onset * TIME_BINS_PER_SECOND), TIME_BINS - 1), 1, key, velocity_bin(velocity)))
        if offset < seconds:
            events.append((min(int(offset * TIME_BINS_PER_SECOND), TIME_BINS - 1), 0, key, 0))
    time, velocity = -1, -1
    for t, _, key, v in sorted(events):
        if t != time:
            tokens.append(TIME_OFFSET + t)
            time = t
        if v != velocity:
            tokens.append(VELOCITY_OFFSET + v)
            velocity = v
        tokens.append(PITCH_OFFSET + key)
    out = np.full(max_tokens, TOKEN_PAD, np.int32)
    kept = tokens[:max_tokens]
    out[: len(kept)] = kept
    return out


def token_seconds(tokens: np.ndarray) -> np.ndarray:
    """Seconds `[S]` float32 at which each token of `note_tokens` acts: the running time of
    its event (0 for the tie section and padding)."""
    out, time = np.zeros(len(tokens), np.float32), 0.0
    for i, token in enumerate(int(t) for t in tokens):
        if TIME_OFFSET <= token < VELOCITY_OFFSET:
            time = (token - TIME_OFFSET) / TIME_BINS_PER_SECOND
        out[i] = time if token != TOKEN_PAD else 0.0
    return out


def decode_tokens(tokens: np.ndarray) -> tuple[list[int], list[tuple[float, int, int]]]:
    """Token ids → (held keys as MIDI pitches, [(seconds, pitch, velocity bin)] events with
    velocity bin 0 for note-offs): the inverse of `note_tokens`, for reading and tests."""
    held, events, time, velocity, tie = [], [], 0.0, 0, True
    for token in (int(t) for t in tokens):
        if token == TOKEN_PAD:
            break
        if token == TOKEN_TIE_END:
            tie = False
        elif token >= PITCH_OFFSET:
            pitch = token - PITCH_OFFSET + LOWEST_KEY
            if tie:
                held.append(pitch)
            else:
                events.append((time, pitch, velocity))
        elif token >= VELOCITY_OFFSET:
            velocity = token - VELOCITY_OFFSET
        else:
            time = (token - TIME_OFFSET) / TIME_BINS_PER_SECOND
    return held, events
