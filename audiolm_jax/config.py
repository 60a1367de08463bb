"""Experiment configuration: frozen dataclasses, validation, dotted overrides, JSON I/O.

An experiment is one `ExperimentConfig` made of five parts (`audio`, `model`, `data`,
`train`, `sample`) plus a `workdir`. Researchers edit the dataclass fields in
`experiments/<name>.py` or override any of them on the command line by dotted path
(`--train.steps=200`). Every config is validated by `validate` before anything compiles;
a bad field raises `ConfigError`, which names the field, the value and what is allowed.

This module touches no arrays and no files except `save_json`/`load_json`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from typing import Any, Literal, Optional

from audiolm_jax import atomic
from audiolm_jax import phonemes as phonemes_lib  # stdlib only until phonemes are made
from audiolm_jax.data.files import LIBRISPEECH_SPLITS  # tfds-free: the data package loads lazily


class ConfigError(ValueError):
    """A config field holds a value that is not allowed; the message names the field."""

    def __init__(self, field: str, value: Any, expected: str):
        self.field = field
        self.value = value
        self.expected = expected
        if value is _UNKNOWN:
            super().__init__(f"unknown config field '{field}': expected {expected}")
        else:
            super().__init__(f"config field '{field}' = {value!r}: expected {expected}")


_UNKNOWN = object()  # marks a ConfigError about a field that does not exist


@dataclasses.dataclass(frozen=True)
class AudioConfig:
    """Waveform and log-mel settings; the one source of truth for every audio number.

    Units: `sample_rate` in Hz, `n_fft`/`win_length`/`hop_length` in samples,
    `fmin`/`fmax` in Hz (`fmax=None` means sample_rate / 2), `top_db` in dB.
    """

    sample_rate: int = 16000  # Hz: every waveform is resampled to this rate at preparation
    n_fft: int = 1024  # samples per FFT
    win_length: int = 1024  # samples of the analysis window (<= n_fft)
    hop_length: int = 256  # samples between frames: one mel frame per hop
    n_mels: int = 80  # mel bins per frame: the model's frame width
    fmin: float = 0.0  # Hz: lowest mel band edge
    fmax: Optional[float] = None  # Hz: highest mel band edge (None: sample_rate / 2)
    window: str = "hann"  # analysis window: hann, hamming or blackman
    center: bool = True  # frames centred on t·hop (padding n_fft/2 at both ends)
    pad_mode: str = "constant"  # padding of centred frames: constant, reflect or edge
    power: float = 2.0  # spectrogram exponent: 2 power, 1 magnitude
    mel_norm: Optional[str] = "slaney"  # mel filter normalisation (librosa's norm)
    htk: bool = False  # HTK mel scale instead of Slaney's
    amin: float = 1e-10  # power floor before the logarithm
    top_db: Optional[float] = 80.0  # dB: each clip's log-mel is floored this far below its peak

    @property
    def frames_per_second(self) -> float:
        """Mel frames per second of audio."""
        return self.sample_rate / self.hop_length

    def seconds_to_frames(self, seconds: float) -> int:
        """Number of mel frames (center=True framing) covering `seconds` of audio."""
        return 1 + int(round(seconds * self.sample_rate)) // self.hop_length


@dataclasses.dataclass(frozen=True)
class ConditionConfig:
    """What the model is conditioned on, through cross-attention over a context sequence
    (`conditioning.py` turns metadata into arrays; `model.Conditioner` into the context).

    The context is one summary slot (the label's embedding, or a learned 'conditioned'
    vector) followed by the text's characters; a row whose conditions are dropped (at
    training, `dropout` of them) sees only the learned null, which classifier-free
    guidance contrasts with at sampling (`sample.guidance`). MIDI comes one of two ways:
    `midi="frames"` (frame-synchronous, for aligned MIDI such as MAESTRO's): position i adds
    an encoding of the piano roll (`midi.py`) of the group it predicts to its input, or a
    learned null when dropped; `midi="tokens"` (for MIDI not aligned frame by frame): the
    window's note events as tokens (`midi.note_tokens`: tie section, times, velocities,
    keys) through their own bidirectional encoder into the context, after the summary slot.
    With `voice`, a voice embedding of audio frames (`model.VoiceEncoder`) is added to every
    context entry: the example's own frames in training, the prompt's at sampling; with
    `speaking_rate`, an encoding of the speaking rate (characters per second) likewise.
    With `duration`, each decoder position adds an encoding of the frames left until the
    audio ends (`end_frame`, `conditioning.condition_arrays`): in training the example's own
    end, at sampling the text's characters over a rate (a voice's, or a chosen one), so
    pacing and the end-of-audio gate are tied to a length known before decoding.
    With `level`, each decoder position adds an encoding of the audio's level (`level`,
    `conditioning.audio_levels`: the loudness of the louder half of its frames, in tens of
    dB): in training the example's own crop's, measured before input corruption, at
    sampling the prompt's, so a continuation is told the level to hold however its own
    frames wander (none, or dropped: a learned null). It needs no conditioner, so an
    unconditioned model can take it.
    With `text_alignment="durations"`, each decoder position also adds the encoding of the
    character its predicted frames are spoken in (`alignment.py`): in training the
    alignment that monotonic alignment search finds under a learned mean frame per
    character (Glow-TTS), at synthesis a duration predicted per character (FastSpeech), so
    where the decoder is in the text and where the audio ends are known before decoding.
    """

    label: bool = False  # condition on each example's class label (a learned embedding per label)
    max_labels: int = 64  # rows of the label embedding: a dataset with more labels is rejected
    text: bool = False  # condition on each example's text (transcript or caption), as characters
    max_text_chars: int = 96  # symbols of text kept, characters or phonemes (longer texts are cut at a word boundary)
    text_units: Literal["characters", "phonemes"] = "characters"  # what the text encoder reads: the normalised characters, or espeak-ng's IPA phonemes of them (the phonemes extra)
    phoneme_language: str = "en-us"  # text_units="phonemes": the espeak-ng language that turns text into phonemes
    text_layers: int = 2  # bidirectional Transformer layers of the character encoder
    text_window: int = 0  # each character encoder layer sees this many characters either side (0: the whole text)
    text_positions: Literal["learned", "sinusoid"] = "sinusoid"  # character positions: Transformer-TTS's sinusoids with a learned scale, or a learned vector each
    midi: Literal["none", "frames", "tokens"] = "none"  # "frames": each position adds the piano roll of the frames it predicts; "tokens": note events cross-attended
    max_note_tokens: int = 512  # note-event tokens kept per window (midi="tokens"; later events dropped)
    note_layers: int = 2  # bidirectional Transformer layers of the note-event encoder
    dropout: float = 0.1  # share of training examples whose conditions are replaced by the learned null
    each_dropout: float = 0.0  # with label and text: share of examples losing each one alone (either can be given alone)
    guided_layers: int = 0  # text: the last this many decoder blocks' cross-attention is guided to the diagonal (TTS)
    guided_heads: int = 2  # heads of each guided block whose attention is guided, reported and constrained
    voice: bool = False  # add a voice embedding to the context: pooled from the example's own frames in training, the prompt's at sampling
    voice_dim: int = 64  # width of the voice embedding's bottleneck (small, so it carries the voice, not the words)
    voice_dropout: float = 0.2  # share of training examples without their voice (the learned null: speech from text alone)
    speaking_rate: bool = False  # text: add the speaking rate (characters per second) to the context: the example's own in training, a voice's or a chosen one at sampling
    rate_dropout: float = 0.2  # share of training examples without their rate and duration (the learned nulls: the model guesses)
    duration: bool = False  # text: tell each decoder position the frames left until the audio ends: the example's own end in training, characters / rate at sampling (Stable Audio's timing conditioning, F5-TTS's estimate)
    level: bool = False  # tell each decoder position the audio's level (the loudness of its louder half of frames): the example's own in training, the prompt's at sampling
    level_dropout: float = 0.1  # share of training examples without their level (the learned null: the model's own guess)
    text_alignment: Literal["attention", "durations"] = "attention"  # text: "durations" also adds to each decoder position the encoding of the character its frames are spoken in (monotonic alignment search in training, predicted durations at synthesis: `alignment.py`)

    @property
    def active(self) -> bool:
        """Whether the model has a conditioner at all."""
        return self.label or self.text or self.voice or self.midi != "none"

    @property
    def takes_conditions(self) -> bool:
        """Whether batches and sampling carry conditions: a conditioner, or a level."""
        return self.active or self.level

    @property
    def takes_rate(self) -> bool:
        """Whether the conditions carry a speaking rate (for the rate conditioner or the duration)."""
        return self.speaking_rate or self.duration

    @property
    def paced(self) -> bool:
        """Whether synthesis can be told a speaking rate: a rate or duration conditioner, or
        durations it scales (`text_alignment="durations"`)."""
        return self.takes_rate or self.text_alignment == "durations"

    @property
    def cross_attends(self) -> bool:
        """Whether the conditions form a context the blocks cross-attend to (labels, text, a voice, note tokens)."""
        return self.label or self.text or self.voice or self.midi == "tokens"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Decoder-only Transformer over groups of `frames_per_step` normalised mel frames."""

    num_layers: int = 4  # decoder blocks
    d_model: int = 256  # width of the residual stream
    num_heads: int = 4  # attention heads (d_model / num_heads even, for RoPE)
    mlp_ratio: int = 4  # MLP hidden width / d_model
    block_biases: bool = True  # biases in the blocks' self-attention and MLP projections (False: none, as PaLM and LLaMA)
    head: Literal["mse", "gaussian", "mixture"] = "mse"  # next-group prediction: mean, Gaussian, or mixture of Gaussians
    mixture_components: int = 8  # components of the mixture head (each a diagonal Gaussian over a group)
    frames_per_step: int = 2  # reduction factor r: mel frames per sequence position
    prenet_dim: int = 256  # width of Tacotron's two-layer prenet
    prenet_dropout: float = 0.5  # prenet dropout rate in training
    prenet_dropout_at_sampling: bool = True  # keep prenet dropout on while sampling (Tacotron 2)
    dropout: float = 0.0  # residual dropout in the blocks (training only)
    max_frames: int = 1024  # frames the model can hold (cache capacity); sampling uses the trained crop
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # compute dtype (params stay float32)
    remat: bool = False  # recompute block activations in the backward pass (less memory)
    residual_dtype: Literal["float32", "bfloat16"] = "float32"  # dtype of the residual stream between blocks (bfloat16 halves its memory traffic)
    attention: Literal["auto", "xla", "cudnn"] = "auto"  # full-pass self-attention kernel; auto: cuDNN's fused one on a GPU in 16-bit, else XLA's
    rope_base: float = 10000.0  # rotary embedding base
    predict_residual: bool = True  # heads predict the change from the last input frame
    feedback: bool = True  # feed each position its group's frames; False: only a prompt's heard frames, the rest a learned input (nothing drawn is fed back)
    context_dim: int = 0  # conditioning seam: >0 adds cross-attention over a context sequence
    gate: bool = False  # end-of-audio head (Tacotron's stop token), trained on where recordings end
    absolute_positions: bool = False  # add scaled sinusoidal positions to the decoder input (TTS: where in the text it is)
    postnet_layers: int = 0  # Tacotron 2's post-net: 1-D convolutions refining the mse head's whole predicted sequence (0: none)
    postnet_channels: int = 256  # post-net convolution channels
    postnet_kernel: int = 5  # post-net kernel width in frames (odd: centred)
    condition: ConditionConfig = ConditionConfig()  # conditioners (label, text) feeding cross-attention


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where training audio comes from and how it is cut into segments.

    `source` picks the dataset (a tfds builder in `audiolm_jax/data/builders.py`); `dir`
    points at a local copy (or the folder of audio for `folder`); with `download`,
    LibriSpeech and MAESTRO are fetched by tfds instead. Datasets are prepared once into
    `tfds_dir` (default `<workdir>/tfds`; point several experiments at one to share).
    Long recordings are stored in chunks of `chunk_seconds`. `segment_seconds` is the
    training crop length; `cache` what the reader keeps in memory (`data.sources.cache_mode`);
    `prefetch_batches` are prepared ahead in a background thread while the device trains
    (0: none). Augmentation (training crops only, off by default):
    a random gain within ±`augment_gain_db`, white noise at `augment_snr_db` signal-to-noise
    ratio, a pitch shift within ±`augment_pitch_semitones` (duration kept).
    """

    source: Literal["synthetic", "sounds", "voices", "librispeech", "maestro", "esc50", "urbansound8k", "folder"] = "synthetic"  # which tfds builder
    dir: Optional[str] = None  # local copy in the official layout (or the folder of audio)
    download: bool = False  # let tfds download LibriSpeech or MAESTRO instead of data.dir
    tfds_dir: Optional[str] = None  # where datasets are prepared (None: <workdir>/tfds)
    chunk_seconds: int = 30  # long recordings are stored in chunks of this many seconds
    segment_seconds: float = 2.0  # training crop length: also the context sampling attends over
    train_split: str = "train"  # split to train on
    eval_split: str = "validation"  # split to evaluate and take prompts from
    synthetic_train_clips: int = 128  # synthetic and sounds sets: training clips (sounds: rounded up to whole classes)
    synthetic_eval_clips: int = 16  # synthetic and sounds sets: validation and test clips each
    synthetic_clip_seconds: float = 8.0  # synthetic and sounds sets: seconds per clip
    stats_clips: int = 256  # training crops sampled for the normalisation statistics
    prefetch_batches: int = 2  # batches prepared ahead in a background thread (0: none)
    augment_gain_db: float = 0.0  # random gain within ±this many dB (0: off)
    augment_snr_db: Optional[float] = None  # white noise at this SNR in dB (None: off)
    augment_pitch_semitones: float = 0.0  # random pitch shift within ±this many semitones (0: off)
    end_crop_fraction: float = 0.0  # share of training crops placed so their clip ends inside them (gate)
    go_frames: int = 0  # frames of the mean frame before every crop: where generation from no audio starts
    crop: Literal["random", "utterance"] = "random"  # "utterance": whole examples from their start (longer ones than segment_seconds skipped), for TTS
    paired_utterances: float = 0.0  # crop=utterance: share of training examples that are two utterances of one speaker joined, transcripts joined with a break mark (voice cloning's prompt, then new speech)
    cache: Literal["auto", "none", "audio", "log_mel"] = "auto"  # kept in memory: nothing, decoded audio, whole log-mels (auto: by source)
    recompute_stats: bool = False  # a resumed run on other data normalises with that data's statistics, not the checkpoint's
    prepare_workers: int = 0  # threads decoding a recorded dataset's files at preparation (0: one per core)
    beam_options: Optional[str] = None  # prepare through Apache Beam with these pipeline flags (a cluster runner's; the beam extra)

    @property
    def augments(self) -> bool:
        """Whether any augmentation is on."""
        return bool(self.augment_gain_db or self.augment_snr_db is not None or self.augment_pitch_semitones)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation, logging and checkpoint cadence. `batch_size` is global (all devices)."""

    steps: int = 2000  # optimizer steps in all (a re-run resumes towards it)
    batch_size: int = 16  # global batch: crops per step over all devices and processes
    learning_rate: float = 1e-3  # peak, after linear warmup; cosine decay to 10% at `steps`
    warmup_steps: int = 100  # steps of linear warmup
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    grad_clip_norm: float = 1.0  # global gradient-norm clip
    ema_decay: float = 0.999  # decay of the parameters' exponential moving average
    loss: Literal["mse", "l1"] = "mse"  # regression loss of the mse head
    input_noise: float = 0.0  # std (normalised units) of noise on teacher-forced inputs, against exposure bias
    mean_mse_weight: float = 0.0  # gaussian/mixture heads: adds this × the MSE of their mean to the likelihood
    flux_weight: float = 0.0  # subtracts this × mean |predicted mean − previous real frame| from the loss (MELLE's spectrogram flux)
    input_drift: float = 0.0  # std per group (normalised units) of a random-walk level offset added to teacher-forced inputs
    input_stripes: float = 0.0  # std per group (normalised units) of a random-walk offset per mel bin added to teacher-forced inputs
    self_feed: float = 0.0  # scheduled sampling: share of input groups replaced by the model's own draw at sample.temperature (0: off)
    self_feed_passes: int = 1  # gradient-free passes that make those draws (k: errors compounded over k steps)
    heard_share: float = 0.5  # model.feedback false: share of rows that hear a prompt (their go frames and first frames)
    heard_fraction: float = 0.6  # the most of a row's positions such a prompt covers (drawn uniformly per row)
    gate_weight: float = 1.0  # weight of the end-of-audio gate's cross-entropy (with model.gate)
    gate_positive_weight: float = 5.0  # weight of 'ended' positions in it (one per recording end seen)
    guided_attention_weight: float = 1.0  # weight of the guided (diagonal) attention loss (model.condition.guided_layers)
    guided_attention_sigma: float = 0.4  # width g of its diagonal band, in fractions of text and audio (ESPnet: 0.4)
    text_prior_weight: float = 1.0  # model.condition.text_alignment="durations": weight of the per-character mean frame's MSE on the frames aligned to it
    duration_loss_weight: float = 1.0  # model.condition.text_alignment="durations": weight of the duration predictor's squared errors in log frames (per character; per utterance's total for its offset)
    eval_every: int = 500  # steps between teacher-forced evaluations
    eval_examples: int = 64  # held-out examples each evaluation scores (their first segments, in order; any batch size)
    log_every: int = 50  # steps between logged training scalars
    checkpoint_every: int = 500  # steps between checkpoints (and one at the end)
    keep_checkpoints: int = 3  # newest checkpoints kept
    seed: int = 0  # params, batch order, dropout and noise all derive from it
    distributed: bool = False  # call jax.distributed.initialize() (multi-host); the three below, else the environment
    coordinator_address: str = ""  # host:port of process 0 ("": $JAX_COORDINATOR_ADDRESS or the cluster's, e.g. Cloud TPU, SLURM)
    num_processes: int = 0  # processes in the run (0: $JAX_NUM_PROCESSES or the cluster's)
    process_id: int = -1  # this process's index (-1: $JAX_PROCESS_ID or the cluster's)


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    """Prompted continuation. `prompt_seconds` of audio in, `seconds` of new audio out."""

    prompt_seconds: float = 1.0  # seconds of each prompt used
    seconds: float = 3.0  # seconds generated after the prompt (a maximum with stop_at_gate)
    num_prompts: int = 2  # held-out prompts a run continues
    num_samples: int = 2  # continuations per prompt (decoded as one batch)
    temperature: float = 1.0  # scale of the gaussian/mixture heads' noise (0: their means)
    component_temperature: float = 1.0  # mixture head: divides the component logits (> 1: rarer components, e.g. onsets, more often)
    prenet_dropout: Optional[bool] = None  # None: model.prenet_dropout_at_sampling
    prompt_prenet_dropout: bool = True  # with prenet dropout at sampling, on the prompt's frames too (false: generated frames only)
    inversion: Literal["jax", "librosa"] = "jax"  # Griffin-Lim backend
    griffin_lim_iters: int = 32  # Griffin-Lim iterations
    seed: int = 0  # sampling PRNG seed
    use_ema: bool = True  # sample with the EMA params (else the raw ones)
    stop_at_gate: bool = False  # with model.gate: end each continuation where the gate fires (seconds = maximum)
    guidance: float = 1.0  # classifier-free guidance scale with conditions (1: plain conditional sampling)
    guidance_null: Literal["conditions", "prompt"] = "conditions"  # what guidance contrasts with: the learned null conditions, or (model.feedback false) the same conditions with no prompt heard
    monotonic: int = 3  # guided text attention: each step attends from 1 character before the last focus to this many after (0: free)
    max_dwell: int = 0  # guided text attention: a focus held on one character this many groups moves on; on the last, speech ends (0: no limit)
    gate_focus_margin: Optional[int] = 3  # guided text attention: the gate ends speech only once the focus is within this many characters of the text's last (None: wherever it fires)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: everything a run needs, written to `<workdir>/config.json`."""

    name: str = "demo"
    workdir: str = "runs/demo"
    audio: AudioConfig = AudioConfig()
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    sample: SampleConfig = SampleConfig()


def segment_frames(segment_seconds: float, config: AudioConfig, frames_per_step: int) -> int:
    """Training crop length in frames, rounded down to a multiple of `frames_per_step`."""
    frames = config.seconds_to_frames(segment_seconds)
    return frames - frames % frames_per_step


# ---------------------------------------------------------------------------------------
# Typed field access


def field_types(cls: type) -> dict[str, Any]:
    """A config dataclass's field names and their resolved annotations."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def type_name(tp: Any) -> str:
    """What an annotation accepts, in words for error messages ('an integer', "one of 'a', 'b'")."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(type_name(a) for a in args) + " or None"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def coerce(path: str, value: Any, tp: Any) -> Any:
    """Checks `value` (from JSON or already typed) against annotation `tp`; returns it typed."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(path, value, type_name(tp))
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return coerce(path, value, inner)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, value, type_name(tp))
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, value, type_name(tp))
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(path, value, type_name(tp))
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, value, type_name(tp))
        return value
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, path + ".")
    raise TypeError(f"unsupported config annotation {tp!r} at '{path}'")


def _from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise ConfigError(prefix or "<root>", data, f"a mapping of {cls.__name__} fields")
    ftypes = field_types(cls)
    unknown = sorted(set(data) - set(ftypes))
    if unknown:
        raise_unknown(prefix + unknown[0], list(ftypes), prefix)
    kwargs = {
        name: coerce(prefix + name, data[name], ftypes[name]) for name in ftypes if name in data
    }
    return cls(**kwargs)


def raise_unknown(path: str, known: list[str], prefix: str) -> None:
    """Raises the ConfigError for a field that does not exist, with the closest known name."""
    leaf = path[len(prefix):]
    close = difflib.get_close_matches(leaf, known, n=1)
    hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
    raise ConfigError(path, _UNKNOWN, "a field of " + (prefix.rstrip(".") or "the experiment") + hint)


def to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The config as plain JSON-able nested dicts."""
    return dataclasses.asdict(config)


# Fields earlier versions wrote into config.json that no longer exist; a saved config
# holding them still loads (they are dropped).
RETIRED_FIELDS = (("audio", "n_mfcc"),)  # MFCC: computed by nothing in the pipeline, removed


# Fields whose default changed, with the value every config written before them meant: a
# saved config without the field loads with that value, so its checkpoint still fits.
EARLIER_DEFAULTS = ((("model", "condition", "text_positions"), "learned"),)  # sinusoids since 2026-11-27


def _eval_batches_as_examples(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with a saved config's `train.eval_batches` (before 2026-12-06 the evaluation set
    was that many batches, so it changed with the batch size) replaced by the
    `train.eval_examples` it meant: batches × `train.batch_size` (its default if unsaved)."""
    train = data.get("train")
    if not isinstance(train, dict) or "eval_batches" not in train or "eval_examples" in train:
        return data  # nothing to convert (or both given: the unknown field is reported)
    batches, batch_size = train["eval_batches"], train.get("batch_size", TrainConfig.batch_size)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (batches, batch_size)):
        return data  # not what a saved config holds: reported as an unknown field
    kept = {k: v for k, v in train.items() if k != "eval_batches"}
    return {**data, "train": {**kept, "eval_examples": batches * batch_size}}


def from_dict(data: dict[str, Any]) -> ExperimentConfig:
    """Builds and validates an ExperimentConfig from nested dicts (e.g. parsed config.json)."""
    data = {**data}
    for section, name in RETIRED_FIELDS:
        if isinstance(data.get(section), dict) and name in data[section]:
            data[section] = {k: v for k, v in data[section].items() if k != name}
    for path, earlier in EARLIER_DEFAULTS:
        data = _with_missing(data, path, earlier)
    data = _eval_batches_as_examples(data)
    return validate(_from_dict(ExperimentConfig, data))


def _with_missing(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """`data` (nested dicts, copied where changed) with `value` at `path` where the section
    holding it is there and the field is not."""
    head, rest = path[0], path[1:]
    if not rest:
        return data if head in data else {**data, head: value}
    if not isinstance(data.get(head), dict):
        return data
    return {**data, head: _with_missing(data[head], rest, value)}


# ---------------------------------------------------------------------------------------
# Validation


def _require(ok: bool, field: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(field, value, expected)


def _check_types(node: Any, prefix: str) -> None:
    for name, tp in field_types(type(node)).items():
        value = getattr(node, name)
        if dataclasses.is_dataclass(tp):
            _check_types(value, prefix + name + ".")
        else:
            coerce(prefix + name, value, tp)


def _validate_audio(a: AudioConfig) -> None:
    for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
        _require(getattr(a, name) > 0, f"audio.{name}", getattr(a, name), "a positive integer")
    _require(a.hop_length <= a.n_fft, "audio.hop_length", a.hop_length, f"<= audio.n_fft ({a.n_fft})")
    _require(a.win_length <= a.n_fft, "audio.win_length", a.win_length, f"<= audio.n_fft ({a.n_fft})")
    n_bins = a.n_fft // 2 + 1
    _require(a.n_mels <= n_bins, "audio.n_mels", a.n_mels, f"<= n_fft // 2 + 1 ({n_bins})")
    nyquist = a.sample_rate / 2
    _require(a.fmin >= 0, "audio.fmin", a.fmin, "a frequency >= 0 Hz")
    if a.fmax is not None:
        _require(a.fmax <= nyquist, "audio.fmax", a.fmax, f"<= sample_rate / 2 ({nyquist:g} Hz)")
        _require(a.fmax > a.fmin, "audio.fmax", a.fmax, f"> audio.fmin ({a.fmin:g} Hz)")
    else:
        _require(a.fmin < nyquist, "audio.fmin", a.fmin, f"< sample_rate / 2 ({nyquist:g} Hz)")
    _require(a.power > 0, "audio.power", a.power, "a positive exponent (1 magnitude, 2 power)")
    _require(a.amin > 0, "audio.amin", a.amin, "a positive floor")
    _require(a.top_db is None or a.top_db > 0, "audio.top_db", a.top_db, "a positive dB range or None")
    _require(a.center, "audio.center", a.center, "true (frame counts and prompt alignment assume centred frames)")
    _require(a.pad_mode in ("constant", "reflect", "edge"), "audio.pad_mode", a.pad_mode,
             "one of 'constant', 'reflect', 'edge'")
    _require(a.mel_norm in (None, "slaney"), "audio.mel_norm", a.mel_norm, "'slaney' or None")
    _require(a.window in ("hann", "hamming", "blackman"), "audio.window", a.window,
             "one of 'hann', 'hamming', 'blackman'")


def _validate_model(m: ModelConfig) -> None:
    for name in ("num_layers", "d_model", "num_heads", "mlp_ratio", "frames_per_step",
                 "prenet_dim", "max_frames", "mixture_components"):
        _require(getattr(m, name) > 0, f"model.{name}", getattr(m, name), "a positive integer")
    _require(m.d_model % m.num_heads == 0, "model.d_model", m.d_model,
             f"a multiple of model.num_heads ({m.num_heads})")
    _require((m.d_model // m.num_heads) % 2 == 0, "model.d_model", m.d_model,
             "d_model / num_heads even (rotary embeddings rotate pairs)")
    _require(m.max_frames % m.frames_per_step == 0, "model.max_frames", m.max_frames,
             f"a multiple of model.frames_per_step ({m.frames_per_step})")
    for name in ("prenet_dropout", "dropout"):
        v = getattr(m, name)
        _require(0.0 <= v < 1.0, f"model.{name}", v, "a probability in [0, 1)")
    _require(m.feedback or not m.predict_residual, "model.predict_residual", m.predict_residual,
             "false with model.feedback false (there is no fed-back frame to predict a change from)")
    _require(m.context_dim >= 0, "model.context_dim", m.context_dim, ">= 0 (0 disables conditioning)")
    _require(m.context_dim == 0 or not m.condition.active, "model.context_dim", m.context_dim,
             "0 with model.condition.label or .text (the conditioner makes the context)")
    c = m.condition
    for name in ("max_labels", "max_text_chars", "max_note_tokens"):
        _require(getattr(c, name) > 0, f"model.condition.{name}", getattr(c, name), "a positive integer")
    _require(c.text_layers >= 0, "model.condition.text_layers", c.text_layers, ">= 0")
    _require(c.text_units == "characters" or c.text, "model.condition.text_units", c.text_units,
             '"characters" unless model.condition.text is on (phonemes are of a text)')
    if c.text_units == "phonemes":
        missing = phonemes_lib.missing_modules()
        _require(not missing, "model.condition.text_units", c.text_units,
                 f"\"characters\", or install {' and '.join(missing)} for phonemes: pip install -e '.[phonemes]'")
        _require(phonemes_lib.supports(c.phoneme_language), "model.condition.phoneme_language", c.phoneme_language,
                 "a language espeak-ng speaks (e.g. en-us, en-gb, fr-fr)")
    _require(c.text_window >= 0, "model.condition.text_window", c.text_window, ">= 0 characters (0: the whole text)")
    _require(c.note_layers >= 0, "model.condition.note_layers", c.note_layers, ">= 0")
    _require(0.0 <= c.dropout < 1.0, "model.condition.dropout", c.dropout, "a probability in [0, 1)")
    _require(0.0 <= c.each_dropout < 0.5, "model.condition.each_dropout", c.each_dropout, "a probability in [0, 0.5)")
    _require(c.each_dropout == 0 or (c.label and c.text), "model.condition.each_dropout", c.each_dropout,
             "0 unless model.condition.label and .text are both on")
    _require(0 <= c.guided_layers <= m.num_layers, "model.condition.guided_layers", c.guided_layers,
             f"in [0, model.num_layers={m.num_layers}]")
    _require(c.guided_layers == 0 or c.text, "model.condition.guided_layers", c.guided_layers,
             "0 unless model.condition.text is on (the diagonal runs over the text's characters)")
    _require(not c.voice or c.text or c.label, "model.condition.voice", c.voice,
             "off unless model.condition.text or .label is on (the voice joins their context)")
    _require(not c.speaking_rate or c.text, "model.condition.speaking_rate", c.speaking_rate,
             "off unless model.condition.text is on (a rate is characters per second)")
    _require(not c.duration or c.text, "model.condition.duration", c.duration,
             "off unless model.condition.text is on (the duration is the text's characters over a rate)")
    _require(c.text_alignment == "attention" or c.text, "model.condition.text_alignment", c.text_alignment,
             '"attention" unless model.condition.text is on (durations are of a text\'s characters)')
    _require(c.text_alignment == "attention" or c.midi != "tokens", "model.condition.text_alignment",
             c.text_alignment, '"attention" with model.condition.midi="tokens" (their context has no fixed text slots)')
    _require(0.0 <= c.rate_dropout < 1.0, "model.condition.rate_dropout", c.rate_dropout, "a probability in [0, 1)")
    _require(0.0 <= c.level_dropout < 1.0, "model.condition.level_dropout", c.level_dropout, "a probability in [0, 1)")
    _require(c.voice_dim > 0, "model.condition.voice_dim", c.voice_dim, "a positive integer")
    _require(0.0 <= c.voice_dropout < 1.0, "model.condition.voice_dropout", c.voice_dropout, "a probability in [0, 1)")
    _require(1 <= c.guided_heads <= m.num_heads, "model.condition.guided_heads", c.guided_heads,
             f"in [1, model.num_heads={m.num_heads}]")
    _require(m.rope_base > 1, "model.rope_base", m.rope_base, "> 1")
    _require(m.postnet_layers >= 0, "model.postnet_layers", m.postnet_layers, ">= 0 (0: no post-net)")
    _require(m.postnet_layers == 0 or m.head == "mse", "model.postnet_layers", m.postnet_layers,
             f"0 with model.head={m.head!r} (the post-net refines the mse head's frames)")
    _require(m.postnet_channels > 0, "model.postnet_channels", m.postnet_channels, "a positive integer")
    _require(m.postnet_kernel > 0 and m.postnet_kernel % 2 == 1, "model.postnet_kernel", m.postnet_kernel,
             "a positive odd width (centred on each frame)")
    _require(m.dtype != "float16", "model.dtype", m.dtype,
             "'float32' or 'bfloat16' (float16 would need loss scaling, which training does not do)")
    _require(m.attention != "cudnn" or m.dtype != "float32", "model.attention", m.attention,
             "'auto' or 'xla' with model.dtype='float32' (cuDNN's fused attention computes in 16 bits)")


GENERIC_SPLITS = ("train", "validation", "test")
GENERATED_SOURCES = ("synthetic", "sounds", "voices")  # made by the package: no data.dir, no download
DOWNLOADABLE_SOURCES = ("librispeech", "maestro")  # tfds can fetch these (data.download)


def _validate_data(d: DataConfig, a: AudioConfig, m: ModelConfig) -> None:
    allowed = tuple(LIBRISPEECH_SPLITS) if d.source == "librispeech" else GENERIC_SPLITS
    for name in ("train_split", "eval_split"):
        _require(getattr(d, name) in allowed, f"data.{name}", getattr(d, name),
                 f"a {d.source} split: one of {', '.join(allowed)}")
    _require(d.segment_seconds > 0, "data.segment_seconds", d.segment_seconds, "> 0 seconds")
    frames = a.seconds_to_frames(d.segment_seconds)
    _require(frames >= 3 * m.frames_per_step, "data.segment_seconds", d.segment_seconds,
             f"at least {3 * m.frames_per_step} mel frames long (decoding attends over a crop's groups but one: "
             "at least 2)")
    _require(frames <= m.max_frames + m.frames_per_step, "data.segment_seconds", d.segment_seconds,
             f"<= model.max_frames ({m.max_frames}) frames of audio")
    for name in ("synthetic_train_clips", "synthetic_eval_clips", "stats_clips"):
        _require(getattr(d, name) > 0, f"data.{name}", getattr(d, name), "a positive integer")
    if d.source in ("synthetic", "sounds"):  # fixed-length clips (voices: whole utterances)
        _require(d.synthetic_clip_seconds >= d.segment_seconds, "data.synthetic_clip_seconds",
                 d.synthetic_clip_seconds, f">= data.segment_seconds ({d.segment_seconds:g} s)")
    downloadable = d.source in DOWNLOADABLE_SOURCES
    if d.source not in GENERATED_SOURCES and not (downloadable and d.download):
        _require(d.dir is not None and bool(d.dir.strip()), "data.dir", d.dir,
                 f"the folder of a local copy for source '{d.source}'"
                 + (" (or data.download=true to fetch it through tfds)" if downloadable else ""))
    _require(not d.download or downloadable, "data.download", d.download,
             "false for source '%s' (only librispeech and maestro download)" % d.source)
    _require(not (d.download and d.dir), "data.download", d.download,
             "false when data.dir names a local copy (one or the other)")
    if m.condition.midi == "tokens":
        from audiolm_jax.midi import MAX_TOKEN_SECONDS

        _require(d.segment_seconds <= MAX_TOKEN_SECONDS, "data.segment_seconds", d.segment_seconds,
                 f"<= {MAX_TOKEN_SECONDS:g} s with model.condition.midi='tokens' (the tokens' time bins)")
    _require(d.chunk_seconds >= d.segment_seconds, "data.chunk_seconds", d.chunk_seconds,
             f"a whole number of seconds >= data.segment_seconds ({d.segment_seconds:g} s)")
    _require(0 <= d.prefetch_batches <= 64, "data.prefetch_batches", d.prefetch_batches, "in [0, 64] batches")
    _require(0.0 <= d.augment_gain_db <= 24.0, "data.augment_gain_db", d.augment_gain_db, "in [0, 24] dB")
    _require(d.augment_snr_db is None or -10.0 <= d.augment_snr_db <= 100.0, "data.augment_snr_db",
             d.augment_snr_db, "null (off) or an SNR in [-10, 100] dB")
    _require(0.0 <= d.augment_pitch_semitones <= 12.0, "data.augment_pitch_semitones",
             d.augment_pitch_semitones, "in [0, 12] semitones")
    _require(d.prepare_workers >= 0, "data.prepare_workers", d.prepare_workers, "a thread count >= 1, or 0 (one per core)")
    _require(d.cache != "log_mel" or not d.augments, "data.cache", d.cache,
             "'audio' or 'none' with augmentation (augmentation works on waveforms, log_mel keeps log-mels)")
    _require(0.0 <= d.end_crop_fraction <= 1.0, "data.end_crop_fraction", d.end_crop_fraction, "in [0, 1]")
    _require(0.0 <= d.paired_utterances <= 1.0, "data.paired_utterances", d.paired_utterances, "in [0, 1]")
    _require(not d.paired_utterances or (d.crop == "utterance" and d.cache != "log_mel"), "data.paired_utterances",
             d.paired_utterances, "0 unless data.crop=utterance with data.cache audio, none or auto "
             "(whole utterances are joined as audio)")
    _require(d.go_frames >= 0 and d.go_frames % m.frames_per_step == 0, "data.go_frames", d.go_frames,
             f"0 or a multiple of model.frames_per_step ({m.frames_per_step})")


def _validate_train(t: TrainConfig) -> None:
    for name in ("steps", "batch_size", "eval_every", "eval_examples", "log_every",
                 "checkpoint_every", "keep_checkpoints"):
        _require(getattr(t, name) > 0, f"train.{name}", getattr(t, name), "a positive integer")
    _require(t.learning_rate > 0, "train.learning_rate", t.learning_rate, "> 0")
    _require(t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, ">= 0")
    _require(t.weight_decay >= 0, "train.weight_decay", t.weight_decay, ">= 0")
    _require(t.grad_clip_norm > 0, "train.grad_clip_norm", t.grad_clip_norm, "> 0")
    _require(0.0 <= t.ema_decay < 1.0, "train.ema_decay", t.ema_decay, "in [0, 1)")
    _require(0.0 <= t.input_noise <= 4.0, "train.input_noise", t.input_noise, "a std in [0, 4] (normalised units)")
    _require(t.gate_weight >= 0, "train.gate_weight", t.gate_weight, ">= 0")
    _require(t.mean_mse_weight >= 0, "train.mean_mse_weight", t.mean_mse_weight, ">= 0")
    _require(0.0 <= t.flux_weight <= 10.0, "train.flux_weight", t.flux_weight, "a weight in [0, 10]")
    _require(0.0 <= t.input_drift <= 1.0, "train.input_drift", t.input_drift, "a std in [0, 1] (normalised units per group)")
    _require(0.0 <= t.input_stripes <= 1.0, "train.input_stripes", t.input_stripes,
             "a std in [0, 1] (normalised units per group)")
    _require(0.0 <= t.self_feed <= 1.0, "train.self_feed", t.self_feed, "a share in [0, 1]")
    _require(0.0 <= t.heard_share <= 1.0, "train.heard_share", t.heard_share, "a share in [0, 1]")
    _require(0.0 < t.heard_fraction <= 1.0, "train.heard_fraction", t.heard_fraction, "a fraction in (0, 1]")
    _require(1 <= t.self_feed_passes <= 8, "train.self_feed_passes", t.self_feed_passes, "an integer in [1, 8]")
    _require(t.gate_positive_weight > 0, "train.gate_positive_weight", t.gate_positive_weight, "> 0")
    _require(t.text_prior_weight >= 0, "train.text_prior_weight", t.text_prior_weight, ">= 0")
    _require(t.duration_loss_weight >= 0, "train.duration_loss_weight", t.duration_loss_weight, ">= 0")
    _require(t.guided_attention_weight >= 0, "train.guided_attention_weight", t.guided_attention_weight, ">= 0")
    _require(0 < t.guided_attention_sigma <= 1, "train.guided_attention_sigma", t.guided_attention_sigma,
             "in (0, 1] (a fraction of the text and of the audio)")
    _require(t.num_processes >= 0, "train.num_processes", t.num_processes, ">= 0 (0: from the environment)")
    _require(t.process_id >= -1, "train.process_id", t.process_id, ">= 0, or -1 (from the environment)")
    _require(t.num_processes == 0 or t.process_id < t.num_processes, "train.process_id", t.process_id,
             f"< train.num_processes ({t.num_processes})")


def _validate_sample(s: SampleConfig, d: DataConfig, a: AudioConfig, m: ModelConfig) -> None:
    _require(s.prompt_seconds > 0, "sample.prompt_seconds", s.prompt_seconds, "> 0 seconds")
    _require(s.prompt_seconds < d.segment_seconds, "sample.prompt_seconds", s.prompt_seconds,
             f"shorter than data.segment_seconds ({d.segment_seconds:g} s)")
    _require(a.seconds_to_frames(s.prompt_seconds) >= m.frames_per_step, "sample.prompt_seconds",
             s.prompt_seconds, f"at least model.frames_per_step ({m.frames_per_step}) frames")
    _require(s.seconds > 0, "sample.seconds", s.seconds, "> 0 seconds")
    for name in ("num_prompts", "num_samples", "griffin_lim_iters"):
        _require(getattr(s, name) > 0, f"sample.{name}", getattr(s, name), "a positive integer")
    _require(s.temperature >= 0, "sample.temperature", s.temperature, ">= 0")
    _require(s.component_temperature > 0, "sample.component_temperature", s.component_temperature, "> 0")
    _require(s.monotonic >= 0, "sample.monotonic", s.monotonic, ">= 0 characters (0: unconstrained attention)")
    _require(s.max_dwell >= 0, "sample.max_dwell", s.max_dwell, ">= 0 groups (0: no limit)")
    _require(s.gate_focus_margin is None or s.gate_focus_margin >= 0, "sample.gate_focus_margin", s.gate_focus_margin,
             "None or >= 0 characters")
    _require(s.guidance >= 0, "sample.guidance", s.guidance, ">= 0 (1: no guidance)")
    _require(s.guidance_null in ("conditions", "prompt"), "sample.guidance_null", s.guidance_null,
             "'conditions' or 'prompt'")
    _require(s.guidance_null != "prompt" or not m.feedback, "sample.guidance_null", s.guidance_null,
             "'conditions' unless model.feedback is false (only such a model hears its prompt alone)")
    _require(s.guidance == 1.0 or m.condition.takes_conditions or s.guidance_null == "prompt", "sample.guidance",
             s.guidance, "1 unless model.condition has a conditioner or a level (there is nothing to guide with)")
    _require(not s.stop_at_gate or m.gate, "sample.stop_at_gate", s.stop_at_gate,
             "false unless model.gate is true (there is no gate to stop at)")


def validate(config: ExperimentConfig) -> ExperimentConfig:
    """Checks types and cross-field constraints; returns `config` or raises ConfigError."""
    _check_types(config, "")
    _require(bool(config.workdir.strip()), "workdir", config.workdir, "a directory path")
    _validate_audio(config.audio)
    _validate_model(config.model)
    _validate_data(config.data, config.audio, config.model)
    _validate_train(config.train)
    _require(config.train.loss == "mse" or config.model.head == "mse", "train.loss", config.train.loss,
             f"'mse' with model.head={config.model.head!r} (its loss is the negative log-likelihood)")
    _require(config.train.self_feed == 0 or config.model.condition.text_alignment == "attention", "train.self_feed",
             config.train.self_feed, "0 with model.condition.text_alignment='durations' (its draws would need the "
             "alignment each training step searches for after them)")
    _validate_sample(config.sample, config.data, config.audio, config.model)
    return config


# ---------------------------------------------------------------------------------------
# JSON


def save_json(config: ExperimentConfig, path: str) -> None:
    """Writes the config to `path` atomically."""
    atomic.write_json(path, to_dict(config))


def load_json(path: str) -> ExperimentConfig:
    """Reads and validates a config written by `save_json`; errors name the file."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"'{path}': no config.json (is this a workdir of a training run?)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"'{path}': not valid JSON ({e})") from None
    try:
        return from_dict(data)
    except ConfigError as e:
        raise ConfigError(e.field, e.value, f"{e.expected} (in '{path}')") from None
