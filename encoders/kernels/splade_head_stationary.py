"""Weight-stationary variant of the fused SPLADE head, for hidden sizes up to 128.

One program owns one slice of BLOCK_V vocabulary columns and a group of DOCS documents:
it loads its (H x BLOCK_V) slice of the decoder weight once, then streams the documents'
token states past it. The streaming kernel in :mod:`encoders.kernels.splade_head` reloads
the weight slice for every token tile of every document; for a small hidden size
(splade-tiny: 128) those reloads, not the arithmetic, bound it.
"""

from __future__ import annotations

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - CPU-only installs
    triton = None
    tl = None

MAX_HIDDEN = 128
# Tiles to pick from. The encoder pins the first by default: an autotuner picks by timing, so
# two processes could pick different tiles (and perhaps sum in another order); a pinned tile
# keeps the result a function of the input. ``config=None`` autotunes instead.
CONFIGS = (
    {"BLOCK_T": 64, "BLOCK_V": 128, "DOCS": 8, "num_warps": 8, "num_stages": 3},
    {"BLOCK_T": 32, "BLOCK_V": 128, "DOCS": 8, "num_warps": 4, "num_stages": 3},
    {"BLOCK_T": 64, "BLOCK_V": 64, "DOCS": 16, "num_warps": 4, "num_stages": 3},
    {"BLOCK_T": 32, "BLOCK_V": 256, "DOCS": 16, "num_warps": 8, "num_stages": 3},
    {"BLOCK_T": 128, "BLOCK_V": 128, "DOCS": 32, "num_warps": 8, "num_stages": 2},
)


def triton_configs(configs: tuple[dict, ...]) -> list:
    """``CONFIGS``-style dicts as ``triton.Config`` s (block sizes; warps and stages apart)."""
    out = []
    for c in configs:
        meta = {k: v for k, v in c.items() if k not in ("num_warps", "num_stages")}
        out.append(triton.Config(meta, num_warps=c["num_warps"], num_stages=c["num_stages"]))
    return out


if triton is not None:

    @triton.jit
    def _stationary_kernel(
        s_hi,
        s_lo,
        w_hi,
        w_lo,
        bias,
        starts,
        lengths,
        out,
        D,
        V,
        stride_s,
        stride_w,
        stride_o,
        HIDDEN: tl.constexpr,
        PRECISION: tl.constexpr,
        BLOCK_T: tl.constexpr,
        BLOCK_V: tl.constexpr,
        DOCS: tl.constexpr,
    ):
        """Same contract as ``_splade_head_kernel``; HIDDEN (a power of two <= 128) is the
        padded hidden size, ``stride_w`` rows of ``w_*`` beyond the real H read as 0."""
        vt = tl.program_id(0)
        group = tl.program_id(1)
        cols = vt * BLOCK_V + tl.arange(0, BLOCK_V)
        cmask = cols < V
        ks = tl.arange(0, HIDDEN)
        kmask = ks < stride_s  # stride_s == H: states are (T, H) contiguous
        w_off = ks[:, None].to(tl.int64) * stride_w + cols[None, :]
        w_mask = kmask[:, None] & cmask[None, :]
        b_hi = tl.load(w_hi + w_off, mask=w_mask, other=0.0)
        if PRECISION == 0:
            b_lo = tl.load(w_lo + w_off, mask=w_mask, other=0.0)
        bias_v = tl.load(bias + cols, mask=cmask, other=0.0)
        for i in range(DOCS):
            doc = group * DOCS + i
            valid = doc < D
            start = tl.load(starts + doc, mask=valid, other=0)
            end = start + tl.load(lengths + doc, mask=valid, other=0)
            best = tl.full((BLOCK_T, BLOCK_V), float("-inf"), tl.float32)
            for t0 in tl.range(start, end, BLOCK_T):
                rows = t0 + tl.arange(0, BLOCK_T)
                rmask = rows < end
                s_off = rows[:, None].to(tl.int64) * stride_s + ks[None, :]
                s_mask = rmask[:, None] & kmask[None, :]
                a_hi = tl.load(s_hi + s_off, mask=s_mask, other=0.0)
                if PRECISION == 1:
                    acc = tl.dot(a_hi, b_hi, input_precision="tf32")
                else:
                    acc = tl.dot(a_hi, b_hi)
                if PRECISION == 0:
                    a_lo = tl.load(s_lo + s_off, mask=s_mask, other=0.0)
                    acc = tl.dot(a_lo, b_hi, acc)
                    acc = tl.dot(a_hi, b_lo, acc)
                best = tl.maximum(best, tl.where(rmask[:, None], acc, float("-inf")))
            peak = tl.max(best, axis=0)
            val = tl.log(1.0 + tl.maximum(peak + bias_v, 0.0))
            tl.store(out + doc.to(tl.int64) * stride_o + cols, val, mask=cmask & valid)

    _stationary_tuned = triton.autotune(
        configs=triton_configs(CONFIGS), key=["V", "HIDDEN", "PRECISION"]
    )(_stationary_kernel)


def launch_stationary(
    s_hi, s_lo, w_hi, w_lo, bias, starts, lengths, out, precision: int, config: int | None = 0
) -> None:
    """Launch :func:`_stationary_kernel` (hidden size <= :data:`MAX_HIDDEN`) with tile
    ``CONFIGS[config]``, or the autotuner's pick when ``config`` is None."""
    hidden, vocab = w_hi.shape
    n_docs = starts.shape[0]

    def grid(meta: dict) -> tuple[int, int]:
        return (triton.cdiv(vocab, meta["BLOCK_V"]), triton.cdiv(n_docs, meta["DOCS"]))

    args = (s_hi, s_lo, w_hi, w_lo, bias, starts, lengths, out, n_docs, vocab)
    args += (s_hi.stride(0), w_hi.stride(0), out.stride(0))
    shape = {"HIDDEN": max(16, triton.next_power_of_2(hidden)), "PRECISION": precision}
    if config is None:
        _stationary_tuned[grid](*args, **shape)
    else:
        tile = CONFIGS[config]
        _stationary_kernel[grid(tile)](*args, **shape, **tile)
