"""Reports: wav files, spectrogram PNGs and an HTML page of prompts and continuations.

Everything here writes what it is handed, atomically, and computes nothing it could be
handed. Spectrograms are log-mel in dB `[frames, n_mels]`.
"""

from __future__ import annotations

import dataclasses
import html
import os
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from audiolm_jax import atomic  # noqa: E402
from audiolm_jax.midi import pitch_hz  # noqa: E402
from audiolm_jax.config import AudioConfig  # noqa: E402


def spectrogram_rgb(log_mel_db: np.ndarray, floor_db: float = 80.0) -> np.ndarray:
    """A `[n_mels, frames, 3]` uint8 image (low frequencies at the bottom) for TensorBoard."""
    db = np.asarray(log_mel_db, np.float32).T[::-1]
    top = db.max()
    scaled = np.clip((db - (top - floor_db)) / floor_db, 0.0, 1.0)
    return (matplotlib.colormaps["magma"](scaled)[..., :3] * 255).astype(np.uint8)


def pitch_mel_bins(pitches: np.ndarray, config: AudioConfig) -> np.ndarray:
    """Fractional mel-bin index `[N]` of each MIDI pitch's fundamental (bin centres as
    `librosa.filters.mel` places them), for drawing notes over a spectrogram."""
    import librosa

    centres = librosa.mel_frequencies(config.n_mels + 2, fmin=config.fmin, fmax=config.fmax or config.sample_rate / 2,
                                      htk=config.htk)[1:-1]
    return np.interp(pitch_hz(pitches), centres, np.arange(config.n_mels))


def _draw_notes(ax, notes: np.ndarray, config: AudioConfig) -> None:
    """Each note `[N, 4]` (seconds, pitch, velocity) as a line at its fundamental's mel bin."""
    notes = np.asarray(notes, np.float64).reshape(-1, 4)
    if not len(notes):
        return
    rows = pitch_mel_bins(notes[:, 2], config) + 0.5
    ax.hlines(rows, np.maximum(notes[:, 0], 0.0), notes[:, 1], colors="cyan", linewidth=1.2, alpha=0.8,
              label="MIDI notes")
    starts = notes[:, 0] >= 0
    ax.plot(notes[starts, 0], rows[starts], "|", color="white", markersize=6)


def save_spectrogram_png(path: str, log_mel_db: np.ndarray, config: AudioConfig, title: str = "",
                         boundary_seconds: Optional[float] = None, top_db: Optional[float] = None,
                         range_db: float = 80.0, notes: Optional[np.ndarray] = None,
                         alignment: Optional[np.ndarray] = None, text: str = "") -> None:
    """Writes a log-mel spectrogram `[frames, n_mels]` as a PNG; marks the prompt boundary
    and, when given, draws `notes` `[N, 4]` (`midi.py`, seconds from the first frame) over
    it as a piano roll at each note's fundamental, and puts a TTS model's `alignment`
    `[positions, characters]` (attention of each decoder position over the symbols of
    `text`, the text as the encoder read it: characters or phonemes) beside it.

    Colours span [`top_db` - `range_db`, `top_db`]; `top_db` defaults to this image's peak.
    A page of several spectrograms passes one `top_db` so equal colours are equal levels.
    """
    frames = log_mel_db.shape[0]
    seconds = frames / config.frames_per_second
    db = np.asarray(log_mel_db)
    top = float(db.max()) if top_db is None else top_db
    width = max(4.0, min(16.0, 2.0 * seconds))
    if alignment is None:
        fig, ax = plt.subplots(figsize=(width, 3.0), dpi=100)
    else:
        fig, (ax, side) = plt.subplots(1, 2, figsize=(width + 5.0, 3.0), dpi=100,
                                       gridspec_kw={"width_ratios": [width, 5.0]})
        _draw_alignment(side, alignment, text)
    try:
        image = ax.imshow(db.T, origin="lower", aspect="auto", cmap="magma", vmin=top - range_db, vmax=top,
                          extent=(0.0, seconds, 0, log_mel_db.shape[1]))
        if notes is not None:
            _draw_notes(ax, notes, config)
            ax.set_xlim(0.0, seconds)
        if boundary_seconds is not None:
            ax.axvline(boundary_seconds, color="lime", linestyle="--", linewidth=1.5, label="prompt end")
        if boundary_seconds is not None or (notes is not None and len(notes)):
            ax.legend(loc="upper right", fontsize=8)
        ax.set_xlabel("seconds")
        ax.set_ylabel("mel bin")
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, label="dB")
        fig.tight_layout()
        with atomic.atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)


def _draw_alignment(ax, alignment: np.ndarray, text: str) -> None:
    """Attention `[positions, characters]` as an image: decoder position across, character up."""
    ax.imshow(np.asarray(alignment).T, origin="lower", aspect="auto", cmap="viridis", vmin=0.0,
              vmax=max(float(np.max(alignment)), 1e-6) if np.size(alignment) else 1.0, interpolation="nearest")
    ax.set_xlabel("decoder position")
    ax.set_ylabel("text symbol (character or phoneme)")
    if text and len(text) <= 80:
        ax.set_yticks(range(len(text)))
        ax.set_yticklabels(list(text.replace(" ", "·")), fontsize=5)
    ax.set_title("text alignment", fontsize=9)  # attention, or a durations model's track


@dataclasses.dataclass(frozen=True)
class SampleCell:
    """One continuation: its wav and spectrogram (paths relative to the report) and metrics."""

    wav: str
    png: str
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SampleRow:
    """One prompt (wav and spectrogram) and its continuations; paths relative to the report."""

    name: str
    prompt_wav: Optional[str]  # None: generated from no audio (a label, a text)
    prompt_png: Optional[str]
    samples: Sequence[SampleCell]
    text: Optional[str] = None  # what the row speaks (TTS: the voice's transcript, then the new text)


def _metrics_html(metrics: dict[str, float]) -> str:
    esc = lambda s: html.escape(str(s), quote=True)
    items = "".join(f"<tr><td>{esc(k)}</td><td>{v:.3g}</td></tr>" for k, v in metrics.items())
    return f'<table class="metrics">{items}</table>' if items else ""


def write_index_html(path: str, rows: Sequence[SampleRow], title: str, notes: Sequence[str] = ()) -> None:
    """A table of prompts × samples with <audio> players, spectrograms and metrics (names escaped)."""
    esc = lambda s: html.escape(str(s), quote=True)
    width = max((len(r.samples) for r in rows), default=0)
    head = "".join(f"<th>sample {i}</th>" for i in range(width))
    body = []
    for row in rows:
        cells = "".join(
            f'<td><audio controls preload="none" src="{esc(c.wav)}"></audio><br>'
            f'<a href="{esc(c.png)}"><img src="{esc(c.png)}" alt="spectrogram of {esc(c.wav)}" width="480"></a>'
            f'{_metrics_html(c.metrics)}</td>'
            for c in row.samples)
        prompt_cell = ("<td>no audio prompt</td>" if row.prompt_wav is None else
                       f'<td><audio controls preload="none" src="{esc(row.prompt_wav)}"></audio><br>'
                       f'<a href="{esc(row.prompt_png)}"><img src="{esc(row.prompt_png)}" '
                       f'alt="spectrogram of {esc(row.prompt_wav)}" width="240"></a></td>')
        spoken = f'<br><q class="text">{esc(row.text)}</q>' if row.text else ""
        body.append(f'<tr><th>{esc(row.name)}{spoken}</th>{prompt_cell}{cells}</tr>')
    notes_html = "".join(f"<li>{esc(n)}</li>" for n in notes)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} td,th{{padding:.4em;vertical-align:top;border-bottom:1px solid #ddd}}
table.metrics td{{padding:.1em .6em;border:none;font-size:85%}} q.text{{font-weight:normal;font-style:italic}}</style>
</head>
<body>
<h1>{esc(title)}</h1>
<ul>{notes_html}</ul>
<table>
<tr><th>prompt</th><th>prompt audio</th>{head}</tr>
{chr(10).join(body)}
</table>
</body>
</html>
"""
    atomic.write_text(path, page)


def relative(path: str, folder: str) -> str:
    """`path` relative to `folder`, with forward slashes (for links in the HTML page)."""
    return os.path.relpath(path, folder).replace(os.sep, "/")


def write_continuation_report(out_dir: str, continuations: Sequence, config: AudioConfig, title: str,
                              notes: Sequence[str] = (), metrics: Optional[Sequence[Sequence[dict]]] = None) -> str:
    """Writes each prompt's wav and PNG, each full wav and PNG, and `index.html`; returns its path.

    `continuations` are `continuation.Continuation`s (their MIDI notes, if any, drawn over
    each sample's spectrogram); `metrics[i][k]`, if given, is shown under sample k of prompt i. Every spectrogram of the page shares one dB scale (the
    page's peak and 80 dB below it). File names are `<prompt>_prompt.wav|png`,
    `<prompt>_sample<k>.wav|png`, with unsafe characters replaced.
    """
    from audiolm_jax import audio  # local: audio pulls in JAX, the HTML writer need not

    os.makedirs(out_dir, exist_ok=True)
    top = max((float(np.max(m)) for c in continuations for m in c.full_log_mel), default=0.0)
    rows = []
    for i, cont in enumerate(continuations):
        stem = _safe_name(cont.name)
        prompt_path, prompt_png = (os.path.join(out_dir, f"{stem}_prompt.{ext}") for ext in ("wav", "png"))
        has_prompt = cont.prompt_frames > 0  # generated from no audio (a label, a text) otherwise
        if has_prompt:
            audio.save(prompt_path, cont.prompt, config.sample_rate)
            save_spectrogram_png(prompt_png, cont.full_log_mel[0][: cont.prompt_frames], config,
                                 title=f"{cont.name} · prompt", top_db=top)
        cells = []
        for k, (wave, log_mel) in enumerate(zip(cont.full, cont.full_log_mel)):
            wav_path = os.path.join(out_dir, f"{stem}_sample{k}.wav")
            png_path = os.path.join(out_dir, f"{stem}_sample{k}.png")
            audio.save(wav_path, wave, config.sample_rate)
            save_spectrogram_png(png_path, log_mel, config, title=f"{cont.name} · sample {k}",
                                 boundary_seconds=cont.prompt_seconds if has_prompt else None, top_db=top,
                                 notes=cont.notes, alignment=cont.alignments[k] if cont.alignments else None,
                                 text=cont.read or cont.text or "")
            cells.append(SampleCell(relative(wav_path, out_dir), relative(png_path, out_dir),
                                    dict(metrics[i][k]) if metrics else {}))
        rows.append(SampleRow(cont.name, relative(prompt_path, out_dir) if has_prompt else None,
                              relative(prompt_png, out_dir) if has_prompt else None, cells, cont.text))
    index = os.path.join(out_dir, "index.html")
    write_index_html(index, rows, title, notes)
    return index


def _safe_name(name: str) -> str:
    """A file-name stem from a display name: keeps letters, digits, '-', '_' and '.'."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return stem or "prompt"
