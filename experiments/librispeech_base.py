"""LibriSpeech speech continuation, base size for one GPU (about 85 M parameters).

    python -m experiments.librispeech_base --data.dir=/data/LibriSpeech [--workdir=runs/librispeech_base]
    python -m experiments.librispeech_base --data.download=true   # tfds fetches the OpenSLR archives

Choices: 16 kHz (LibriSpeech's own rate) with 80 mels up to 8 kHz, the usual TTS front end;
hop 256 (62.5 frames/s); 6 s crops (most utterances are 10-15 s; 6 s holds a few words of
context and a 3 s prompt); 12 layers × 768 wide, 12 heads, no biases in the blocks;
bfloat16 compute and residual stream; global batch 64; AdamW 3e-4, 2k warmup, cosine decay
over 200k steps; Tacotron 2's prenet dropout 0.5, kept on at sampling. Free-running
stability as measured at demo size (README, "What was measured"): a mixture of 8 Gaussians
per group sampled at temperature 0 (component temperature 0.7), input noise 0.2, the
mixture mean's MSE beside its likelihood, MELLE's spectral-flux term; an end-of-audio gate
trained on the 10% of crops that hold an utterance's end (`--sample.stop_at_gate=true` stops
there). Splits are tfds's names: train_clean100 (or train_clean360, train_other500) for
training, dev_clean for evaluation.
"""

from audiolm_jax.cli import main
from audiolm_jax.config import (AudioConfig, DataConfig, ExperimentConfig, ModelConfig,
                                SampleConfig, TrainConfig)


def config() -> ExperimentConfig:
    return ExperimentConfig(
        name="librispeech_base",
        workdir="runs/librispeech_base",
        audio=AudioConfig(sample_rate=16000, n_fft=1024, win_length=1024, hop_length=256, n_mels=80,
                          fmin=0.0, fmax=8000.0),
        model=ModelConfig(num_layers=12, d_model=768, num_heads=12, prenet_dim=256, frames_per_step=2,
                          prenet_dropout=0.5, prenet_dropout_at_sampling=True, max_frames=1024,
                          dtype="bfloat16", head="mixture", mixture_components=8, gate=True,
                          # As PaLM and LLaMA: no biases in the blocks, a bfloat16 residual stream. On an
                          # H200 this step measured 17.3 ms, MFU 36.5% (maestro_base's 22.3 -> 20.5 ms
                          # with them); at demo size on speech the same quality
                          # (benchmarks/results/HISTORY.md, "Fourteenth session").
                          block_biases=False, residual_dtype="bfloat16"),
        data=DataConfig(source="librispeech", dir=None, segment_seconds=6.0, train_split="train_clean100",
                        eval_split="dev_clean", stats_clips=512,
                        end_crop_fraction=0.1),
        # MELLE's flux term: it raised speech continuations' DNSMOS in every pair measured at
        # demo size (0.75x -> 0.81x the resynthesised prompt's; benchmarks/results/HISTORY.md,
        # "Thirteenth session").
        train=TrainConfig(steps=200_000, batch_size=64, learning_rate=3e-4, warmup_steps=2000,
                          weight_decay=0.01, input_noise=0.2, mean_mse_weight=10.0, flux_weight=1.0,
                          eval_every=5000, eval_examples=1024, log_every=100,
                          checkpoint_every=5000, keep_checkpoints=3),
        # Temperature 0: a component drawn by its weight, then its mean. Each drawn Gaussian's
        # per-bin noise is carried on by residual decoding, a random walk per bin that makes
        # speech louder the longer it runs (|drift| 3.1 -> 1.8 dB at demo size). Component
        # temperature 0.7: the likelier components more often, DNSMOS 0.755x -> 0.771x the
        # resynthesised prompt's over three training seeds x three sampling seeds at demo size
        # (higher in 6 of 9 paired draws), drift still <= 1.63 dB (benchmarks/results/HISTORY.md,
        # "Fortieth session").
        sample=SampleConfig(prompt_seconds=3.0, seconds=6.0, num_prompts=8, num_samples=2, temperature=0.0,
                            component_temperature=0.7),
    )


if __name__ == "__main__":
    main(config)
