"""Speech from text: a small text-to-speech model on the embedded speech set (eight
formant-synthesised voices reading short sentences), offline, in minutes on a CPU.

    python -m experiments.tts_demo [--train.steps=3000] [--workdir=runs/tts_demo] [--help]
    python -m audiolm_jax.tts --workdir runs/tts_demo --text "the quiet river" --out out/tts
    python -m audiolm_jax.tts --workdir runs/tts_demo --text "the quiet river" \
        --voice prompt.wav --voice-text "what the prompt says" --out out/clone

Trains on whole utterances (data.crop=utterance) with a character encoder, guided
(diagonal) attention on two heads of the last two blocks, two frames per position and an
end-of-audio gate; synthesis attends monotonically (sample.monotonic) and stops at the gate.
"""

from audiolm_jax.cli import main
from audiolm_jax.config import (AudioConfig, ConditionConfig, DataConfig, ExperimentConfig, ModelConfig,
                                SampleConfig, TrainConfig)


def config() -> ExperimentConfig:
    return ExperimentConfig(
        name="tts_demo",
        workdir="runs/tts_demo",
        audio=AudioConfig(sample_rate=16000, n_fft=1024, win_length=1024, hop_length=256, n_mels=80),
        # Absolute frames, as Tacotron predicts them (predict_residual=False): adding each
        # prediction to the last frame carried its per-bin error on, and clones lost the
        # prompt's voice (23 clones identified 0.13 with residual frames, 0.43 without; the
        # recordings themselves 0.57; benchmarks/results/HISTORY.md).
        model=ModelConfig(num_layers=4, d_model=128, num_heads=4, prenet_dim=128, frames_per_step=2,
                          prenet_dropout=0.5, prenet_dropout_at_sampling=True, max_frames=256, head="mse",
                          gate=True, absolute_positions=True, predict_residual=False,
                          condition=ConditionConfig(text=True, max_text_chars=96, text_layers=2, dropout=0.0,
                                                    guided_layers=2, guided_heads=2)),
        # Whole utterances up to 4 s, each after one group of the mean frame (where synthesis starts).
        data=DataConfig(source="voices", segment_seconds=4.0, crop="utterance", synthetic_train_clips=800,
                        synthetic_eval_clips=40, go_frames=2),
        train=TrainConfig(steps=3000, batch_size=16, learning_rate=2e-3, warmup_steps=100,
                          guided_attention_weight=1.0, guided_attention_sigma=0.4, eval_every=500, log_every=50,
                          checkpoint_every=500),
        sample=SampleConfig(prompt_seconds=1.0, seconds=3.5, num_prompts=4, num_samples=1, temperature=0.0,
                            stop_at_gate=True, monotonic=3, inversion="jax", griffin_lim_iters=32),
    )


if __name__ == "__main__":
    main(config)
