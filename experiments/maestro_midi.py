"""Piano from MIDI on MAESTRO v3, sized for one GPU (about 85 M parameters).

    python -m experiments.maestro_midi --data.dir=/data/maestro-v3.0.0 [--workdir=runs/maestro_midi]
    python -m experiments.maestro_midi --data.download=true       # tfds fetches maestro-v3.0.0.zip (~100 GB)
    python -m audiolm_jax.render_midi --workdir runs/maestro_midi --midi piece.midi --seconds 20 --out out/piece

`maestro_base` (its audio, model, data and training choices) with frame-synchronous MIDI:
MAESTRO's MIDI is aligned to its audio to within milliseconds, so each position adds the
piano roll (onsets, sounding keys with the sustain pedal applied, velocities) of the frames it
predicts, and 10% of crops train with it replaced by a learned null for guidance.
"""

import dataclasses

from audiolm_jax.cli import main
from audiolm_jax.config import ConditionConfig, ExperimentConfig
from experiments import maestro_base


def config() -> ExperimentConfig:
    base = maestro_base.config()
    return dataclasses.replace(
        base, name="maestro_midi", workdir="runs/maestro_midi",
        model=dataclasses.replace(base.model, condition=ConditionConfig(midi="frames", dropout=0.1)),
        sample=dataclasses.replace(base.sample, guidance=1.0))


if __name__ == "__main__":
    main(config)
