"""MAESTRO v3 piano continuation, base size for one GPU (about 85 M parameters).

    python -m experiments.maestro_base --data.dir=/data/maestro-v3.0.0 [--workdir=runs/maestro_base]
    python -m experiments.maestro_base --data.download=true       # tfds fetches maestro-v3.0.0.zip (~100 GB)

Choices: 22.05 kHz with 128 mels up to 11 kHz (piano partials reach far up; 22.05 kHz halves
the cost of 44.1 kHz with little audible loss after Griffin-Lim); hop 256 (86 frames/s);
10 s crops (860 frames, 430 positions at 2 frames per step) give the model several bars of
context; 12 layers × 768 wide, 12 heads, as GPT-2 small, no biases in the blocks; bfloat16
compute and residual stream; global batch 32; AdamW 3e-4 with 2k warmup steps and cosine
decay over 200k steps. Prenet dropout 0.5 as in Tacotron 2, kept on at sampling. Free-running
stability as measured at demo size (README, "What was measured"): a mixture of 8 Gaussians per
group sampled at temperature 0.3, noise of 0.2 std on teacher-forced inputs, and the mixture
mean's MSE beside its likelihood (MELLE's spectral-flux term did not move piano's drift past
the spread of seeds: benchmarks/results/HISTORY.md, "Fourteenth session").
"""

from audiolm_jax.cli import main
from audiolm_jax.config import (AudioConfig, DataConfig, ExperimentConfig, ModelConfig,
                                SampleConfig, TrainConfig)


def config() -> ExperimentConfig:
    return ExperimentConfig(
        name="maestro_base",
        workdir="runs/maestro_base",
        audio=AudioConfig(sample_rate=22050, n_fft=1024, win_length=1024, hop_length=256, n_mels=128,
                          fmin=30.0, fmax=11025.0),
        model=ModelConfig(num_layers=12, d_model=768, num_heads=12, prenet_dim=256, frames_per_step=2,
                          prenet_dropout=0.5, prenet_dropout_at_sampling=True, max_frames=2048,
                          dtype="bfloat16", head="mixture", mixture_components=8,
                          # As PaLM and LLaMA: no biases in the blocks, a bfloat16 residual stream. On an
                          # H200 this step 22.3 -> 20.5 ms (MFU 33.3% -> 36.4%); at demo size on piano the
                          # teacher-forced ratio stays within two seeds of the old recipe's (README,
                          # "Fourteenth session").
                          block_biases=False, residual_dtype="bfloat16"),
        data=DataConfig(source="maestro", dir=None, segment_seconds=10.0, train_split="train",
                        eval_split="validation", stats_clips=512),
        train=TrainConfig(steps=200_000, batch_size=32, learning_rate=3e-4, warmup_steps=2000,
                          weight_decay=0.01, input_noise=0.2, mean_mse_weight=10.0,
                          eval_every=5000, eval_examples=512, log_every=100,
                          checkpoint_every=5000, keep_checkpoints=3),
        sample=SampleConfig(prompt_seconds=3.0, seconds=10.0, num_prompts=8, num_samples=2, temperature=0.3),
    )


if __name__ == "__main__":
    main(config)
