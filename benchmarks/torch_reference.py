"""The PyTorch reference the speed benchmarks compare against: the same architecture as
`audiolm_jax.model.MelTransformer` with the `mse` head (prenet with dropout, RoPE causal
attention through `scaled_dot_product_attention`, RMSNorm pre-norm blocks, GELU MLP,
linear head predicting the residual over the last input frame), written as a PyTorch
codebase would: eager, `torch.autocast` for bfloat16, Adam, a KV cache for decoding.

Imported only by benchmarks (torch is in the `bench` extra).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


class Block(torch.nn.Module):
    """Pre-RMSNorm block: fused-QKV causal self-attention with RoPE, then a GELU MLP."""

    def __init__(self, d: int, heads: int, bias: bool = True):
        super().__init__()
        self.d, self.heads = d, heads
        self.n1, self.n2 = torch.nn.RMSNorm(d), torch.nn.RMSNorm(d)
        self.qkv, self.out = torch.nn.Linear(d, 3 * d, bias=bias), torch.nn.Linear(d, d, bias=bias)
        self.up, self.down = torch.nn.Linear(d, 4 * d, bias=bias), torch.nn.Linear(4 * d, d, bias=bias)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: Optional[dict] = None, start: int = 0) -> torch.Tensor:
        """`x` `[B, T, d]`; with `cache` ({"k", "v"} `[B, H, S, Dh]`), writes positions
        start..start+T-1 and attends over 0..start+T-1."""
        b, t, _ = x.shape
        q, k, v = self.qkv(self.n1(x)).view(b, t, 3, self.heads, self.d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        if cache is None:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            cache["k"][:, :, start:start + t] = k
            cache["v"][:, :, start:start + t] = v
            keys, values = cache["k"][:, :, :start + t], cache["v"][:, :, :start + t]
            mask = None
            if t > 1:  # prefill: causal inside the new positions
                mask = torch.ones(t, start + t, dtype=torch.bool, device=x.device).tril(start)
            a = F.scaled_dot_product_attention(q, keys.to(q.dtype), values.to(q.dtype), attn_mask=mask)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, self.d))
        return x + self.down(F.gelu(self.up(self.n2(x))))


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of `[B, H, T, Dh]` with `cos`, `sin` `[1, 1, T, Dh/2]`."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Model(torch.nn.Module):
    """Groups `[B, T, r*M]` → predicted next groups `[B, T, r*M]`."""

    def __init__(self, layers: int, d: int, heads: int, frames_per_step: int, n_mels: int,
                 prenet_dim: int = 256, prenet_dropout: float = 0.5, block_biases: bool = True):
        super().__init__()
        self.d, self.heads, self.r, self.n_mels, self.p = d, heads, frames_per_step, n_mels, prenet_dropout
        self.pre1 = torch.nn.Linear(frames_per_step * n_mels, prenet_dim)
        self.pre2 = torch.nn.Linear(prenet_dim, prenet_dim)
        self.embed = torch.nn.Linear(prenet_dim, d)
        self.blocks = torch.nn.ModuleList(Block(d, heads, block_biases) for _ in range(layers))
        self.norm, self.head = torch.nn.RMSNorm(d), torch.nn.Linear(d, frames_per_step * n_mels)

    def forward(self, g: torch.Tensor, caches: Optional[list] = None, start: int = 0) -> torch.Tensor:
        dropout = self.training and self.p > 0
        x = F.dropout(F.relu(self.pre1(g)), self.p, dropout)
        x = self.embed(F.dropout(F.relu(self.pre2(x)), self.p, dropout))
        t, half = x.shape[1], self.d // self.heads // 2
        positions = torch.arange(start, start + t, device=g.device)[:, None]
        ang = positions * 10000.0 ** (-torch.arange(half, device=g.device) / half)[None]
        cos, sin = ang.cos()[None, None], ang.sin()[None, None]
        for i, blk in enumerate(self.blocks):
            x = blk(x, cos, sin, None if caches is None else caches[i], start)
        return self.head(self.norm(x)) + g[..., -self.n_mels:].repeat(1, 1, self.r)

    def new_caches(self, batch: int, steps: int, dtype: torch.dtype) -> list:
        """Zeroed KV caches for `steps` positions, one {"k", "v"} `[B, H, steps, Dh]` per layer."""
        shape = (batch, self.heads, steps, self.d // self.heads)
        device = self.head.weight.device
        return [{"k": torch.zeros(shape, dtype=dtype, device=device),
                 "v": torch.zeros(shape, dtype=dtype, device=device)} for _ in self.blocks]


def autocast(device: torch.device, dtype: str):
    """`torch.autocast` for bfloat16, a no-op context for float32."""
    enabled = dtype == "bfloat16"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def make_train_step(model: Model, mel: torch.Tensor, dtype: str):
    """A function running one Adam step (MSE on next-group prediction, clipped gradients)
    on `mel` `[B, frames, n_mels]`, synchronising the device before it returns."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    b, frames, m = mel.shape
    groups = mel[:, : frames - frames % model.r].reshape(b, -1, model.r * m)
    model.train()

    def one() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast(mel.device, dtype):
            loss = F.mse_loss(model(groups[:, :-1]).float(), groups[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        synchronize(mel.device)

    return one


@torch.no_grad()
def generate(model: Model, prompt_groups: torch.Tensor, new_groups: int, window: int, dtype: str
             ) -> torch.Tensor:
    """Continues `prompt_groups` `[B, P, r*M]` by `new_groups` groups with a KV cache of
    `window` positions, chunked as `audiolm_jax.decode.chunk_plan` chunks (re-prefilling
    the recent half window when the cache is full); returns `[B, P + new, r*M]`."""
    from audiolm_jax.decode import chunk_plan

    model.eval()
    groups = prompt_groups
    cache_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    with autocast(groups.device, dtype):
        for context, new in chunk_plan(groups.shape[1], new_groups, window):
            caches = model.new_caches(groups.shape[0], window, cache_dtype)
            current = model(groups[:, -context:], caches, 0)[:, -1:].float()
            pieces = [current]
            for i in range(new - 1):
                current = model(current, caches, context + i).float()
                pieces.append(current)
            groups = torch.cat([groups, *pieces], dim=1)
    synchronize(groups.device)
    return groups


def synchronize(device: torch.device) -> None:
    """Waits for queued work on `device` (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def parameter_count(model: Model) -> int:
    return sum(p.numel() for p in model.parameters())
