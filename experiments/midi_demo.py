"""Piano from MIDI: a small MIDI-conditioned model on the embedded piano set, offline, in
about 11 minutes on a 2-core CPU.

    python -m experiments.midi_demo [--train.steps=4800] [--workdir=runs/midi_demo] [--help]
    python -m audiolm_jax.render_midi --workdir runs/midi_demo --midi piece.mid --seconds 8 --out out/piece
    python -m audiolm_jax.evaluate --workdir runs/midi_demo      # onset F1 by transcription (eval extra)

The embedded set's clips carry the notes they play (their exact MIDI). Each position of the
model adds the piano roll of the frames it predicts (`model.condition.midi="frames"`); 10%
of examples train with the roll replaced by a learned null (classifier-free guidance).
"""

from audiolm_jax.cli import main
from audiolm_jax.config import (AudioConfig, ConditionConfig, DataConfig, ExperimentConfig, ModelConfig,
                                SampleConfig, TrainConfig)


def config() -> ExperimentConfig:
    return ExperimentConfig(
        name="midi_demo",
        workdir="runs/midi_demo",
        audio=AudioConfig(sample_rate=16000, n_fft=1024, win_length=1024, hop_length=256, n_mels=64),
        # Two frames per position (32 ms): the notes say when something changes, the model
        # need not find it frame by frame; half the positions of frames_per_step=1.
        model=ModelConfig(num_layers=4, d_model=128, num_heads=4, prenet_dim=128, frames_per_step=2,
                          prenet_dropout=0.0, prenet_dropout_at_sampling=False, max_frames=256,
                          head="mixture", mixture_components=8,
                          condition=ConditionConfig(midi="frames", dropout=0.1)),
        # Each crop after one group of the mean frame, where rendering from no audio starts.
        data=DataConfig(source="synthetic", segment_seconds=3.0, synthetic_train_clips=1024,
                        synthetic_eval_clips=16, synthetic_clip_seconds=4.0, go_frames=2),
        # 4800 steps (~11 min on 2 CPU cores): onset F1 of held-out clips rendered from their
        # MIDI 0.78x the Griffin-Lim ceiling (2400 steps: 0.54x; benchmarks/results/HISTORY.md).
        train=TrainConfig(steps=4800, batch_size=16, learning_rate=3e-3, warmup_steps=50, input_noise=0.2,
                          mean_mse_weight=10.0, eval_every=1200, log_every=50, checkpoint_every=1200),
        # Held-out prompts in the run's report: 1 s of the recording, then 2.5 s played from its MIDI.
        sample=SampleConfig(prompt_seconds=1.0, seconds=2.5, num_prompts=4, num_samples=2, temperature=0.3,
                            guidance=1.0, inversion="jax", griffin_lim_iters=32),
    )


if __name__ == "__main__":
    main(config)
