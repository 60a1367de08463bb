"""Evaluation of a checkpoint: teacher-forced loss against the copy-last-frame baseline, and
collapse detectors for free-running continuations.

    python -m audiolm_jax.evaluate --workdir RUN [--prompts 8] [--data.eval_split=test] [--sample.seconds=8]

Continuations go through the one continuation path (`continuation.py`) with the
checkpoint's sampling settings, as `run` and `sample` do. Prints the metrics and writes
`<workdir>/eval.json` atomically:
- `val_loss`, `val_mse`, `baseline_mse`, `baseline_ratio`: teacher-forced, on the split's
  deterministic evaluation crops (the model sees the true past; < 1 beats copying); with
  an end-of-audio gate, `gate_bce` and `gate_accuracy` on the same crops (guided attention:
  `guided_attention`; a post-net: `postnet_mse`; `train.reported_eval_metrics`).
- For each sample of `sample.seconds` after `sample.prompt_seconds` of each prompt, averaged:
  `energy_drift_db` (mean frame energy of the continuation minus the prompt's) and
  `abs_energy_drift_db` (the mean of its magnitude), `loudness_drift_db` and
  `abs_loudness_drift_db` (the same with each side's level gated as ITU-R BS.1770 gates
  loudness: 400 ms blocks within 10 dB of the ungated level, so pauses and a silent
  lead-in, whose depth a mean of frame dB is dominated by, do not count), `spectral_flux_ratio` (frame-to-frame
  change of the continuation over the prompt's; near 0 means frozen, >> 1 noisy),
  `silent_fraction` (frames 60 dB below the prompt's peak), `frozen_fraction` (frames
  changing by < 0.1 dB RMS from the previous one), `timbre_distance_db` (long-term average
  spectra of continuation and prompt, level removed, RMS over bins), `median_bin_drift_db`
  (how much the typical bin's long-term level moved) and `shape_loudness_drift_db` (the part
  of the gated drift owed to the spectrum's shape: energy piled into a few bins raises a
  power level while the typical bin holds; `metrics.continuation_metrics`), `pinned_fraction`
  (values held on their bin's training range by decoding's range clip: the sustained
  horizontal stripes that the frame-level detectors miss).
- `real_*`: the same metrics of each clip's own audio after its prompt (where at least half
  of `sample.seconds`, or a second, follows): the data's reference, since real music and speech change level too
  (the demo's clips open with up to a beat of near-silence: their real continuations' mean
  frame energy is about 9 dB above their first 1.5 s, their gated level about 1 dB);
  `real_abs_energy_drift_db`, the mean |real drift| (real audio's own spread of level about
  its prompt's; `real_abs_loudness_drift_db` gated); `drift_vs_real_db`
  (`loudness_drift_vs_real_db`), the mean |model drift - real drift| per prompt.
- `resynthesis_sc_db`: spectral convergence of the inversion of the prompts' true log-mels.
- With a label-conditioned model (`model.condition.label`), generated sound is scored by a
  classifier trained here on the run's real training clips (`classifier.py`), each cut to
  its first `sample.seconds`, the length of every clip generated for it:
  `classifier_real_accuracy` on held-out real clips (the sanity line),
  `classifier_resynth_accuracy` on their Griffin-Lim resynthesis (the vocoder's ceiling),
  `label_by_likelihood` (the share of held-out real clips the model itself finds likeliest
  under their own label, teacher-forced: whether its predictions depend on the label at
  all; chance 1/K),
  `label_accuracy` of clips generated from each label at `sample.guidance` and
  `label_accuracy_g<g>` across the guidance sweep (g = 0 is the unconditional model),
  per label `label_accuracy[<label>]` and `label_taken_for[<label>]` (the label its
  generated clips were most often classified as: which sound they resemble),
  `frechet_distance` (generated vs real training clips of each label, in the classifier's
  embedding, mean over labels; `frechet_distance_resynth` of the resynthesised held-out
  clips the same way) and `diversity_ratio` (mean pairwise embedding distance among one
  label's generated clips over the same among its real clips, mean over labels).
- With a MIDI-conditioned model (`model.condition.midi`) and the `eval` extra's piano
  transcriber (`transcribe.py`: basic-pitch's ONNX model, mir_eval onsets at 50 ms): the
  first `--midi-seconds` of `--midi-pieces` held-out examples are rendered from their notes
  alone (no audio prompt) and transcribed; `onset_f1` against those notes, beside
  `onset_f1_resynth` (the recording after the same Griffin-Lim: the ceiling),
  `onset_f1_real` (the recording itself: the transcriber's own ceiling) and
  `onset_f1_shuffled` (the model given the same notes with pitches permuted and onsets
  redrawn: the floor), `onset_f1_vs_ceiling` and `onset_f1_vs_floor`; `midi_energy_error_db`
  (and its magnitude `midi_abs_energy_error_db`: rendering minus recording, mean frame
  energy) and `midi_silent_where_notes` / `midi_frozen_where_notes` (shares of frames
  where the MIDI has a note that are silent or frozen in the rendering).
- With the `eval` extra (`speechmos`, whose DNSMOS ONNX models ship inside the package and
  run offline) and speech (`librispeech` source, or `--dnsmos on`):
  `dnsmos_prompt_resynth_ovrl` (the prompt after the same Griffin-Lim: the vocoder's
  ceiling), `dnsmos_continuation_ovrl` (and `_p808`), and `dnsmos_ratio`, continuation
  over resynthesised prompt, so the vocoder's loss is not counted against the model.
- With guided text attention (a TTS run): `--tts-duration-utterances` (96) held-out
  transcripts, spread over the speakers, synthesised from text alone `--tts-draws` times
  each for the durations and alignments, and by default every one of them also for the
  CER and the cloning (`--tts-utterances N`: the first N only; on the espeak-ng corpus a
  CER over 24 sentences was 0.3x more optimistic than over all 96) (one batch per transcript; the draws differ in their
  prenet-dropout masks; a model with a speaking-rate or duration conditioner at the speaker's rate
  over its other held-out recordings, `--tts-rate voice`, `tts_rate_given` the share that
  had one): `duration_ratio` (synthesis over recording) and `duration_within_20pct` (the
  share of syntheses within ±20%: the gate's stop accuracy), where the time goes
  (`speech_eval.reading_and_tail`: `reading_ratio`, a synthesis' positions until its focus
  nears the text's end over the recording's, and `tail_groups` from there to its end beside
  the recordings' `real_tail_groups`) and the guided heads' `alignment_*` scores over every
  draw (`duration_syntheses` of them), `real_alignment_*` teacher-forced on the recordings;
  `cer` of the first draws (pocketsphinx, the `eval` extra) beside `cer_resynth` (the
  recordings after the same Griffin-Lim: the vocoder's ceiling) and `cer_real`; each
  beside its chance level, `cer_chance` and `cer_resynth_chance` (the same transcripts
  scored against sentences they do not speak, `speech_eval.chance_character_error_rate`:
  on the espeak-ng word-list corpus about 0.95, 2.2x the resynthesis', so a `cer_vs_resynth`
  near 2 can be unintelligible speech), and `intelligibility` (0 at chance, 1 as
  intelligible as the resynthesis, `speech_eval.intelligibility_share`);
  `cer_teacher_forced` (`teacher_forced_cer`: the model's frames predicted from each
  recording's real past, so words lost per frame are told from words lost to free running)
  and its ratio to the resynthesis', `cer_teacher_forced_vs_resynth`, its chance level and
  `teacher_forced_intelligibility`; `text_reliance` (needs no extra: the teacher-forced
  error with each recording's transcript swapped for another's over that with its own;
  1.0, the frames come from the past frames alone); and voice
  cloning (`cloning_metrics`, resemblyzer): speaker identification of clones beside that of
  the recordings and their resynthesis.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Iterable, Iterator, Optional, Sequence

import jax
import numpy as np
from tqdm.auto import tqdm

from audiolm_jax import atomic, audio, cli, conditioning, continuation, invert, midi, runtime, sample, train
from audiolm_jax import metrics as metrics_lib
from audiolm_jax import classifier as classifier_lib
from audiolm_jax.metrics import DRIFT_KEYS, continuation_metrics, continuation_summary
from audiolm_jax.config import ConfigError, ExperimentConfig
from audiolm_jax.model import MelTransformer

log = logging.getLogger(__name__)


def dnsmos_scores(waveform: np.ndarray, sample_rate: int) -> dict[str, float]:
    """DNSMOS overall and P.808 scores of mono `[samples]` audio (resampled to 16 kHz)."""
    import librosa
    from speechmos import dnsmos

    wave = librosa.resample(waveform, orig_sr=sample_rate, target_sr=16000) if sample_rate != 16000 else waveform
    scores = dnsmos.run(np.clip(np.asarray(wave, np.float32), -1.0, 1.0), 16000, return_df=False)
    return {"ovrl": float(scores["ovrl_mos"]), "p808": float(scores["p808_mos"])}


def dnsmos_available() -> bool:
    """Whether the optional `eval` extra (speechmos + onnxruntime) is installed."""
    try:
        import speechmos.dnsmos  # noqa: F401
    except ImportError:
        return False
    return True


def real_continuation_metrics(prompt: continuation.Prompt, clip: np.ndarray, config: ExperimentConfig,
                              range_db: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float] | None:
    """The collapse detectors of the clip's own audio after the prompt (up to `sample.seconds`),
    the data's reference for a continuation's metrics (`range_db`: see
    `metrics.continuation_metrics`); None when less than half of `sample.seconds` (or a
    second) follows."""
    start = len(prompt.log_mel_db)
    real_db = np.asarray(audio.log_mel_jax(np.asarray(clip, np.float32)[None], config.audio))[0]
    end = min(audio.whole_window_frames(len(clip), config.audio),
              start + int(round(config.sample.seconds * config.audio.frames_per_second)))
    if end - start < min(1.0, config.sample.seconds / 2) * config.audio.frames_per_second:
        return None
    return continuation_metrics(real_db[:start], real_db[start:end], config.audio.frames_per_second, range_db)


def compared_with_real(per_sample: list[list[dict[str, float]]], real: list[dict[str, float] | None]
                       ) -> dict[str, float]:
    """Means of the real continuations' metrics (`real_*`; `real_abs_energy_drift_db`, the mean
    of |real drift|, is how far real audio moves from its own prompt's level: the scale a
    model's `abs_energy_drift_db` is read against; `real_abs_loudness_drift_db` the same of
    the gated level), and `drift_vs_real_db` (`loudness_drift_vs_real_db`): the mean
    |model drift - real drift| over prompts that have a real continuation."""
    pairs = [(samples, ref) for samples, ref in zip(per_sample, real) if ref is not None]
    if not pairs:
        return {}
    out = {f"real_{key}": float(np.mean([ref[key] for _, ref in pairs])) for key in pairs[0][1]}
    for key, vs_real in zip(DRIFT_KEYS, ("drift_vs_real_db", "loudness_drift_vs_real_db")):
        if key in pairs[0][1]:
            out[f"real_abs_{key}"] = float(np.mean([abs(ref[key]) for _, ref in pairs]))
            out[vs_real] = float(np.mean([abs(np.mean([m[key] for m in samples]) - ref[key])
                                          for samples, ref in pairs]))
    out["real_prompts"] = len(pairs)
    return out


def resynthesis(log_mel_db: np.ndarray, num_samples: int, config: ExperimentConfig, seed: int) -> np.ndarray:
    """A real recording's log-mel in dB `[frames, n_mels]` inverted by the sampling
    Griffin-Lim to `[num_samples]`: the vocoder's ceiling."""
    s = config.sample
    return invert.mel_to_audio(log_mel_db[None], config.audio, s.inversion, s.griffin_lim_iters, seed=seed,
                               length=num_samples)[0]


GUIDANCE_SWEEP = (0.0, 1.0, 2.0, 3.0, 5.0)


def continued(config: ExperimentConfig, sampler: "sample.Sampler", prompts: list[continuation.Prompt],
              key: jax.Array, what: Optional[str]) -> list[continuation.Continuation]:
    """`continuation.continue_prompts` (the one continuation path) of `prompts` with `config`'s
    sampling settings and `sampler`'s parameters, statistics and labels, its progress bar
    labelled `what`: an evaluation samples for minutes (a TTS run's 96 sentences, their
    clones and recognitions take most of an hour on a 2-core CPU)."""
    return continuation.continue_prompts(config, sampler.params, sampler.stats, prompts, key, sampler.labels,
                                         progress=what)


def each_with_progress(items: Iterable, what: str) -> Iterator:
    """`items` iterated under a progress bar labelled `what` (recognitions, embeddings,
    renderings: seconds each), each after `runtime.release_compiled_when_crowded` (these
    loops compile programs per item length)."""
    for item in tqdm(items, desc=what, dynamic_ncols=True):
        runtime.release_compiled_when_crowded()
        yield item


def _mean_or_nan(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def log_mel_features(log_mels: list[np.ndarray]) -> np.ndarray:
    """Classifier features `[N, F]` of log-mels in dB `[frames, n_mels]` (`clip_features`)."""
    return np.stack([classifier_lib.clip_features(m) for m in log_mels])


def clip_feature_matrix(waves: list[np.ndarray], config: ExperimentConfig) -> np.ndarray:
    """Classifier features `[N, F]` of mono clips `[samples]` (log-mel of each, then `clip_features`)."""
    from audiolm_jax.data.pipeline import clip_log_mels

    return log_mel_features(clip_log_mels(waves, config.audio))


def generated_clips(sampler: "sample.Sampler", prompts: list[continuation.Prompt], per_label: int,
                    guidance: float, key: jax.Array) -> list[np.ndarray]:
    """`per_label` clips `[samples]` per audio-less prompt (`unconditional_prompt` with a label
    and/or text), each `sample.seconds` long, at `guidance`, through the one continuation
    path; prompt by prompt."""
    import dataclasses

    cfg = sampler.config
    cfg = dataclasses.replace(cfg, sample=dataclasses.replace(cfg.sample, guidance=guidance, num_samples=per_label))
    conts = continued(cfg, sampler, prompts, key, f"generate (guidance {guidance:g})")
    return [w for c in conts for w in c.full]


def generated_by_label(sampler: "sample.Sampler", guidance: float, per_label: int, key: jax.Array
                       ) -> tuple[list[np.ndarray], np.ndarray]:
    """`per_label` clips `[samples]` generated from no audio for every label of the run, at
    `guidance`; and their label ids `[N]`."""
    prompts = [continuation.unconditional_prompt(sampler.config, sampler.stats, name, label=name)
               for name in sampler.labels.names]
    waves = generated_clips(sampler, prompts, per_label, guidance, key)
    return waves, np.repeat(np.arange(len(prompts)), per_label).astype(np.int32)


def description_accuracy(sampler: "sample.Sampler", data, clf: classifier_lib.Classifier, per_label: int,
                         key: jax.Array) -> dict[str, float]:
    """Label accuracy of clips generated from held-out descriptions alone (one caption of each
    label's first held-out example; the label itself withheld when the model can do without,
    `model.condition.each_dropout`), at `sample.guidance`: does the text reach the class it names?"""
    cfg = sampler.config
    first: dict[str, str] = {}
    for meta in data.eval_metadata(10_000):
        if meta["label"] is not None and meta["text"]:
            first.setdefault(meta["label"], meta["text"])
    if not first:
        return {}
    with_label = cfg.model.condition.label and cfg.model.condition.each_dropout == 0
    prompts = [continuation.unconditional_prompt(cfg, sampler.stats, label, label=label if with_label else None,
                                                 text=text) for label, text in first.items()]
    waves = generated_clips(sampler, prompts, per_label, cfg.sample.guidance, jax.random.fold_in(key, 7))
    predicted = clf.predict(clip_feature_matrix(waves, cfg))
    wanted = np.repeat([sampler.labels.id(label) for label in first], per_label)
    return {"description_label_accuracy": float(np.mean(predicted == wanted)),
            "description_with_label": float(with_label)}


def likeliest_labels(forward: Callable, params, config: ExperimentConfig, normalised: Sequence[np.ndarray],
                     num_labels: int) -> np.ndarray:
    """`[clips]`: for each real clip's normalised log-mel `[frames, n_mels]`, the label id
    under which the model finds it likeliest, teacher-forced — the smallest summed head loss
    (the likelihood heads' negative log-likelihood, the mse head's squared error) over the
    clip's first training crop, after the go frames every crop starts with. Not the sampled
    audio: how much the model's predictions of real sound depend on its label at all.
    `forward` is `train.make_forward(model)`."""
    from audiolm_jax.config import segment_frames

    r, n_mels = config.model.frames_per_step, config.audio.n_mels
    crop = segment_frames(config.data.segment_seconds, config.audio, r)
    conditions = conditioning.condition_arrays(config.model.condition, np.arange(num_labels))

    def row_loss(outputs: dict, mel: jax.Array) -> jax.Array:
        one = jax.tree.map(lambda v: v[None], outputs)
        return train.loss_sums(one, mel[None], jax.numpy.ones((1, mel.shape[0])), r, "mse")["loss"]

    losses = jax.jit(jax.vmap(row_loss))
    likeliest = []
    for frames in normalised:
        frames = np.asarray(frames[: min(len(frames), crop) // r * r], np.float32)  # whole groups of one crop
        mel = np.concatenate([np.zeros((config.data.go_frames, n_mels), np.float32), frames])
        rows = np.repeat(mel[None], num_labels, axis=0)
        outputs = train.teacher_forced_outputs(forward, params, rows, r, conditions)
        likeliest.append(int(np.argmin(np.asarray(losses(outputs, jax.numpy.asarray(rows))))))
    return np.asarray(likeliest, np.int64)


def label_metrics(sampler: "sample.Sampler", data, per_label: int = 4, guidances: Sequence[float] = GUIDANCE_SWEEP
                  ) -> dict[str, float]:
    """Label accuracy, Fréchet distance and diversity of generated sound (see the module docstring)."""
    cfg, s = sampler.config, sampler.config.sample
    num_classes = len(sampler.labels)
    from audiolm_jax.data.pipeline import clip_log_mels

    # real clips as long as the generated ones (`sample.seconds`): the classifier judges both
    # at one length, whatever crop the model trained on (a shorter crop changes no judge)
    train_waves, train_y = data.labelled_clips("train", 4000, s.seconds)
    eval_waves, eval_y = data.labelled_clips("eval", 2000, s.seconds)
    train_f = clip_feature_matrix(train_waves, cfg)
    clf = classifier_lib.train_classifier(train_f, train_y, num_classes, jax.random.PRNGKey(cfg.train.seed))
    eval_db = clip_log_mels(eval_waves, cfg.audio)
    out = {"classifier_real_accuracy": float(np.mean(clf.predict(log_mel_features(eval_db)) == eval_y))}
    forward = train.make_forward(MelTransformer(cfg.model, cfg.audio.n_mels), cfg.data.go_frames)
    try:
        likeliest = likeliest_labels(forward, sampler.params, cfg, [sampler.stats.normalise(m) for m in eval_db],
                                     num_classes)
        out["label_by_likelihood"] = float(np.mean(likeliest == eval_y))
    except conditioning.ConditionError:  # the model takes no label alone (it needs its text too): no such measure
        log.info("label_by_likelihood skipped: the model is conditioned on more than a label")
    resynth = [invert.mel_to_audio(m[None], cfg.audio, s.inversion, s.griffin_lim_iters, seed=i, length=len(w))[0]
               for i, (m, w) in enumerate(zip(eval_db, eval_waves))]
    resynth_f = clip_feature_matrix(resynth, cfg)
    out["classifier_resynth_accuracy"] = float(np.mean(clf.predict(resynth_f) == eval_y))
    real_embedding = clf.embed(train_f)
    key = jax.random.PRNGKey(s.seed)
    for g in sorted(set(guidances) | {s.guidance}):
        waves, y = generated_by_label(sampler, g, per_label, jax.random.fold_in(key, int(g * 100)))
        features = clip_feature_matrix(waves, cfg)
        predicted = clf.predict(features)
        accuracy = float(np.mean(predicted == y))
        out[f"label_accuracy_g{g:g}"] = accuracy
        if g == s.guidance:
            out["label_accuracy"] = accuracy
            for c, name in enumerate(sampler.labels.names):
                out[f"label_accuracy[{name}]"] = float(np.mean(predicted[y == c] == c))
                out[f"label_taken_for[{name}]"] = sampler.labels.names[int(np.bincount(predicted[y == c]).argmax())]
            generated = clf.embed(features)
            per_class = [(generated[y == c], real_embedding[train_y == c]) for c in range(num_classes)
                         if np.sum(train_y == c) > 1 and np.sum(y == c) > 1]  # a spread needs two of each
            out["frechet_distance"] = _mean_or_nan([classifier_lib.frechet_distance(gen, real)
                                                    for gen, real in per_class])
            out["diversity_ratio"] = _mean_or_nan([
                classifier_lib.mean_pairwise_distance(gen)
                / max(classifier_lib.mean_pairwise_distance(real[: max(len(gen), 8)]), 1e-9)
                for gen, real in per_class])
    if cfg.model.condition.text:
        out.update(description_accuracy(sampler, data, clf, per_label, key))
    resynth_embedding = clf.embed(resynth_f)
    distances = [classifier_lib.frechet_distance(resynth_embedding[eval_y == c], real_embedding[train_y == c])
                 for c in range(num_classes) if np.sum(eval_y == c) > 1 and np.sum(train_y == c) > 1]
    out["frechet_distance_resynth"] = _mean_or_nan(distances)
    out["generated_per_label"] = per_label
    return out


def render_pair(sampler: "sample.Sampler", name: str, notes: np.ndarray, seconds: float, key: jax.Array,
                rng: np.random.Generator) -> tuple[continuation.Continuation, continuation.Continuation]:
    """One rendering from no audio of `notes` `[N, 4]` over `seconds`, and one of the same
    notes shuffled (`midi.shuffled_notes`: the floor), at the run's guidance, through the one
    continuation path."""
    import dataclasses

    cfg = sampler.config
    cfg = dataclasses.replace(cfg, sample=dataclasses.replace(cfg.sample, seconds=seconds, num_samples=1))
    prompts = [continuation.unconditional_prompt(cfg, sampler.stats, name, notes=notes),
               continuation.unconditional_prompt(cfg, sampler.stats, f"{name}_shuffled",
                                                 notes=midi.shuffled_notes(notes, seconds, rng))]
    true, shuffled = continued(cfg, sampler, prompts, key, None)
    return true, shuffled


def midi_metrics(sampler: "sample.Sampler", data, pieces: int, seconds: float, key: jax.Array) -> dict[str, float]:
    """Renderings of held-out MIDI scored by transcription (see the module docstring): the
    first `seconds` of up to `pieces` evaluation examples, each rendered from its notes and
    from its notes shuffled, and its recording resynthesised by Griffin-Lim; means over
    pieces."""
    from audiolm_jax import transcribe

    cfg, rate = sampler.config, sampler.config.audio.sample_rate
    transcriber = transcribe.PianoTranscriber()
    rows = []
    for i, (wave, notes) in enumerate(each_with_progress(data.eval_recordings(pieces, seconds), "render MIDI pieces")):
        if not len(notes):
            continue
        true, shuffled = render_pair(sampler, f"midi_{i:03d}", notes, len(wave) / rate, jax.random.fold_in(key, i),
                                     np.random.default_rng([cfg.sample.seed, i]))
        reference_db = np.asarray(audio.log_mel_jax(wave[None], cfg.audio))[0]
        rebuilt = resynthesis(reference_db, len(wave), cfg, seed=i)
        score = lambda w: transcribe.onset_scores(notes, transcriber.notes(w[: len(wave)], rate))["f1"]
        sounding = midi.piano_roll(notes, len(reference_db), rate, cfg.audio.hop_length)[:, midi.KEYS : 2 * midi.KEYS]
        row = {"onset_f1": score(true.full[0]), "onset_f1_resynth": score(rebuilt), "onset_f1_real": score(wave),
               "onset_f1_shuffled": score(shuffled.full[0])}
        row.update(metrics_lib.rendering_metrics(reference_db, true.full_log_mel[0], sounding.any(axis=1)))
        rows.append(row)
    if not rows:
        raise ValueError("no evaluation example has notes to render")
    out = {f"midi_{k}" if not k.startswith("onset") else k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    out["midi_abs_energy_error_db"] = float(np.mean([abs(r["energy_error_db"]) for r in rows]))
    out["onset_f1_vs_ceiling"] = out["onset_f1"] / max(out["onset_f1_resynth"], 1e-6)
    out["onset_f1_vs_floor"] = out["onset_f1"] / max(out["onset_f1_shuffled"], 1e-6)
    out["midi_pieces"] = len(rows)
    return out


def spread_over_speakers(metas: list[dict], count: int) -> list[int]:
    """Indices of up to `count` utterances taken in turn from each speaker (their order kept),
    so a few utterances cover every voice; utterances without a speaker form one group."""
    groups: dict = {}
    for i, meta in enumerate(metas):
        groups.setdefault(meta.get("speaker"), []).append(i)
    picked, turn = [], 0
    while len(picked) < min(count, len(metas)):
        for members in groups.values():
            if turn < len(members) and len(picked) < count:
                picked.append(members[turn])
        turn += 1
    return picked


def teacher_forced_inputs(sampler: "sample.Sampler", log_mel_db: np.ndarray, text: str,
                          waveform: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """A real recording's log-mel in dB `[frames, n_mels]` as training feeds it with `text`:
    normalised frames after the go frames `[1, go + frames, n_mels]`, and their conditions (a
    speaking-rate conditioner gets the rate of the recording `waveform` `[samples]`)."""
    from audiolm_jax import tts

    cfg = sampler.config
    mel = sampler.stats.normalise(log_mel_db)
    frames = np.concatenate([np.zeros((cfg.data.go_frames, cfg.audio.n_mels), np.float32), mel])[None]
    rate = tts.recording_rate(cfg, text, waveform) if waveform is not None else None
    conditions = conditioning.condition_arrays(cfg.model.condition, texts=[text], voices=mel[None],
                                               rates=None if rate is None else np.array([rate]),
                                               frames_per_second=cfg.audio.frames_per_second,
                                               audio_start_frame=cfg.data.go_frames)  # as trained
    return frames, conditions


def real_text_alignment(sampler: "sample.Sampler", log_mel_db: np.ndarray, text: str,
                        waveform: np.ndarray | None = None) -> np.ndarray:
    """The guided heads' attention `[positions, characters]` of a teacher-forced pass over a real
    recording's log-mel in dB `[frames, n_mels]` of `text` (`teacher_forced_inputs`)."""
    frames, conditions = teacher_forced_inputs(sampler, log_mel_db, text, waveform)
    return continuation.text_alignments(sampler.config, sampler.params, frames, conditions,
                                        np.array([frames.shape[1]]))[0]


def teacher_forced_speech(sampler: "sample.Sampler", log_mel_db: np.ndarray, text: str,
                          waveform: np.ndarray | None = None) -> np.ndarray | None:
    """The model's frames in dB `[frames, n_mels]` for a real recording's log-mel in dB
    `[frames, n_mels]` of `text`, each group predicted from the recording's real past
    (`continuation.teacher_forced_frames`), cut to whole groups (up to `frames_per_step` - 1
    frames fewer); None if the recording is longer than one trained window."""
    cfg = sampler.config
    frames, conditions = teacher_forced_inputs(sampler, log_mel_db, text, waveform)
    usable = frames.shape[1] // cfg.model.frames_per_step * cfg.model.frames_per_step
    if usable > continuation.teacher_forced_limit(cfg):
        return None
    predicted = continuation.teacher_forced_frames(cfg, sampler.params, frames[:, :usable], conditions,
                                                   sampler.stats.normalised_bounds())
    return sampler.stats.denormalise(predicted[0, cfg.data.go_frames:])


def text_reliance(sampler: "sample.Sampler", recordings: list[tuple[str, np.ndarray, np.ndarray]],
                  own_frames: Optional[list[np.ndarray | None]] = None) -> dict[str, float]:
    """How much the model's frames depend on what the text says: over the recordings
    (transcript, waveform `[samples]`, log-mel in dB `[frames, n_mels]`), the teacher-forced
    error (`teacher_forced_speech`, mean squared dB after the first group, which nothing
    predicts) with each recording's transcript swapped for the next one's, over the error
    with its own. 1.0: the text is not read, each frame comes from the past frames alone
    (what free running cannot lean on); recordings longer than a trained window are left
    out; NaN with fewer than two. `own_frames`: `teacher_forced_speech` of each recording
    with its own transcript where the caller has it already (None: computed here)."""
    r = sampler.config.model.frames_per_step

    def error(predicted: np.ndarray, log_mel_db: np.ndarray) -> float:
        return float(np.mean((predicted[r:] - log_mel_db[r : len(predicted)]) ** 2))

    if own_frames is None:
        own_frames = [teacher_forced_speech(sampler, db, text, wave) for text, wave, db in recordings]
    if len(own_frames) != len(recordings):
        raise ValueError(f"text_reliance: {len(own_frames)} own_frames for {len(recordings)} recordings")
    own = [(text, wave, db, frames) for (text, wave, db), frames in zip(recordings, own_frames)]
    own = [rec for rec in own if rec[3] is not None]
    if len(own) < 2:
        return {"text_reliance": float("nan"), "text_reliance_utterances": len(own)}
    swapped = [error(teacher_forced_speech(sampler, db, own[(n + 1) % len(own)][0], wave), db)
               for n, (_, wave, db, _) in enumerate(own)]
    return {"text_reliance": float(np.mean(swapped) / max(np.mean([error(p, db) for _, _, db, p in own]), 1e-12)),
            "text_reliance_utterances": len(own)}


def same_speaker_others(metas: list[dict], target: int) -> list[int]:
    """Indices of the utterances other than `target` by `target`'s speaker ([] without one)."""
    speaker = metas[target].get("speaker")
    return [i for i, m in enumerate(metas) if i != target and speaker is not None and m.get("speaker") == speaker]


def speaker_rate(cfg: ExperimentConfig, metas: list[dict], waves: list[np.ndarray], target: int) -> float | None:
    """The speaking rate (characters per second, `tts.recording_rate`) of utterance `target`'s
    speaker: the mean over the speaker's other held-out recordings, not `target` itself
    (whose rate would give its duration away); None without a speaker or other recordings."""
    from audiolm_jax import tts

    others = same_speaker_others(metas, target)
    if not others:
        return None
    return float(np.mean([tts.recording_rate(cfg, metas[i]["text"] or "", waves[i]) for i in others]))


def cloning_voice(metas: list[dict], waves: list[np.ndarray], target: int, max_samples: int) -> int | None:
    """The utterance whose voice and transcript prompt the cloning of utterance `target`: the
    shortest other utterance of the same speaker, if it is at most `max_samples` long (it
    must leave room for the new speech in the trained window); None otherwise."""
    others = same_speaker_others(metas, target)
    shortest = min(others, key=lambda i: len(waves[i])) if others else None
    return shortest if shortest is not None and len(waves[shortest]) <= max_samples else None


def tts_metrics(sampler: "sample.Sampler", data, utterances: Optional[int], key: jax.Array,
                asr_vocabulary: str = "corpus", draws: int = 3, tts_rate: str = "voice",
                duration_utterances: int = 96) -> dict[str, float]:
    """Speech synthesised from held-out transcripts, scored against the recordings (see the
    module docstring): `max(utterances, duration_utterances)` of them spread over the
    speakers, `draws` syntheses of each for the durations and alignments (one sampling
    seed's durations were 0.71, 0.88 or 0.92 within ±20% for the same model, and one model
    timed 0.92 of 24 sentences but 0.85 of 96: README), the first `utterances` of them for
    the CER and the cloning (None: every timed one). A model with a speaking-rate or duration conditioner
    speaks each at its speaker's rate (`speaker_rate`) with `tts_rate` "voice", at its own
    guess with "none"."""
    import dataclasses

    from audiolm_jax import speech_eval, tts

    cfg, rate = sampler.config, sampler.config.audio.sample_rate
    held = data.eval_utterances()
    if not held:
        raise ValueError("no held-out utterances to synthesise")
    waves, metas = [w for w, _ in held], [m for _, m in held]
    if utterances is None:  # CER and cloning on every sentence timed
        utterances = duration_utterances
    timed = spread_over_speakers(metas, max(utterances, duration_utterances))
    chosen = timed[:utterances]  # spread_over_speakers(metas, utterances): its turns are the same
    cfg = dataclasses.replace(cfg, sample=dataclasses.replace(cfg.sample, num_samples=1, stop_at_gate=True,
                                                              seconds=cfg.data.segment_seconds))
    texts = [metas[i]["text"] for i in timed]
    with_rate = cfg.model.condition.paced and tts_rate == "voice"
    rates = [speaker_rate(cfg, metas, waves, i) if with_rate else None for i in timed]
    prompts = [tts.speech_prompt(cfg, sampler.stats, text, rate=r) for text, r in zip(texts, rates)]
    drawn = dataclasses.replace(cfg, sample=dataclasses.replace(cfg.sample, num_samples=draws))  # clones: one each
    synthesised = continued(drawn, sampler, prompts, key, f"synthesise {len(prompts)} sentences x {draws}")
    reference_db = [np.asarray(audio.log_mel_jax(waves[i][None], cfg.audio))[0] for i in timed]
    rows, real_rows = [], []
    margin = 3 if cfg.sample.gate_focus_margin is None else cfg.sample.gate_focus_margin
    for n, (i, cont) in enumerate(each_with_progress(list(zip(timed, synthesised)), "align the recordings")):
        real_alignment = real_text_alignment(sampler, reference_db[n], texts[n], waves[i])
        real_reading, real_tail = speech_eval.reading_and_tail(real_alignment, margin)
        for wave, alignment in zip(cont.full, cont.alignments):
            ratio = len(wave) / max(len(waves[i]), 1)
            reading, tail = speech_eval.reading_and_tail(alignment, margin)
            rows.append({"duration_ratio": ratio, "duration_within_20pct": float(abs(ratio - 1.0) <= 0.2),
                         "reading_ratio": reading / max(real_reading, 1), "tail_groups": float(tail),
                         **{f"alignment_{k}": v for k, v in speech_eval.alignment_scores(alignment).items()}})
        real_rows.append({"real_tail_groups": float(real_tail), **{f"real_alignment_{k}": v for k, v in
                                                                   speech_eval.alignment_scores(real_alignment).items()}})
    out = {k: float(np.mean([r[k] for r in table])) for table in (rows, real_rows) for k in table[0]}
    out["tts_utterances"], out["tts_draws"], out["duration_syntheses"] = len(chosen), draws, len(rows)
    out["duration_utterances"] = len(timed)
    out["tts_rate_given"] = float(np.mean([r is not None for r in rates]))  # share spoken at their speaker's rate
    # each timed recording predicted from its real past with its own transcript, once for
    # text_reliance and the teacher-forced CER both
    forced = [teacher_forced_speech(sampler, reference_db[n], texts[n], waves[i])
              for n, i in enumerate(each_with_progress(timed, "teacher-forced frames"))]
    out.update(text_reliance(sampler, [(texts[n], waves[i], reference_db[n]) for n, i in enumerate(timed)], forced))
    rebuilt_by_index: dict[int, np.ndarray] = {}

    def resynthesised(i: int) -> np.ndarray:
        """Utterance `i`'s recording after the sampling Griffin-Lim (the vocoder's ceiling),
        computed once for the CER and the speaker identification both."""
        if i not in rebuilt_by_index:
            n = timed.index(i)
            rebuilt_by_index[i] = resynthesis(reference_db[n], len(waves[i]), cfg, seed=n)
        return rebuilt_by_index[i]

    if speech_eval.asr_available():
        vocabulary = sorted({w for m in metas for w in speech_eval.words_of(m["text"] or "")})
        recogniser = speech_eval.Recogniser(vocabulary if asr_vocabulary == "corpus" else None)
        hear = lambda w: recogniser.transcribe(w, rate)
        heard = texts[: len(chosen)]  # the first draws of the first `utterances` transcripts
        heard_synth = [hear(c.full[0]) for c in each_with_progress(synthesised[: len(chosen)], "recognise syntheses")]
        out["cer"] = speech_eval.character_error_rate(heard, heard_synth)
        heard_resynth = [hear(resynthesised(i))  # the vocoder's ceiling, once for both CERs
                         for i in each_with_progress(chosen, "recognise resyntheses")]
        out["cer_resynth"] = speech_eval.character_error_rate(heard, heard_resynth)
        out["cer_chance"] = speech_eval.chance_character_error_rate(heard, heard_synth)
        out["cer_resynth_chance"] = speech_eval.chance_character_error_rate(heard, heard_resynth)
        out["intelligibility"] = speech_eval.intelligibility_share(out["cer"], out["cer_chance"], out["cer_resynth"],
                                                                   out["cer_resynth_chance"])
        out["cer_real"] = speech_eval.character_error_rate(
            heard, [hear(waves[i]) for i in each_with_progress(chosen, "recognise recordings")])
        out["cer_vs_resynth"] = out["cer"] / max(out["cer_resynth"], 1e-6)
        out.update(teacher_forced_cer(sampler, [(texts[n], waves[i], forced[n], heard_resynth[n])
                                                for n, i in enumerate(chosen)], hear))  # chosen: timed's first
        out["asr_grammar_words"] = len(vocabulary) if asr_vocabulary == "corpus" else 0
    else:
        log.warning("intelligibility (CER) skipped: %s", speech_eval.ASR_HINT)
    if any(m.get("speaker") is not None for m in metas):
        out.update(cloning_metrics(sampler, cfg, waves, metas, chosen, jax.random.fold_in(key, 1), resynthesised))
    return out


def teacher_forced_cer(sampler: "sample.Sampler",
                       recordings: list[tuple[str, np.ndarray, np.ndarray | None, str]],
                       hear: Callable[[np.ndarray], str]) -> dict[str, float]:
    """Intelligibility of the model's frames without free running: each recording (transcript,
    waveform `[samples]`, the model's frames in dB `[frames, n_mels]` predicted group by group
    from its real past by `teacher_forced_speech`, None where it is longer than a trained
    window; what `hear` made of its Griffin-Lim resynthesis), those frames inverted by the
    sampling Griffin-Lim and heard (`hear`: waveform → text); `cer_teacher_forced` and its
    ratio to the resynthesis' CER on the same recordings.
    Set beside `cer_vs_resynth`, it tells words lost in each predicted frame from words lost
    by feeding the model its own frames. Recordings longer than a trained window are left out
    (`teacher_forced_utterances` counts the rest)."""
    from audiolm_jax import speech_eval

    cfg = sampler.config
    texts, predicted, rebuilt = [], [], []
    for n, (text, wave, frames_db, heard_resynth) in enumerate(each_with_progress(recordings, "teacher-forced CER")):
        if frames_db is None:
            continue
        samples = min(len(wave), len(frames_db) * cfg.audio.hop_length)
        texts.append(text)
        predicted.append(hear(resynthesis(frames_db, samples, cfg, seed=n)))
        rebuilt.append(heard_resynth)
    if not texts:
        return {"teacher_forced_utterances": 0}
    cer = speech_eval.character_error_rate(texts, predicted)
    ceiling = speech_eval.character_error_rate(texts, rebuilt)
    chance = speech_eval.chance_character_error_rate(texts, predicted)
    return {"cer_teacher_forced": cer, "cer_teacher_forced_vs_resynth": cer / max(ceiling, 1e-6),
            "cer_teacher_forced_chance": chance,
            "teacher_forced_intelligibility": speech_eval.intelligibility_share(
                cer, chance, ceiling, speech_eval.chance_character_error_rate(texts, rebuilt)),
            "teacher_forced_utterances": len(texts)}


def cloning_metrics(sampler: "sample.Sampler", cfg: ExperimentConfig, waves: list[np.ndarray], metas: list[dict],
                    chosen: list[int], key: jax.Array, resynthesised: Callable[[int], np.ndarray]
                    ) -> dict[str, float]:
    """Voice cloning: each chosen utterance's transcript spoken after the shortest other
    recording of its speaker (`cloning_voice`: at most half the trained window) with that
    recording's transcript; the new
    speech's speaker is identified among the voices (each the mean embedding of its
    held-out recordings other than the two involved), beside the same identification of the
    real recording (`real_speaker_id_accuracy`) and of its Griffin-Lim resynthesis (the
    vocoder's ceiling, `resynth_speaker_id_accuracy`; `resynthesised(i)` gives utterance i's,
    shared with the CER), and the cosine similarities of same-speaker and different-speaker
    real pairs."""
    from audiolm_jax import speech_eval, tts

    if not speech_eval.speaker_encoder_available():
        log.warning("speaker similarity skipped: %s", speech_eval.SPEAKER_HINT)
        return {}
    rate = cfg.audio.sample_rate
    encoder = speech_eval.SpeakerEncoder()
    embeddings = np.stack([encoder.embed(w, rate) for w in each_with_progress(waves, "speaker embeddings")])
    speakers = sorted({m["speaker"] for m in metas})
    longest_voice = int(0.5 * cfg.data.segment_seconds * rate)
    pairs = [(i, cloning_voice(metas, waves, i, longest_voice)) for i in chosen]
    pairs = [(i, j) for i, j in pairs if j is not None]
    if not pairs:
        log.warning("voice cloning skipped: no speaker has a held-out recording of at most %.1f s to prompt with",
                    longest_voice / rate)
        return {"cloned_utterances": 0}
    prompts = [tts.speech_prompt(cfg, sampler.stats, metas[i]["text"], (f"voice{j}", waves[j]), metas[j]["text"])
               for i, j in pairs]
    clones = continued(cfg, sampler, prompts, key, f"clone {len(prompts)} voices")
    hits, real_hits, resynth_hits, similarity, same, different = [], [], [], [], [], []
    for (i, j), cont in zip(pairs, clones):
        references = np.stack([embeddings[[k for k, m in enumerate(metas) if m["speaker"] == s and k not in (i, j)]
                                          or [j]].mean(axis=0) for s in speakers])
        clone = encoder.embed(tts.new_speech(cont)[0], rate)
        truth = speakers.index(metas[i]["speaker"])
        hits.append(speech_eval.identify(clone[None], references)[0] == truth)
        real_hits.append(speech_eval.identify(embeddings[i][None], references)[0] == truth)
        resynth_hits.append(speech_eval.identify(encoder.embed(resynthesised(i), rate)[None], references)[0] == truth)
        similarity.append(speech_eval.cosine(clone, embeddings[j]))
        same.append(speech_eval.cosine(embeddings[i], embeddings[j]))
        other = next(k for k, m in enumerate(metas) if m["speaker"] != metas[i]["speaker"])
        different.append(speech_eval.cosine(embeddings[i], embeddings[other]))
    return {"speaker_id_accuracy": float(np.mean(hits)), "real_speaker_id_accuracy": float(np.mean(real_hits)),
            "resynth_speaker_id_accuracy": float(np.mean(resynth_hits)),
            "speaker_similarity": float(np.mean(similarity)), "same_speaker_similarity": float(np.mean(same)),
            "different_speaker_similarity": float(np.mean(different)), "voices": len(speakers),
            "cloned_utterances": len(pairs)}


def evaluate_checkpoint(workdir: str, overrides: Sequence[str] = (), num_prompts: int = 8,
                        dnsmos: str = "auto", per_label: int = 8, midi_pieces: int = 4,
                        midi_seconds: float = 8.0, tts_utterances: Optional[int] = None,
                        asr_vocabulary: str = "corpus", tts_draws: int = 3, tts_rate: str = "voice",
                        tts_duration_utterances: int = 96) -> dict[str, float]:
    """All metrics of the latest checkpoint in `workdir` (see the module docstring), sampled
    through the same continuation path and settings as `run` and `sample`.

    `overrides`: dotted `--sample.*`/`--data.*` overrides of the checkpoint's config.
    `dnsmos`: 'on', 'off', or 'auto' (on for speech data when the `eval` extra is installed).
    `per_label`: clips generated per label and guidance scale (label-conditioned runs).
    `midi_pieces`, `midi_seconds`: held-out examples rendered from their MIDI, and how much
    of each (MIDI-conditioned runs; needs the `eval` extra's transcriber).
    `tts_utterances`: held-out transcripts synthesised (TTS runs: guided text attention),
    `tts_draws` times each for the durations and alignments, over `tts_duration_utterances`
    (when more: the CER and the cloning stay on the first `tts_utterances`; None: on all of
    them), a model with a
    speaking-rate conditioner at each speaker's rate (`tts_rate` "voice") or its own guess
    ("none");
    `asr_vocabulary`: 'corpus' (the recogniser hears only the held-out transcripts' words)
    or 'open' (pocketsphinx's general English language model).
    """
    from audiolm_jax import data as data_lib

    if tts_draws < 1:  # before minutes of sampling, not after them
        raise ValueError(f"--tts-draws must be at least 1, got {tts_draws}")
    if tts_rate not in ("voice", "none"):
        raise ValueError(f"--tts-rate must be 'voice' or 'none', got {tts_rate!r}")
    if tts_utterances is not None and tts_utterances < 1:
        raise ValueError(f"--tts-utterances must be at least 1 (or left out: every timed one), got {tts_utterances}")
    if tts_duration_utterances < 0:
        raise ValueError(f"--tts-duration-utterances must be at least 0, got {tts_duration_utterances}")
    sampler = sample.restore_sampler(workdir, overrides)
    cfg = sampler.config
    data = data_lib.prepare(cfg, stats=sampler.stats)
    mesh = train.make_mesh(jax.devices()[:1])
    length = data_lib.segment_frames(cfg.data.segment_seconds, cfg.audio, cfg.model.frames_per_step)
    batches = data.eval_batches(cfg.train.batch_size, length, cfg.train.eval_examples)
    teacher = train.evaluate(train.make_eval_step(MelTransformer(cfg.model, cfg.audio.n_mels), cfg, mesh),
                             sampler.params, batches, mesh)
    metrics = {"step": sampler.step, "split": cfg.data.eval_split, **train.reported_eval_metrics(teacher)}

    use_dnsmos = dnsmos == "on" or (dnsmos == "auto" and cfg.data.source == "librispeech")
    if use_dnsmos and not dnsmos_available():
        if dnsmos == "on":
            raise ValueError("--dnsmos on needs the eval extra: pip install -e '.[eval]'")
        log.warning("DNSMOS skipped: install the eval extra (speechmos) to score speech")
        use_dnsmos = False
    reference_seconds = cfg.sample.prompt_seconds + cfg.sample.seconds  # each prompt with its real continuation
    pairs = continuation.held_out_prompts(cfg, data.eval_waveforms(num_prompts, reference_seconds), num_prompts,
                                          data.eval_metadata(num_prompts))
    prompts = [prompt for prompt, _ in pairs]
    conts = continued(cfg, sampler, prompts, jax.random.PRNGKey(cfg.sample.seed), "continue held-out prompts")
    range_db = sampler.stats.bounds_db()
    summary, per_sample = continuation_summary(conts, cfg.audio.frames_per_second, range_db)
    metrics.update(summary)
    metrics.update(compared_with_real(per_sample, [real_continuation_metrics(p, clip, cfg, range_db)
                                                   for p, clip in pairs]))
    sc, mos = [], []
    for i, (prompt, cont) in enumerate(zip(prompts, conts)):
        rebuilt = resynthesis(prompt.log_mel_db, len(prompt.waveform), cfg, seed=i)
        target = np.asarray(audio.stft_magnitude_jax(prompt.waveform[None], cfg.audio))
        sc.append(float(invert.spectral_convergence_db(rebuilt[None], target, cfg.audio)[0]))
        if use_dnsmos:
            rate, start = cfg.audio.sample_rate, len(prompt.waveform)
            ceiling = dnsmos_scores(rebuilt, rate)
            for full in cont.full:
                generated = dnsmos_scores(full[start:], rate)
                mos.append({"dnsmos_prompt_resynth_ovrl": ceiling["ovrl"], "dnsmos_prompt_resynth_p808": ceiling["p808"],
                            "dnsmos_continuation_ovrl": generated["ovrl"],
                            "dnsmos_continuation_p808": generated["p808"]})
    metrics["resynthesis_sc_db"] = float(np.mean(sc)) if sc else float("nan")
    for key in (mos[0] if mos else {}):
        metrics[key] = float(np.mean([m[key] for m in mos]))
    if mos:
        metrics["dnsmos_ratio"] = metrics["dnsmos_continuation_ovrl"] / metrics["dnsmos_prompt_resynth_ovrl"]
    metrics["num_prompts"] = len(prompts)
    if cfg.model.condition.label:
        metrics.update(label_metrics(sampler, data, per_label=per_label))
    if cfg.model.condition.midi != "none":
        from audiolm_jax import transcribe

        if transcribe.available():
            metrics.update(midi_metrics(sampler, data, midi_pieces, midi_seconds, jax.random.PRNGKey(cfg.sample.seed)))
        else:
            log.warning("MIDI transcription metrics skipped: %s", transcribe.INSTALL_HINT)
    if cfg.model.condition.guided_layers:
        metrics.update(tts_metrics(sampler, data, tts_utterances, jax.random.PRNGKey(cfg.sample.seed),
                                   asr_vocabulary, tts_draws, tts_rate, tts_duration_utterances))
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audiolm_jax.evaluate",
        description="Evaluate a checkpoint: the teacher-forced loss against the copy-last-frame baseline, and "
                    "collapse detectors and quality metrics of free-running continuations (and of each "
                    "conditioned application). Any --sample.<field>=value or --data.<field>=value (e.g. "
                    "--data.eval_split=test) overrides the checkpoint's config.")
    parser.add_argument("--workdir", required=True, help="workdir of a training run")
    parser.add_argument("--prompts", type=int, default=8, help="validation prompts to continue")
    parser.add_argument("--dnsmos", choices=("auto", "on", "off"), default="auto",
                        help="DNSMOS of prompts and continuations (auto: for speech, if the eval extra is installed)")
    parser.add_argument("--per-label", type=int, default=8,
                        help="clips generated per label and guidance scale (label-conditioned runs)")
    parser.add_argument("--midi-pieces", type=int, default=4,
                        help="held-out examples rendered from their MIDI (MIDI-conditioned runs)")
    parser.add_argument("--midi-seconds", type=float, default=8.0, help="seconds of each rendered from the start")
    parser.add_argument("--tts-utterances", type=int, default=None,
                        help="held-out transcripts scored for CER and cloning (TTS runs; default: every one "
                             "timed, --tts-duration-utterances)")
    parser.add_argument("--tts-draws", type=int, default=3,
                        help="syntheses of each transcript for the durations and alignments (TTS runs)")
    parser.add_argument("--tts-duration-utterances", type=int, default=96,
                        help="held-out transcripts timed for the durations and alignments, when more than "
                             "--tts-utterances (TTS runs; one model timed 0.92 of 24 sentences but 0.85 of 96)")
    parser.add_argument("--tts-rate", choices=("voice", "none"), default="voice",
                        help="TTS runs with a speaking-rate conditioner: speak each transcript at its speaker's "
                             "rate over its other held-out recordings, or at the model's own guess")
    parser.add_argument("--asr-vocabulary", choices=("corpus", "open"), default="corpus",
                        help="speech recognition over the held-out transcripts' words, or open English")
    args, overrides = cli.split_overrides(parser, argv, sections=("sample", "data"))
    cli.configure_logging()
    try:
        metrics = evaluate_checkpoint(args.workdir, overrides, args.prompts, args.dnsmos, args.per_label,
                                      args.midi_pieces, args.midi_seconds, args.tts_utterances, args.asr_vocabulary,
                                      args.tts_draws, args.tts_rate, args.tts_duration_utterances)
    except (FileNotFoundError, ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    atomic.write_json(os.path.join(args.workdir, "eval.json"), metrics)
    for key, value in metrics.items():
        print(f"{key:>20}: {value:.4f}" if isinstance(value, float) else f"{key:>20}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
