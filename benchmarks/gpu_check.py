"""The GPU check (issue 15): on one accelerator, in a few minutes,

- the base-size train step in bfloat16 (12×768, batch 32 × 10 s crops, `experiments.maestro_base`'s
  shapes with the `mse` head the reference also has): step time against the PyTorch
  reference (`benchmarks.torch_reference`, autocast bfloat16) timed interleaved, and the
  model FLOP utilisation (MFU) against the card's dense bfloat16 peak (target ≥ 40%);
- decoding 10 s at batch 1 and 16 (KV cache, the same chunking inside the trained window):
  frames/s and real-time factor, against the same reference's KV-cached loop.

Nothing on this path imports TensorFlow, tfds, librosa or soundfile (the GPU image has none
of them). JSON lines go to stdout and, when `$OUT` is set, to `$OUT/gpu_check.jsonl`.

    python -m benchmarks.gpu_check            # the check (on a GPU)
    python -m benchmarks.gpu_check --experiment=librispeech_base   # that experiment's step and blocks
    python -m benchmarks.gpu_check --tiny     # the same code at toy sizes (the CPU test)
    python -m benchmarks.gpu_check --tiny --no-reference   # ours only (no torch installed)
    python -m benchmarks.gpu_check --variants [--quick | --only=NAME,NAME] [--no-forward]
        [--profile [--profile-only=NAME,NAME]] [--flag-variants [--flags=WORD] [--flag-only=NAME,NAME]]
        [--then-check [--train-only]]
        # our train step under variants (traced op by op; under XLA flag sets), to find its
        # bound; then the check (its train step alone)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import sys
import time

# JAX and PyTorch share the card: JAX must not reserve 75% of its memory up front.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from audiolm_jax import decode  # noqa: E402
from audiolm_jax import model as model_lib  # noqa: E402
from audiolm_jax.config import segment_frames  # noqa: E402
from audiolm_jax.model import init_params  # noqa: E402
from benchmarks.common import emit, emit_timed, interleaved_seconds, jax_train_step, repeated  # noqa: E402
from benchmarks.train_step import config_for, peak_flops, random_batch, step_flops, torch_step  # noqa: E402

# Dense bfloat16 peak FLOP/s by `device_kind` prefix (vendor data sheets, without sparsity).
PEAK_BF16 = {"NVIDIA H200": 989.4e12, "NVIDIA H100 80GB HBM3": 989.4e12, "NVIDIA H100 PCIe": 756.5e12,
             "NVIDIA H100": 989.4e12, "NVIDIA A100": 312e12, "NVIDIA L4": 121e12}

SIZES = {  # layers, d_model, heads, train batch, crop frames, frames_per_step, steps per timed sample, seconds
    "base": (12, 768, 12, 32, 864, 2, 10, 10.0),
    "tiny": (2, 64, 4, 2, 32, 2, 2, 0.5),
}


def card_peak(device) -> tuple[float, str]:
    """The device's dense bfloat16 peak FLOP/s and where the number comes from: the data sheet
    for known cards, else an 8192³ bfloat16 matmul measured here."""
    for prefix, peak in PEAK_BF16.items():
        if device.device_kind.startswith(prefix):
            return peak, "data sheet"
    return peak_flops(8192 if device.platform == "gpu" else 512, jnp.bfloat16), "measured matmul"


def option(name: str, default: str | None = None) -> str | None:
    """The value of `--NAME=VALUE` on the command line, else `default`."""
    return next((a.split("=", 1)[1] for a in sys.argv if a.startswith(f"--{name}=")), default)


def checked_experiment():
    """The base experiment whose step the check times: `--experiment=NAME` (default
    `maestro_base`), its config."""
    import importlib

    name = option("experiment", "maestro_base")
    return importlib.import_module(f"experiments.{name}").config()


def shapes(size: str) -> tuple:
    """`SIZES[size]`; "base" with `--experiment=NAME` the layers, width, heads, batch and crop
    frames of that experiment (the mel bins stay the benchmarks' 128)."""
    if size != "base" or option("experiment") is None:
        return SIZES[size]
    config = checked_experiment()
    m, r = config.model, config.model.frames_per_step
    frames = segment_frames(config.data.segment_seconds, config.audio, r)
    return m.num_layers, m.d_model, m.num_heads, config.train.batch_size, frames, r, SIZES[size][6], SIZES[size][7]


def base_block_settings() -> dict:
    """The block settings the checked experiment trains with (`checked_experiment`: biases in
    the blocks or not, the residual stream's dtype), so that the check times its step."""
    model = checked_experiment().model
    return {"block_biases": model.block_biases, "residual_dtype": model.residual_dtype}


def record(line: dict, sink) -> None:
    if sink is not None:
        sink.write(json.dumps(line) + "\n")
        sink.flush()


def check_train_step(size: str, device: str | None, peak: float, sink) -> None:
    """Times our step (and, with a torch `device`, the reference's) interleaved."""
    layers, d, heads, batch, frames, r, per_sample, _ = shapes(size)
    cfg = config_for(layers, d, heads, batch, frames, r, dtype="bfloat16", **base_block_settings())
    data = random_batch(batch, frames)
    ours, n_params = jax_train_step(cfg, data)
    sides = {"ours": repeated(ours, per_sample)}
    if device is not None:
        reference, torch_params = torch_step(layers, d, heads, r, data["mel"], "bfloat16", device,
                                             block_biases=cfg.model.block_biases)
        sides["torch"] = repeated(reference, per_sample)
    times = {name: [t / per_sample for t in ts] for name, ts in interleaved_seconds(sides, repeats=5, warmup=2).items()}
    ours_s = times["ours"]
    flops = step_flops(n_params, layers, d, batch, frames // r - 1)
    if device is not None:
        record(emit_timed("gpu_train_step", f"{size} bf16 ({n_params / 1e6:.1f}M, {batch}x{frames} frames) vs "
                          "PyTorch, s/step", ours_s, times["torch"], target=1.0, torch_params=torch_params), sink)
    mfu = [flops / t / peak for t in ours_s]
    torch_mfu = [flops / t / peak for t in times.get("torch", [float("nan")])]
    record(emit("gpu_train_step", f"{size} bf16: MFU (model FLOP/s / card peak)", float(np.median(mfu)), 1.0,
                "fraction", target=0.4, higher_is_better=True, ratio_low=min(mfu),
                mfu_spread=[min(mfu), max(mfu)], torch_mfu_median=float(np.median(torch_mfu)),
                flops_per_step=flops, peak_flops=peak), sink)


def check_decode(size: str, batch: int, device: str | None, sink) -> None:
    """Times our decoding (and, with a torch `device`, the reference's) interleaved."""
    layers, d, heads, _, frames, r, _, seconds = shapes(size)
    cfg = config_for(layers, d, heads, batch, frames, r, dtype="bfloat16", **base_block_settings())
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, prenet_dropout=0.0))
    window = decode.trained_window(cfg)
    params = init_params(cfg.model, cfg.audio.n_mels, jax.random.key(0))
    prompt = np.random.default_rng(0).standard_normal((batch, 8 * r, cfg.audio.n_mels)).astype(np.float32)
    new_frames = int(round(seconds * cfg.audio.frames_per_second))
    new_frames -= new_frames % r
    ours = lambda: decode.generate(cfg.model, params, prompt, new_frames, jax.random.key(0), window=window,
                                   temperature=0.0).frames
    sides = {"ours": ours}
    if device is not None:
        import torch

        from benchmarks import torch_reference as ref

        torch.manual_seed(0)
        model = ref.Model(layers, d, heads, r, cfg.audio.n_mels, prenet_dropout=0.0,
                          block_biases=cfg.model.block_biases).to(device)
        groups = torch.from_numpy(prompt).to(device).reshape(batch, 8, r * cfg.audio.n_mels)
        sides["torch"] = lambda: ref.generate(model, groups, new_frames // r, window, "bfloat16")
    times = interleaved_seconds(sides, repeats=5, warmup=1)
    rtf = [seconds * batch / t for t in times["ours"]]
    if device is None:
        record(emit("gpu_decode", f"{size} bf16 batch {batch}: {seconds:g} s decoded, frames/s",
                    batch * new_frames / float(np.median(times["ours"])), 1.0, "frames/s", target=0.0,
                    higher_is_better=True, real_time_factor=float(np.median(rtf)), window_positions=window), sink)
        return
    record(emit_timed("gpu_decode", f"{size} bf16 batch {batch}: {seconds:g} s decoded vs PyTorch KV cache, s",
                      times["ours"], times["torch"], target=1.0, window_positions=window,
                      frames_per_second=batch * new_frames / float(np.median(times["ours"])),
                      real_time_factor=float(np.median(rtf)),
                      torch_real_time_factor=float(np.median([seconds * batch / t for t in times["torch"]]))), sink)


def time_variants(size: str, peak: float, sink, profile_dir: str | None = None) -> None:
    """Our train step's MFU with one model setting changed at a time (and the forward pass
    alone): what bounds it. With `profile_dir`, the configured step and the XLA-attention
    one are also traced op by op (`benchmarks.gpu_profile`)."""
    from benchmarks import gpu_profile

    layers, d, heads, batch, frames, r, per_sample, _ = shapes(size)
    variants = {"as configured": {}, "block biases + float32 residual (ModelConfig's defaults)": {
                    "block_biases": True, "residual_dtype": "float32"},
                "xla attention": {"attention": "xla"}, "batch x2": {"batch": 2 * batch},
                "bf16 residual": {"residual_dtype": "bfloat16"},
                "separate q/k/v matmuls": {"projections": "separate"},
                "autodiff GELU (stores its tanh)": {"gelu": "flax"},
                "bf16 residual + batch x2": {"residual_dtype": "bfloat16", "batch": 2 * batch},
                "no block biases": {"block_biases": False},
                "no block biases + bf16 residual": {"block_biases": False, "residual_dtype": "bfloat16"},
                "no block biases + bf16 residual + batch x2": {"block_biases": False, "residual_dtype": "bfloat16",
                                                               "batch": 2 * batch},
                "no block biases + bf16 residual + q/k/v gradients apart": {
                    "block_biases": False, "residual_dtype": "bfloat16", "projections": "gradients apart"},
                "no block biases + bf16 residual + q/k/v gradients apart + batch x2": {
                    "block_biases": False, "residual_dtype": "bfloat16", "projections": "gradients apart",
                    "batch": 2 * batch}}
    if "--quick" in sys.argv:
        variants = {"as configured": {}}
    only = option("only")
    if only is not None:  # --only=NAME,NAME: these variants alone
        variants = {name: change for name, change in variants.items() if name in only.split(",")}
    # --profile-only=NAME,NAME: the variants traced op by op (at most two: each writes 3 files)
    profiled = option("profile-only", "as configured,no block biases + bf16 residual").split(",")
    for name, change in variants.items():
        b = change.get("batch", batch)
        cfg = config_for(layers, d, heads, b, frames, r, dtype="bfloat16", **base_block_settings())
        model_changes = {k: v for k, v in change.items() if k not in ("batch", "projections", "gelu")}
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model_changes))
        try:
            earlier_gelu = nn.gelu if change.get("gelu") == "flax" else None  # autodiff stores its tanh
            earlier_qkv = {"separate": separate_heads_projections,
                           "gradients apart": projection_with_gradients_apart}.get(change.get("projections"))
            with model_function("fused_heads_projection", earlier_qkv), model_function("gelu", earlier_gelu):
                ours, n_params = jax_train_step(cfg, random_batch(b, frames))
                ours()  # compiled under the implementations asked for
                seconds = [t / per_sample for t in
                           interleaved_seconds({"ours": repeated(ours, per_sample)}, repeats=5)["ours"]]
                mfu = step_flops(n_params, layers, d, b, frames // r - 1) / float(np.median(seconds)) / peak
                record(emit("gpu_variants", f"{size}: {name}", mfu, 1.0, "fraction", target=0.4,
                            higher_is_better=True, step_seconds=float(np.median(seconds)),
                            step_spread=[min(seconds), max(seconds)],
                            attention=model_lib.attention_kernel(cfg.model.attention, cfg.model.dtype)), sink)
                if profile_dir is not None and name in profiled:
                    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{size}_{name.replace('+', 'and')}")
                    gpu_profile.profile_calls(ours, 3, profile_dir, tag)
                    gpu_profile.write_hlo(ours.compiled_text(), profile_dir, tag)  # traced under the same swaps
        except Exception as e:  # a kernel this card or shape does not support: say so, go on
            record({"benchmark": "gpu_variants", "case": f"{size}: {name}", "error": f"{type(e).__name__}: {e}"[:500]},
                   sink)
            print(f"gpu_check: variant {name!r} failed: {type(e).__name__}: {str(e)[:300]}", file=sys.stderr)
    if "--no-forward" not in sys.argv:
        record(emit("gpu_variants", f"{size}: forward pass alone, s", forward_seconds(size), 1.0, "s", target=0.0,
                    higher_is_better=False), sink)


@contextlib.contextmanager
def model_function(name: str, replacement=None):
    """Within: `model.<name>` replaced by `replacement` (None: the model's own), so a variant
    traces the step with an earlier implementation for comparison."""
    if replacement is None:
        yield
        return
    own = getattr(model_lib, name)
    setattr(model_lib, name, replacement)
    try:
        yield
    finally:
        setattr(model_lib, name, own)


_model_projection = model_lib.fused_heads_projection  # the model's, kept: a variant swaps it out


@jax.custom_vjp
def _projection_gradients_apart(x, kernels, biases):
    return _model_projection(x, list(zip(kernels, biases)), x.dtype)


def _projection_gradients_apart_forward(x, kernels, biases):
    return _projection_gradients_apart(x, kernels, biases), (x, kernels, biases)


def _projection_gradients_apart_backward(saved, grads):
    """Each projection's kernel gradient `x^T · d_out` by a matmul of its own, an
    optimisation barrier keeping XLA's dot merger from joining them back into one matmul
    over the concatenated output gradients `[B·T, n·H·Dh]` (a copy as wide as all of them);
    the input gradient as the sum of the projections'. On an H200 the concatenation went but
    six narrower matmuls cost more: 20.9 ms a step against 20.5 (README, GPU)."""
    x, kernels, biases = saved
    dx, dkernels, dbiases = None, [], []
    for grad, kernel, bias in zip(grads, kernels, biases):
        seen_x, grad = jax.lax.optimization_barrier((x, grad.astype(x.dtype)))
        dkernels.append(jnp.einsum("btd,bthk->dhk", seen_x, grad).astype(kernel.dtype))
        dbiases.append(None if bias is None else jnp.sum(grad.astype(jnp.float32), axis=(0, 1)).astype(bias.dtype))
        part = jnp.einsum("bthk,dhk->btd", grad, kernel)
        dx = part if dx is None else dx + part
    return dx, dkernels, dbiases


_projection_gradients_apart.defvjp(_projection_gradients_apart_forward, _projection_gradients_apart_backward)


def projection_with_gradients_apart(x, weights, dtype):
    """`model.fused_heads_projection`'s result (one matmul forward) whose backward pass
    computes each projection's kernel gradient apart, never concatenating q/k/v's gradients."""
    kernels = [varying_like(k.astype(dtype), x) for k, _ in weights]
    biases = [None if b is None else varying_like(b.astype(dtype), x) for _, b in weights]
    return _projection_gradients_apart(x.astype(dtype), kernels, biases)


def varying_like(a, x):
    """`a` made to vary over the mesh axes `x` varies over (inside `shard_map`), as JAX does
    implicitly when both meet in one operation; a custom VJP must be given them so typed."""
    missing = tuple(varying_axes(x) - varying_axes(a))
    if not missing:
        return a
    if hasattr(jax.lax, "pcast"):
        return jax.lax.pcast(a, missing, to="varying")
    return jax.lax.pvary(a, missing)  # older JAX


def varying_axes(a) -> frozenset:
    """The mesh axes `a` varies over inside `shard_map` (JAX's type spells them two ways)."""
    aval = jax.typeof(a)
    manual = getattr(aval, "manual_axis_type", None)
    return frozenset(manual.varying if manual is not None else getattr(aval, "vma", ()))


def separate_heads_projections(x, weights, dtype):
    """`model.fused_heads_projection`'s result, one matmul per projection."""
    return [jnp.einsum("btd,dhk->bthk", x.astype(dtype), k.astype(dtype)) + (0 if b is None else b.astype(dtype))
            for k, b in weights]


# XLA flag sets whose effect on the step is measured (each in a process of its own: flags
# are read once, when the backend starts).
FLAG_VARIANTS = {"cuBLASLt (GELU/bias epilogues fused into the matmuls)": "--xla_gpu_enable_cublaslt=true",
                 "Triton for every matmul (elementwise producers fused into it)": "--xla_gpu_triton_gemm_any=true",
                 "cuDNN GEMM fusions (elementwise ops fused into matmuls by cuDNN)":
                     "--xla_gpu_cudnn_gemm_fusion_level=3",
                 "cuDNN GEMM fusions + cuBLASLt": "--xla_gpu_cudnn_gemm_fusion_level=3 --xla_gpu_enable_cublaslt=true"}


def time_flag_variants(size: str, sink) -> None:
    """Each `--flag-only=NAME,NAME` variant's MFU (default: as configured) under each of
    `FLAG_VARIANTS` whose name holds `--flags=WORD`, each flag set in a subprocess."""
    import subprocess

    word = option("flags", "")
    names = option("flag-only", "as configured").split(",")
    for name, flags in FLAG_VARIANTS.items():
        if word.lower() not in name.lower():
            continue
        env = {k: v for k, v in os.environ.items() if k != "OUT"}
        env["XLA_FLAGS"] = flags
        args = [sys.executable, "-m", "benchmarks.gpu_check", "--variants", f"--only={','.join(names)}",
                "--no-reference", "--no-forward"]
        args += ["--tiny"] if size == "tiny" else []
        args += [] if option("experiment") is None else [f"--experiment={option('experiment')}"]
        try:
            proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
        except subprocess.TimeoutExpired:
            record({"benchmark": "gpu_variants", "case": f"{size}: {name}", "xla_flags": flags,
                    "error": "timed out after 300 s"}, sink)
            continue
        rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        timed = {r["case"]: r for r in rows if r.get("benchmark") == "gpu_variants" and "error" not in r}
        for variant in names:
            found = timed.get(f"{size}: {variant}")
            if found is None:
                record({"benchmark": "gpu_variants", "case": f"{size}: {variant} + {name}", "xla_flags": flags,
                        "error": proc.stderr[-500:]}, sink)
                continue
            row = {**found, "case": f"{size}: {variant} + {name}", "xla_flags": flags}
            record(row, sink)
            print(json.dumps(row), flush=True)


def forward_seconds(size: str) -> float:
    """Median seconds of the jit-compiled forward pass (no gradient) over the train batch."""
    from audiolm_jax.model import MelTransformer

    layers, d, heads, batch, frames, r, per_sample, _ = shapes(size)
    cfg = config_for(layers, d, heads, batch, frames, r, dtype="bfloat16", **base_block_settings())
    params = init_params(cfg.model, cfg.audio.n_mels, jax.random.key(0))
    groups = jnp.asarray(random_batch(batch, frames)["mel"]).reshape(batch, frames // r, r * cfg.audio.n_mels)
    forward = jax.jit(lambda p, g: MelTransformer(cfg.model, cfg.audio.n_mels).apply({"params": p}, g)[0]["mean"])
    times = interleaved_seconds({"forward": repeated(lambda: forward(params, groups), per_sample)}, repeats=3)
    return float(np.median(times["forward"])) / per_sample


def main(argv: list[str]) -> None:
    size = "tiny" if "--tiny" in argv else "base"
    device, torch_version, torch_device = None, "not used", "none"
    if "--no-reference" not in argv:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_version = torch.__version__
        torch_device = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    accelerator = jax.devices()[0]
    peak, peak_source = card_peak(accelerator)
    out = os.environ.get("OUT")
    sink = open(os.path.join(out, "gpu_check.jsonl"), "w") if out else None
    record(emit("gpu_check", f"device: {accelerator.device_kind} (jax {jax.__version__}, torch {torch_version})",
                peak, peak, "FLOP/s", target=0.0, higher_is_better=True, peak_source=peak_source,
                torch_device=torch_device, experiment=checked_experiment().name, blocks=base_block_settings()), sink)
    started = time.perf_counter()
    if "--variants" in argv:
        time_variants(size, peak, sink, (out or "") if "--profile" in argv else None)
        if "--flag-variants" in argv:
            time_flag_variants(size, sink)
        if "--then-check" not in argv:
            return
    check_train_step(size, device, peak, sink)
    for batch in () if "--train-only" in argv else (1, 16):
        check_decode(size, batch, device, sink)
    print(f"gpu_check: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if sink is not None:
        sink.close()


if __name__ == "__main__":
    main(sys.argv[1:])
