"""Text-to-speech and voice cloning on LibriSpeech, sized for one GPU (about 40 M parameters).

    python -m experiments.librispeech_tts --data.dir=/data/LibriSpeech [--workdir=runs/librispeech_tts]
    python -m experiments.librispeech_tts --data.download=true   # tfds fetches the OpenSLR archives
    python -m audiolm_jax.tts --workdir runs/librispeech_tts --text "..." [--voice a.flac --voice-text "..."] --out DIR

Choices: whole utterances up to 16 s (data.crop=utterance; longer ones are skipped — most
of train-clean-100 is 12-16 s) after one group of go frames; characters (up to 320)
through a 4-layer encoder; 8 decoder blocks × 512, whose last two blocks' first two heads
are guided to the diagonal (DC-TTS, as ESPnet's Transformer-TTS applies it). Since the
thirty-sixth session the decoder reads its text by durations
(`model.condition.text_alignment="durations"`: monotonic alignment search in training, a
duration predictor at synthesis, each position told its character) and is fed none of its
own frames (`model.feedback=false`: only a voice prompt is heard), four frames per position
and a 32-wide prenet: on the espeak-ng corpus the first syntheses a recogniser reads (CER
1.23× the Griffin-Lim resynthesis on evaluate's 24 sentences, against 1.89× for the same
settings reading by attention with feedback and 2.16× for the recipe before; durations 0.97
within ±20%; cloning 0.71 against 0.54; benchmarks/results/HISTORY.md, thirty-sixth
session). Since the thirty-eighth session a voice embedding of the example's own frames
joins the text's context (`model.condition.voice`; a prompt's at synthesis, the learned
null for text alone, 0.2 of training rows): on the espeak-ng corpus clones were identified as their voice 0.81 and 0.84
of all 96 held-out sentences (two training seeds) against 0.67 without it (README). What follows
describes the attention recipe that came before, still what `--model.condition.text_alignment=attention
--model.feedback=true --model.frames_per_step=2 --data.go_frames=2 --model.prenet_dim=256
--sample.max_dwell=8` trains: two frames per position; Tacotron 2's MSE head predicting absolute frames (not the change from the
last frame: on the espeak-ng corpus clones were identified as their voice 0.50 of the
time against 0.28, README) with prenet dropout 0.2 (in place of Tacotron's 0.5, which
on the espeak-ng corpus timed 0.92 of sentences within ±20% against 0.83 but cloned 0.67
against 0.83 and raised CER: README; `--model.prenet_dropout=0.5` for timing), kept
on at sampling; an end-of-audio gate; monotonic attention (±3 characters) at
synthesis, whose focus may hold one character for at most 8 groups (`sample.max_dwell`;
on the last one, speech then ends: 0.81 of sentences within ±20% against 0.78 on the
espeak-ng corpus, README). No speaker labels: voice cloning continues a recording of the voice with its
transcript before the new text (VALL-E's prompting), which the model learns from half of
its training examples being two utterances of one speaker joined, transcripts too, with a
break mark between them (`data.paired_utterances`; with both, clones were identified as
their voice 0.89 of the time against 0.50 on the same prompts; the mark keeps the pause
between the two recordings at the mark, not at word boundaries the model guesses: README).
`--model.condition.duration=true` tells each decoder position the frames left (the text's
characters over a speaking rate at synthesis, `tts --rate` or a voice's): on the espeak-ng
corpus 0.948 of syntheses within ±20% of the recording against 0.85, paced to a requested
rate, but over all 96 held-out sentences CER 2.29× the resynthesis and cloning 0.76 against
2.16× and 0.82 (README), so it is off. `--model.frames_per_step=4 --data.go_frames=4
--model.prenet_dim=32` makes the decoder read its text (on the espeak-ng corpus the
teacher-forced error with another sentence's text 1.93× its own, against 1.09-1.43) and
timed 0.948 of 96 syntheses within ±20%, but read no better (CER 1.89× against 1.86× on the
same 24 sentences) and cloned 0.54-0.67 (benchmarks/results/HISTORY.md, thirty-fourth
session). `--model.feedback=false` (nothing drawn fed back, only a voice prompt heard)
aligned but spoke the corpus' average spectrum, flat in time, with or without the duration
conditioner (benchmarks/results/HISTORY.md, thirty-fifth session).
"""

from audiolm_jax.cli import main
from audiolm_jax.config import (AudioConfig, ConditionConfig, DataConfig, ExperimentConfig, ModelConfig,
                                SampleConfig, TrainConfig)


def config() -> ExperimentConfig:
    return ExperimentConfig(
        name="librispeech_tts",
        workdir="runs/librispeech_tts",
        audio=AudioConfig(sample_rate=16000, n_fft=1024, win_length=1024, hop_length=256, n_mels=80,
                          fmin=0.0, fmax=8000.0),
        model=ModelConfig(num_layers=8, d_model=512, num_heads=8, prenet_dim=32, frames_per_step=4,
                          prenet_dropout=0.2, prenet_dropout_at_sampling=True, max_frames=1024, head="mse",
                          dtype="bfloat16", gate=True, absolute_positions=True, predict_residual=False,
                          feedback=False,
                          condition=ConditionConfig(text=True, max_text_chars=320, text_layers=4, dropout=0.0,
                                                    guided_layers=2, guided_heads=2, text_alignment="durations",
                                                    voice=True)),
        data=DataConfig(source="librispeech", dir=None, segment_seconds=16.0, crop="utterance",
                        train_split="train_clean100", eval_split="dev_clean", stats_clips=512, go_frames=4,
                        paired_utterances=0.5),
        train=TrainConfig(steps=200_000, batch_size=32, learning_rate=5e-4, warmup_steps=4000,
                          weight_decay=0.01, guided_attention_weight=1.0, guided_attention_sigma=0.4,
                          eval_every=5000, eval_examples=512, log_every=100, checkpoint_every=5000,
                          keep_checkpoints=3),
        sample=SampleConfig(prompt_seconds=3.0, seconds=12.0, num_prompts=4, num_samples=1, temperature=0.0,
                            stop_at_gate=True, monotonic=3, max_dwell=4),
    )


if __name__ == "__main__":
    main(config)
