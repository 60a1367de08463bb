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
from audiolm_jax.config import AudioConfig  # noqa: E402


def spectrogram_rgb(log_mel_db: np.ndarray, floor_db: float = 80.0) -> np.ndarray:
    """A `[n_mels, frames, 3]` uint8 image (low frequencies at the bottom) for TensorBoard."""
    db = np.asarray(log_mel_db, np.float32).T[::-1]
    top = db.max()
    scaled = np.clip((db - (top - floor_db)) / floor_db, 0.0, 1.0)
    return (matplotlib.colormaps["magma"](scaled)[..., :3] * 255).astype(np.uint8)


def save_spectrogram_png(path: str, log_mel_db: np.ndarray, config: AudioConfig,
                         title: str = "", boundary_seconds: Optional[float] = None) -> None:
    """Writes a log-mel spectrogram `[frames, n_mels]` as a PNG; marks the prompt boundary."""
    frames = log_mel_db.shape[0]
    seconds = frames / config.frames_per_second
    fig, ax = plt.subplots(figsize=(max(4.0, min(16.0, 2.0 * seconds)), 3.0), dpi=100)
    try:
        db = np.asarray(log_mel_db)
        image = ax.imshow(db.T, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 80.0, vmax=db.max(),
                          extent=(0.0, seconds, 0, log_mel_db.shape[1]))
        if boundary_seconds is not None:
            ax.axvline(boundary_seconds, color="cyan", linestyle="--", linewidth=1.5, label="prompt end")
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


@dataclasses.dataclass(frozen=True)
class SampleRow:
    """One prompt and its continuations; paths are relative to the report folder."""

    name: str
    prompt_wav: str
    samples: Sequence[tuple[str, str]]  # (full wav, spectrogram png) per sample


def write_index_html(path: str, rows: Sequence[SampleRow], title: str, notes: Sequence[str] = ()) -> None:
    """A table of prompts × samples with <audio> players and spectrograms (names escaped)."""
    esc = lambda s: html.escape(str(s), quote=True)
    width = max((len(r.samples) for r in rows), default=0)
    head = "".join(f"<th>sample {i}</th>" for i in range(width))
    body = []
    for row in rows:
        cells = "".join(
            f'<td><audio controls preload="none" src="{esc(wav)}"></audio><br>'
            f'<a href="{esc(png)}"><img src="{esc(png)}" alt="spectrogram of {esc(wav)}" width="480"></a></td>'
            for wav, png in row.samples)
        body.append(f'<tr><th>{esc(row.name)}</th><td><audio controls preload="none" '
                    f'src="{esc(row.prompt_wav)}"></audio></td>{cells}</tr>')
    notes_html = "".join(f"<li>{esc(n)}</li>" for n in notes)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} td,th{{padding:.4em;vertical-align:top;border-bottom:1px solid #ddd}}</style>
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


def write_continuation_report(out_dir: str, continuations: Sequence, config: AudioConfig,
                              title: str, notes: Sequence[str] = ()) -> str:
    """Writes each prompt wav, each full wav and PNG, and `index.html`; returns its path.

    `continuations` are `sample.Continuation`s. File names are `<prompt>_prompt.wav`,
    `<prompt>_sample<k>.wav` and `<prompt>_sample<k>.png`, with unsafe characters replaced.
    """
    from audiolm_jax import audio  # local: audio pulls in JAX, the HTML writer need not

    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for cont in continuations:
        stem = _safe_name(cont.name)
        prompt_path = os.path.join(out_dir, f"{stem}_prompt.wav")
        audio.save(prompt_path, cont.prompt, config.sample_rate)
        samples = []
        for k, (wave, log_mel) in enumerate(zip(cont.full, cont.full_log_mel)):
            wav_path = os.path.join(out_dir, f"{stem}_sample{k}.wav")
            png_path = os.path.join(out_dir, f"{stem}_sample{k}.png")
            audio.save(wav_path, wave, config.sample_rate)
            save_spectrogram_png(png_path, log_mel, config, title=f"{cont.name} · sample {k}",
                                 boundary_seconds=cont.prompt_seconds)
            samples.append((relative(wav_path, out_dir), relative(png_path, out_dir)))
        rows.append(SampleRow(cont.name, relative(prompt_path, out_dir), samples))
    index = os.path.join(out_dir, "index.html")
    write_index_html(index, rows, title, notes)
    return index


def _safe_name(name: str) -> str:
    """A file-name stem from a display name: keeps letters, digits, '-', '_' and '.'."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return stem or "prompt"
