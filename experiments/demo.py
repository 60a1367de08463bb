"""The embedded default: a tiny model on the synthetic piano set, offline, in minutes on a CPU.

    python -m experiments.demo [--train.steps=200] [--workdir=runs/x] [--help]

Trains, evaluates against the copy-last-frame baseline, restores the checkpoint, continues
held-out prompts and writes `runs/demo/samples/index.html`.
"""

from audiolm_jax.cli import main
from audiolm_jax.config import (AudioConfig, DataConfig, ExperimentConfig, ModelConfig,
                                SampleConfig, TrainConfig)


def config() -> ExperimentConfig:
    return ExperimentConfig(
        name="demo",
        workdir="runs/demo",
        audio=AudioConfig(sample_rate=16000, n_fft=1024, win_length=1024, hop_length=256, n_mels=64),
        # frames_per_step=1: each position predicts the next frame, the same frames the
        # copy-last-frame baseline predicts. No prenet dropout: a model this small trained
        # this briefly needs all of its input (see README, "What was measured").
        model=ModelConfig(num_layers=4, d_model=128, num_heads=4, prenet_dim=128, frames_per_step=1,
                          prenet_dropout=0.0, prenet_dropout_at_sampling=False, max_frames=256),
        # Many short distinct clips: with few long ones the model memorises their motifs.
        data=DataConfig(source="synthetic", segment_seconds=3.0, synthetic_train_clips=1024,
                        synthetic_eval_clips=16, synthetic_clip_seconds=4.0),
        train=TrainConfig(steps=900, batch_size=16, learning_rate=3e-3, warmup_steps=50,
                          eval_every=300, log_every=50, checkpoint_every=300),
        # The mse head without prenet dropout is deterministic: one sample per prompt.
        sample=SampleConfig(prompt_seconds=1.5, seconds=3.0, num_prompts=4, num_samples=1,
                            inversion="jax", griffin_lim_iters=32),
    )


if __name__ == "__main__":
    main(config)
