"""Train-step speed: frames/s and achieved FLOP/s of our jit-compiled shard_map step for the
tiny (demo), small and base sizes, against a PyTorch reference of the same architecture
(prenet, RoPE causal attention through `scaled_dot_product_attention`, RMSNorm pre-norm
blocks, GELU MLP, linear head; Adam; MSE) on the same batch shapes, and against this
machine's peak measured by a large matmul in the same run.

FLOPs per step = 6·N·B·T (dense weights, forward + backward) + 6·L·B·T²·d (causal
attention: QKᵀ and AV at half the square, ×3 for the backward), with N the parameter count,
B the batch, T the positions (frames / frames_per_step), L layers, d the width.

Targets (issue 4, this CPU): ≥ 1.2× PyTorch at d=512, 6 layers, batch 8 × 512 frames; ≥ 70%
of the measured matmul peak.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from audiolm_jax import config as C
from benchmarks.common import emit, train_step_seconds

SIZES = {  # name: (layers, d_model, heads, batch, frames, frames_per_step, timed steps)
    "tiny": (4, 128, 4, 16, 188, 1, 10),
    "small": (6, 512, 8, 8, 512, 2, 5),
    "base": (12, 768, 12, 4, 256, 2, 2),
}
N_MELS = 80


def peak_flops() -> float:
    """FLOP/s of a 2048² float32 matmul (best of 5)."""
    a = jnp.ones((2048, 2048), jnp.float32)
    f = jax.jit(lambda x, y: x @ y)
    jax.block_until_ready(f(a, a))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        jax.block_until_ready(f(a, a))
        best = min(best, time.perf_counter() - start)
    return 2 * 2048**3 / best


def step_flops(n_params: int, layers: int, d: int, batch: int, positions: int) -> float:
    return 6.0 * n_params * batch * positions + 6.0 * layers * batch * positions**2 * d


def config_for(layers, d, heads, batch, frames, r) -> C.ExperimentConfig:
    return C.validate(C.ExperimentConfig(
        audio=C.AudioConfig(n_mels=N_MELS),
        model=C.ModelConfig(num_layers=layers, d_model=d, num_heads=heads, prenet_dim=256,
                            frames_per_step=r, prenet_dropout=0.5, max_frames=max(frames, 256)),
        data=C.DataConfig(segment_seconds=frames * 256 / 16000, synthetic_clip_seconds=60.0),
        train=C.TrainConfig(batch_size=batch, steps=1000, learning_rate=1e-4)))


def time_jax(cfg, batch, frames, steps) -> tuple[float, int]:
    rng = np.random.default_rng(0)
    data = {"mel": rng.standard_normal((batch, frames, N_MELS)).astype(np.float32),
            "mask": np.ones((batch, frames), np.float32)}
    return train_step_seconds(cfg, data, steps)


def time_torch(layers, d, heads, batch, frames, r, steps) -> float:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.n1, self.n2 = torch.nn.RMSNorm(d), torch.nn.RMSNorm(d)
            self.qkv, self.out = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
            self.up, self.down = torch.nn.Linear(d, 4 * d), torch.nn.Linear(4 * d, d)

        def forward(self, x, cos, sin):
            b, t, _ = x.shape
            q, k, v = self.qkv(self.n1(x)).view(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
            x = x + self.out(a)
            return x + self.down(F.gelu(self.up(self.n2(x))))

    def rope(x, cos, sin):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pre1, self.pre2 = torch.nn.Linear(r * N_MELS, 256), torch.nn.Linear(256, 256)
            self.embed = torch.nn.Linear(256, d)
            self.blocks = torch.nn.ModuleList(Block() for _ in range(layers))
            self.norm, self.head = torch.nn.RMSNorm(d), torch.nn.Linear(d, r * N_MELS)

        def forward(self, g):
            x = F.dropout(F.relu(self.pre1(g)), 0.5, True)
            x = self.embed(F.dropout(F.relu(self.pre2(x)), 0.5, True))
            t, half = x.shape[1], d // heads // 2
            ang = torch.arange(t)[:, None] * 10000.0 ** (-torch.arange(half) / half)[None]
            cos, sin = ang.cos()[None, None], ang.sin()[None, None]
            for blk in self.blocks:
                x = blk(x, cos, sin)
            return self.head(self.norm(x)) + g[..., -N_MELS:].repeat(1, 1, r)

    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    mel = torch.randn(batch, frames // r, r * N_MELS)

    def one():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(mel[:, :-1]), mel[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    one()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    return (time.perf_counter() - start) / steps


def main() -> None:
    peak = peak_flops()
    for name, (layers, d, heads, batch, frames, r, steps) in SIZES.items():
        cfg = config_for(layers, d, heads, batch, frames, r)
        ours, n_params = time_jax(cfg, batch, frames, steps)
        reference = time_torch(layers, d, heads, batch, frames, r, steps)
        positions = frames // r - 1
        flops = step_flops(n_params, layers, d, batch, positions)
        target = 1.2 if name == "small" else 1.0
        emit("train_step", f"{name} ({n_params / 1e6:.1f}M, {layers}x{d}, {batch}x{frames} frames) vs PyTorch",
             batch * frames / ours, batch * frames / reference, "frames/s", target=target,
             higher_is_better=True, step_seconds=ours, torch_step_seconds=reference)
        emit("train_step", f"{name}: achieved / matmul peak FLOP/s", flops / ours, peak, "FLOP/s",
             target=0.7, higher_is_better=True, flops_per_step=flops)


if __name__ == "__main__":
    main()
