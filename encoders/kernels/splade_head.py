"""Fused SPLADE head: vocabulary projection + max over tokens in one Triton kernel.

``out[d, v] = log1p(relu(bias[v] + max_{t < len[d]} states[d, t] . weight[v]))``. The
tokens x vocabulary logits live only in registers: the kernel reads the states and the
weight (from L2) and writes the (docs, vocabulary) result, nothing else. The bias is added
after the max (it does not depend on the token), and the ReLU floor after it.

Precision (tensor cores, fp32 accumulation): ``bf16x3`` splits each operand into a bf16
high and low part (``x_hi = bf16(x)``, ``x_lo = bf16(x - x_hi)``) and sums
``hi.hi + lo.hi + hi.lo``: three products, about float32 accuracy (6e-5 per weight on
splade-tiny). ``tf32``: one product at half the bf16 rate (~3e-3). ``bf16``: one product,
fastest (~0.02-0.06, over the 1e-2 bar on splade-tiny). ``fp16``: one product at the
bf16 rate with 10 mantissa bits (~3e-3 on splade-tiny); the operands are LayerNorm outputs
and embedding weights, far inside fp16's range.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - CPU-only installs
    triton = None
    tl = None


def split_bf16(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 -> (hi, lo) bf16 with ``hi + lo ~= x`` to ~16 mantissa bits."""
    hi = x.to(torch.bfloat16)
    lo = (x - hi.float()).to(torch.bfloat16)
    return hi, lo


PRECISIONS = ("bf16x3", "tf32", "bf16", "fp16")

# Tiles of the streaming kernel; pinned to the first by default (see the stationary kernel's
# ``CONFIGS`` for why), autotuned with ``config=None``.
CONFIGS = (
    {"BLOCK_T": 64, "BLOCK_V": 128, "BLOCK_K": 64, "num_warps": 4, "num_stages": 3},
    {"BLOCK_T": 64, "BLOCK_V": 128, "BLOCK_K": 128, "num_warps": 8, "num_stages": 2},
    {"BLOCK_T": 128, "BLOCK_V": 128, "BLOCK_K": 64, "num_warps": 8, "num_stages": 3},
    {"BLOCK_T": 32, "BLOCK_V": 256, "BLOCK_K": 64, "num_warps": 8, "num_stages": 3},
)

if triton is not None:
    from encoders.kernels.splade_head_stationary import (
        MAX_HIDDEN,
        launch_stationary,
        triton_configs,
    )

    @triton.jit
    def _splade_head_kernel(
        s_hi,
        s_lo,
        w_hi,
        w_lo,
        bias,
        starts,
        lengths,
        out,
        V,
        H,
        stride_s,
        stride_w,
        stride_o,
        PRECISION: tl.constexpr,
        BLOCK_T: tl.constexpr,
        BLOCK_V: tl.constexpr,
        BLOCK_K: tl.constexpr,
    ):
        """One program: one document x one slice of BLOCK_V vocabulary columns.

        s_*: (T, H) token states (row ``starts[d] + t``), w_*: (H, V) transposed decoder
        weight (bf16 hi/lo, or float32 with PRECISION 1 = tf32), bias: (V,) float32,
        starts/lengths: (D,) int32, out: (D, V) float32. PRECISION 0 = split bf16
        (three products), 1 = tf32, 2 = plain bf16, 3 = fp16 (operands as given).
        """
        doc = tl.program_id(0)
        vt = tl.program_id(1)
        start = tl.load(starts + doc)
        end = start + tl.load(lengths + doc)
        cols = vt * BLOCK_V + tl.arange(0, BLOCK_V)
        cmask = cols < V
        # Running element-wise max; reduced over tokens once, after the loop.
        best = tl.full((BLOCK_T, BLOCK_V), float("-inf"), tl.float32)
        for t0 in tl.range(start, end, BLOCK_T):
            rows = t0 + tl.arange(0, BLOCK_T)
            rmask = rows < end
            acc = tl.zeros((BLOCK_T, BLOCK_V), tl.float32)
            for k0 in range(0, H, BLOCK_K):
                ks = k0 + tl.arange(0, BLOCK_K)
                kmask = ks < H
                s_off = rows[:, None].to(tl.int64) * stride_s + ks[None, :]
                s_mask = rmask[:, None] & kmask[None, :]
                w_off = ks[:, None].to(tl.int64) * stride_w + cols[None, :]
                w_mask = kmask[:, None] & cmask[None, :]
                a_hi = tl.load(s_hi + s_off, mask=s_mask, other=0.0)
                b_hi = tl.load(w_hi + w_off, mask=w_mask, other=0.0)
                if PRECISION == 1:
                    acc = tl.dot(a_hi, b_hi, acc, input_precision="tf32")
                else:
                    acc = tl.dot(a_hi, b_hi, acc)
                if PRECISION == 0:
                    a_lo = tl.load(s_lo + s_off, mask=s_mask, other=0.0)
                    b_lo = tl.load(w_lo + w_off, mask=w_mask, other=0.0)
                    acc = tl.dot(a_lo, b_hi, acc)
                    acc = tl.dot(a_hi, b_lo, acc)
            best = tl.maximum(best, tl.where(rmask[:, None], acc, float("-inf")))
        peak = tl.max(best, axis=0)
        b = tl.load(bias + cols, mask=cmask, other=0.0)
        val = tl.maximum(peak + b, 0.0)
        val = tl.log(1.0 + val)
        tl.store(out + doc.to(tl.int64) * stride_o + cols, val, mask=cmask)

    _splade_head_tuned = triton.autotune(
        configs=triton_configs(CONFIGS), key=["V", "H", "PRECISION"]
    )(_splade_head_kernel)


def triton_available(device: torch.device) -> bool:
    """True when the fused kernel can run on ``device``."""
    return triton is not None and device.type == "cuda"


def prepare_weight(weight: torch.Tensor, precision: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(V, H) float32 decoder weight -> the (H, V) operands the kernel reads for ``precision``."""
    if precision not in PRECISIONS:
        raise ValueError(f"head precision {precision!r} is not one of {PRECISIONS}")
    w_t = weight.float().T.contiguous()
    if precision == "tf32":
        return w_t, w_t
    if precision == "fp16":
        half = w_t.to(torch.float16)
        return half, half
    return split_bf16(w_t)


def fused_splade_head(
    states: torch.Tensor,
    starts: torch.Tensor,
    lengths: torch.Tensor,
    weight_t: tuple[torch.Tensor, torch.Tensor],
    bias: torch.Tensor,
    precision: str = "bf16x3",
    weight_stationary: bool | None = None,
    config: int | None = 0,
) -> torch.Tensor:
    """SPLADE weights from token states, fused.

    ``weight_stationary`` (default: when H <= 128) picks the kernel of
    :mod:`encoders.kernels.splade_head_stationary`; ``config``: the index of the kernel's
    tile in its ``CONFIGS`` (pinned: the same tile, so the same sums, in every process), or
    None to let Triton's autotuner pick by timing.

    states: (T, H) float32; starts/lengths: (D,) int32 rows of each document in ``states``;
    weight_t: :func:`prepare_weight` output for the same ``precision``; bias: (V,) float32.
    Returns (D, V) float32.
    """
    if precision == "tf32":
        s_hi = s_lo = states.float().contiguous()
    elif precision == "fp16":
        s_hi = s_lo = states.to(torch.float16).contiguous()
    else:
        s_hi, s_lo = split_bf16(states.float())
    w_hi, w_lo = weight_t
    hidden, vocab = w_hi.shape
    n_docs = starts.shape[0]
    out = torch.empty(n_docs, vocab, dtype=torch.float32, device=states.device)
    if weight_stationary is None:
        weight_stationary = hidden <= MAX_HIDDEN
    if weight_stationary:
        if s_hi.stride(0) != hidden or hidden > MAX_HIDDEN:
            raise ValueError(f"weight-stationary head needs contiguous states, H <= {MAX_HIDDEN}")
        launch_stationary(
            s_hi, s_lo, w_hi, w_lo, bias, starts, lengths, out, PRECISIONS.index(precision), config
        )
        return out

    def grid(meta: dict) -> tuple[int, int]:
        return (n_docs, triton.cdiv(vocab, meta["BLOCK_V"]))

    args = (s_hi, s_lo, w_hi, w_lo, bias, starts, lengths, out, vocab, hidden)
    args += (s_hi.stride(0), w_hi.stride(0), out.stride(0))
    if config is None:
        _splade_head_tuned[grid](*args, PRECISION=PRECISIONS.index(precision))
    else:
        tile = CONFIGS[config]
        _splade_head_kernel[grid(tile)](*args, PRECISION=PRECISIONS.index(precision), **tile)
    return out


def reference_splade_head(
    states: torch.Tensor,
    starts: torch.Tensor,
    lengths: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
) -> torch.Tensor:
    """Plain-torch twin of :func:`fused_splade_head` in float32 (for tests)."""
    rows = []
    for s, n in zip(starts.tolist(), lengths.tolist(), strict=True):
        logits = states[s : s + n].float() @ weight.float().T + bias.float()
        rows.append(torch.log1p(torch.relu(logits.amax(dim=0))))
    return torch.stack(rows)
