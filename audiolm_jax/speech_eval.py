"""Scoring synthesised speech offline: intelligibility, speaker identity and alignment.

- `Recogniser`: pocketsphinx (its US English acoustic model and dictionary ship inside the
  PyPI wheel) with its general language model, or — for a corpus of known words, such as
  the word-list corpora the benchmarks build — a grammar of any sequence of those words;
  `character_error_rate` scores its transcripts, `chance_character_error_rate` the same
  transcripts against sentences they do not speak (the level of unintelligible speech).
- `SpeakerEncoder`: resemblyzer's d-vector model (weights inside its wheel; needs torch),
  `identify` picks the nearest reference voice by cosine similarity.
- `alignment_scores`: whether an attention alignment `[positions, characters]` walks the
  text in order and covers it.
All are the `eval` extra's, never needed for training.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np

ASR_HINT = "pip install pocketsphinx (the eval extra)"
SPEAKER_HINT = "pip install torch webrtcvad-wheels && pip install --no-deps resemblyzer (the eval extra)"


def words_of(text: str) -> list[str]:
    """Lower-case words of `text`: letters, digits and apostrophes only."""
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance between sequences `a` and `b` (substitutions, insertions, deletions)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Character edits over reference characters, summed over pairs (words re-joined by single
    spaces, case and punctuation dropped)."""
    edits = chars = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref, hyp = " ".join(words_of(reference)), " ".join(words_of(hypothesis))
        edits, chars = edits + edit_distance(ref, hyp), chars + len(ref)
    return edits / max(chars, 1)


def chance_character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """The CER of `hypotheses` scored against transcripts they do not speak: each against the
    next pair's reference (the references rotated by one; `character_error_rate`), so
    lengths, vocabulary and the recogniser's habits stay and only the words' link to the
    speech is cut. Speech no more intelligible than chance scores this; NaN with fewer than
    two pairs."""
    if len(references) != len(hypotheses):
        raise ValueError(f"chance CER: {len(references)} references but {len(hypotheses)} hypotheses")
    if len(references) < 2:
        return float("nan")
    return character_error_rate(list(references[1:]) + [references[0]], hypotheses)


def intelligibility_share(cer: float, cer_chance: float, ceiling_cer: float, ceiling_chance: float) -> float:
    """How far speech's CER `cer` lies from its chance level `cer_chance`
    (`chance_character_error_rate`) toward the ceiling's (the Griffin-Lim resynthesis of the
    recordings, `ceiling_cer` against its own `ceiling_chance`), as a share of the ceiling's
    margin over chance: 0 at chance (unintelligible), 1 as intelligible as the ceiling; NaN
    when the ceiling is no better than its chance."""
    margin = ceiling_chance - ceiling_cer
    return (cer_chance - cer) / margin if margin > 0 else float("nan")


def asr_available() -> bool:
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        return False
    return True


class Recogniser:
    """Offline speech recognition at 16 kHz with pocketsphinx's bundled US English model.

    With `vocabulary` (words), recognition is restricted to sequences of those words (a JSGF
    grammar): the fair recogniser for a closed-vocabulary corpus, since the general
    language model expects ordinary English sentences. Words the dictionary lacks are left
    out of the grammar (and counted in `unknown_words`)."""

    SAMPLE_RATE = 16000

    def __init__(self, vocabulary: Optional[Sequence[str]] = None):
        from pocketsphinx import Decoder

        self._decoder = Decoder(samprate=self.SAMPLE_RATE, loglevel="FATAL")
        self.unknown_words: list[str] = []
        if vocabulary:
            known = sorted({w for w in vocabulary if self._decoder.lookup_word(w) is not None})
            self.unknown_words = sorted(set(vocabulary) - set(known))
            if not known:
                raise ValueError("Recogniser: no word of the vocabulary is in pocketsphinx's dictionary")
            grammar = "#JSGF V1.0;\ngrammar words;\npublic <utterance> = ( " + " | ".join(known) + " )+ ;\n"
            self._decoder.add_jsgf_string("words", grammar)
            self._decoder.activate_search("words")

    def transcribe(self, waveform: np.ndarray, sample_rate: int) -> str:
        """Mono float `[samples]` at `sample_rate` (resampled to 16 kHz) → lower-case words."""
        if sample_rate != self.SAMPLE_RATE:
            import librosa

            waveform = librosa.resample(np.asarray(waveform, np.float32), orig_sr=sample_rate,
                                        target_sr=self.SAMPLE_RATE)
        pcm = (np.clip(np.asarray(waveform, np.float32), -1.0, 1.0) * 32767).astype(np.int16)
        self._decoder.start_utt()
        self._decoder.process_raw(pcm.tobytes(), full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr.lower() if hypothesis is not None else ""


def speaker_encoder_available() -> bool:
    try:
        import resemblyzer  # noqa: F401
    except ImportError:
        return False
    return True


class SpeakerEncoder:
    """resemblyzer's VoiceEncoder on the CPU: a waveform → a unit-norm 256-d speaker embedding."""

    def __init__(self):
        from resemblyzer import VoiceEncoder

        self._encoder = VoiceEncoder("cpu", verbose=False)

    def embed(self, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono float `[samples]` → `[256]` (resemblyzer's preprocessing: 16 kHz, loudness
        normalised, long silences trimmed)."""
        from resemblyzer import preprocess_wav

        return np.asarray(self._encoder.embed_utterance(preprocess_wav(np.asarray(waveform, np.float32), sample_rate)))


def _unit(x: np.ndarray) -> np.ndarray:
    """`x` `[..., D]` scaled to unit length along its last axis."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings `[D]`."""
    return float(_unit(a) @ _unit(b))


def identify(embeddings: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Index `[N]` of the nearest reference `[K, D]` (cosine similarity) for each embedding `[N, D]`."""
    return np.argmax(_unit(embeddings) @ _unit(references).T, axis=1)


def alignment_scores(alignment: np.ndarray, min_monotonic: float = 0.9, min_coverage: float = 0.9
                     ) -> dict[str, float]:
    """How an attention alignment `[positions, characters]` walks the text: `monotonic`, the
    share of consecutive positions whose focus (the most attended character) does not move
    back by more than one character; `coverage`, the share of characters within one of some
    position's focus or passed over by a step of at most 3 characters; `diagonal` (1.0 or 0.0), both at least their minimum."""
    alignment = np.asarray(alignment)
    positions, chars = alignment.shape
    if positions == 0 or chars == 0:
        return {"monotonic": 0.0, "coverage": 0.0, "diagonal": 0.0}
    focus = np.argmax(alignment, axis=1)
    monotonic = float(np.mean(np.diff(focus) >= -1)) if positions > 1 else 1.0
    reached = np.zeros(chars, bool)
    for f in focus:
        reached[max(f - 1, 0) : f + 2] = True
    for a, b in zip(focus[:-1], focus[1:]):  # a step of up to 3 characters passes over those between
        if 0 < b - a <= 3:
            reached[a : b + 1] = True
    coverage = float(reached.mean())
    return {"monotonic": monotonic, "coverage": coverage,
            "diagonal": float(monotonic >= min_monotonic and coverage >= min_coverage)}


def reading_and_tail(alignment: np.ndarray, margin: int = 3) -> tuple[int, int]:
    """Where a synthesis' or recording's time goes, from its alignment `[positions,
    characters]`: the positions before its running focus (the furthest character attended
    most so far) first comes within `margin` characters of the text's last — reading the
    text — and the positions from there on — its tail: the last word and what follows it,
    where the gate may end speech (`sample.gate_focus_margin`). In positions (decoding
    groups of `frames_per_step` frames)."""
    from audiolm_jax.continuation import focus_near_end  # the gate's own rule (imports JAX: only here)

    alignment = np.asarray(alignment)
    if alignment.shape[0] == 0 or alignment.shape[1] == 0:
        return 0, 0
    near = np.flatnonzero(focus_near_end(alignment, margin))
    reading = int(near[0]) if len(near) else alignment.shape[0]
    return reading, alignment.shape[0] - reading
