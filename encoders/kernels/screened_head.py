"""The SPLADE head on the CPU for short texts: a low-precision screen, then exact float32.

``out[d, v] = log1p(relu(bias[v] + max_t states[t] . weight[v]))`` over the tokens ``t`` of
text ``d``. The (tokens x vocabulary) product is the bulk of a query's arithmetic, yet a
query keeps only ~30 of 30,522 columns (every other max logit is <= 0). So:

1. Screen: the whole product in bf16 (``vdpbf16ps`` through oneDNN, ~4x the float32 rate and
   half the bytes of weight to stream) or int8 (below), max over each text's tokens.
2. Bound: for every (text, column) the screen is within ``radius`` of the float32 max logit
   (below). A column whose screened max plus radius is <= 0 has a float32 weight of 0.
3. Exact: the surviving columns (the union over the batch, ~40 per query) again in float32,
   so every returned weight is the float32 one (up to the order of float32 additions).

The bound. With ``u = 2**-8`` (bf16 unit roundoff), ``s~ = s(1+a)``, ``w~ = w(1+b)``,
``|a|, |b| <= u``, each product errs by at most ``(2u + u^2)|s_i w_i|``; float32 accumulation
of ``H`` terms adds ``H * 2**-24`` relative to ``sum |s_i w_i|``, which Cauchy-Schwarz bounds
by ``|s| |w|``; rounding the result to bf16 adds ``u`` relative to its magnitude. Hence
``|screen - exact| <= (2u + u^2 + H 2**-24) |s_t| |w_v| + u |screen| / (1 - u)``, and the max
over tokens moves by no more than the largest such error. We use
``SCREEN_SLACK * 2u * max_t |s_t| * |w_v| + 2u |screen| + 1e-6`` (``SCREEN_SLACK`` = 1.25
covers ``u^2``, the ``H 2**-24`` term for H up to ~4,000, and rounding of the radius itself).
On splade-tiny queries the observed error stays under a third of this radius, and the
screen keeps ~42 columns per query for ~30 non-zeros. The threshold uses the batch's
largest ``|s_t|``, so one (V,) comparison gives the union of the texts' candidates.

The int8 screen (the default where it is exact, see :func:`int8_matmul_is_exact`): the
decoder rows quantised with one scale each (``beta_v = max|w_v| / 127``), the batch's
states with one scale (``alpha = max|s| / 127``), products summed exactly in int32
(``vpdpbusd``; with the float32 step, 1.2-1.3x the bf16 screen for 4-8 queries, about even
at 16-32, measured interleaved on the 2-core box). With ``s = alpha s_q + ds``,
``w = beta_v w_q + dw``, ``|ds_i| <= alpha / 2``, ``|dw_i| <= beta_v / 2``:
``|s.w - alpha beta_v s_q.w_q| <= alpha/2 |w_v|_1 + beta_v/2 (|s_t|_1 + H alpha / 2)``, a
per-column radius (times ``SCREEN_SLACK``; float32 rounding of the scaled max adds
``2**-20`` relative). It is looser than bf16's (~410 columns for a batch of 8 queries
instead of ~230) but the float32 step on them costs a few hundred microseconds; observed
error stays under a quarter of the radius.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

BF16_UNIT_ROUNDOFF = 2.0**-8
SCREEN_SLACK = 1.25
INT8_TOKEN_BLOCK = 96


def column_max_bf16(logits: torch.Tensor) -> torch.Tensor:
    """(T, V) bf16 -> (V,) bf16 column max, through two int16 reductions.

    torch's bf16 (and float32) reductions run ~10x slower than int16 ones here. Read as
    int16, a bf16 is sign-magnitude: the non-negative values order as floats do, the
    negative ones in reverse. So a column whose int16 max is >= 0 has that float max;
    otherwise all its values are negative and the float max is the int16 min.
    """
    bits = logits.view(torch.int16)
    high, low = bits.amax(dim=0), bits.amin(dim=0)
    return torch.where(high >= 0, high, low).view(torch.bfloat16)


@functools.cache  # a property of the CPU: probed once a process
def int8_matmul_is_exact() -> bool:
    """Whether ``torch._int_mm`` sums int8 products exactly on this CPU.

    oneDNN runs s8 x s8 as u8 x s8; with VNNI (``vpdpbusd``) the sums are exact, but the
    AVX2 fallback adds pairs of products in saturating int16 and can clip. Checked on the
    worst case (all +-127), so the int8 screen is only used where its bound holds.
    """
    try:
        hidden = 128
        a = torch.full((16, hidden), 127, dtype=torch.int8)
        a[8:] = -127
        b = torch.full((hidden, 32), 127, dtype=torch.int8)
        b[:, 16:] = -127
        b[::2, 24:] = 3
        gen = torch.Generator().manual_seed(0)
        c = torch.randint(-127, 128, (16, hidden), dtype=torch.int8, generator=gen)
        want = a.double() @ b.double()
        want_c = c.double() @ b.double()
        got, got_c = torch._int_mm(a, b), torch._int_mm(c, b)
        return bool(torch.equal(got.double(), want) and torch.equal(got_c.double(), want_c))
    except (RuntimeError, AttributeError):  # no int8 matmul on this build
        return False


@functools.cache  # every SpladeMLM (two an encoder) and ScreenedHead asks
def fast_screen() -> str | None:
    """The screen that pays on this CPU, or None where the plain float32 head is faster.

    The screen computes the whole (tokens x vocabulary) product in low precision, so it only
    wins where that precision has its own instructions: int8 with VNNI (``vpdpbusd``), bf16
    with AVX512-BF16 or AMX. Without them oneDNN emulates both: on an AVX2-only AMD EPYC
    (2 cores) splade-tiny encoded 40 Cranfield documents in 2.0 s with the float32 head,
    9.2 s with the bf16 screen and 27 s with the int8 one (queries alike: 0.5 / 2.1 / 6.1 s
    for 64), so there the head is not screened at all.
    """
    cpu = getattr(torch, "cpu", None)

    def has(name: str) -> bool:
        probe = getattr(cpu, name, None)
        try:
            return bool(probe()) if probe is not None else False
        except RuntimeError:
            return False

    if has("_is_vnni_supported") and int8_matmul_is_exact():
        return "int8"
    if has("_is_avx512_bf16_supported") or has("_is_amx_tile_supported"):
        return "bf16"
    return None


class ScreenedHead:
    """The decoder of a masked-LM prepared for :meth:`sparse` (float32 and bf16 copies).

    ``weight``: (V, H) float32 decoder weight; ``bias``: (V,) float32.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, screen: str = "auto") -> None:
        if screen not in ("auto", "int8", "bf16"):
            raise ValueError(f"screen {screen!r} is not one of auto, int8, bf16")
        self.weight = weight.float().contiguous()
        self.bias = bias.float().contiguous()
        self.vocab_size, self.hidden_size = self.weight.shape
        if screen == "auto":
            screen = fast_screen() or ("int8" if int8_matmul_is_exact() else "bf16")
        self.screen = screen
        if screen == "bf16":
            self.weight_bf16 = self.weight.to(torch.bfloat16)
            # Norms of the float32 rows (the bound is stated for the exact operands).
            self.weight_norms = torch.linalg.vector_norm(self.weight, dim=1)
        else:
            self.beta = (self.weight.abs().amax(dim=1) / 127).clamp_min(1e-30)  # (V,)
            quantised = torch.round(self.weight / self.beta[:, None]).clamp_(-127, 127)
            self.weight_int8_t = quantised.to(torch.int8).T.contiguous()  # (H, V)
            self.half_l1 = self.weight.abs().sum(dim=1) / 2  # (V,)

    def candidates(self, states: torch.Tensor) -> torch.Tensor:
        """(T, H) float32 states -> int64 ascending columns that may have a positive weight
        for some text of the batch (a superset of them; see the module docstring)."""
        if self.screen == "int8":
            return self._candidates_int8(states)
        screen = column_max_bf16(torch.mm(states.to(torch.bfloat16), self.weight_bf16.T))
        # screen_v + c2 |screen_v| + g_v > 0 decides; x + c2 |x| is increasing, so this
        # is screen_v > f^-1(-g_v), one (V,) threshold for the whole batch.
        longest = float(torch.linalg.vector_norm(states, dim=1).max())
        c1, c2 = SCREEN_SLACK * 2 * BF16_UNIT_ROUNDOFF, 2 * BF16_UNIT_ROUNDOFF
        level = self.weight_norms * (-c1 * longest)
        level -= self.bias
        level -= 1e-6
        level = torch.where(level >= 0, level / (1 + c2), level / (1 - c2))
        return torch.nonzero(screen.float() > level).squeeze(1)

    def _candidates_int8(self, states: torch.Tensor) -> torch.Tensor:
        magnitudes = states.abs()
        alpha = float(magnitudes.max()) / 127 or 1e-30
        quantised = torch.round(states / alpha).clamp_(-127, 127).to(torch.int8)
        # Blocks of tokens: oneDNN's int8 GEMM slows down ~4x per token past ~100 rows here
        # (and the (T, V) int32 product would leave the cache).
        top = torch._int_mm(quantised[:INT8_TOKEN_BLOCK], self.weight_int8_t).amax(dim=0)
        for start in range(INT8_TOKEN_BLOCK, quantised.shape[0], INT8_TOKEN_BLOCK):
            block = quantised[start : start + INT8_TOKEN_BLOCK]
            torch.maximum(top, torch._int_mm(block, self.weight_int8_t).amax(dim=0), out=top)
        scaled = top.float().mul_(self.beta).mul_(alpha)
        state_term = (float(magnitudes.sum(dim=1).max()) + self.hidden_size * alpha / 2) / 2
        radius = self.half_l1 * alpha
        radius += self.beta * state_term
        radius *= SCREEN_SLACK
        upper = scaled.abs().mul_(2.0**-20).add_(radius).add_(scaled).add_(self.bias)
        return torch.nonzero(upper > -1e-6).squeeze(1)

    def exact(self, states: torch.Tensor, offsets: list[int], cols: torch.Tensor) -> torch.Tensor:
        """(B, C) float32 SPLADE weights of columns ``cols`` (float32 products)."""
        logits = torch.addmm(self.bias[cols], states, self.weight[cols].T)  # (T, C)
        if len(offsets) == 2:
            top = logits.amax(dim=0, keepdim=True)
        else:
            top = torch.stack(
                [logits[a:b].amax(dim=0) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
            )
        return torch.log1p(torch.relu_(top))

    def weights(self, states: torch.Tensor, offsets: list[int]) -> torch.Tensor:
        """SPLADE weights of B texts; (B, V) float32.

        ``states``: (T, H) float32 head-transformed states of the real tokens only, text
        ``d`` in rows ``offsets[d]:offsets[d + 1]`` (``offsets``: B + 1 ints, every text at
        least one token).
        """
        out = torch.zeros(len(offsets) - 1, self.vocab_size, dtype=torch.float32)
        if states.shape[0] == 0:
            return out
        cols = self.candidates(states)
        if cols.numel():
            out[:, cols] = self.exact(states, offsets, cols)
        return out

    def sparse(
        self, states: torch.Tensor, offsets: list[int], top_k: int | None, threshold: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like :meth:`weights`, pruned (``<= threshold`` dropped, at most ``top_k`` a row)
        and returned as per-row counts (B,) int32, columns (nnz,) int32 ascending within a
        row, values (nnz,) float32, without a (B, V) matrix."""
        n_texts = len(offsets) - 1
        cols = self.candidates(states) if states.shape[0] else torch.zeros(0, dtype=torch.long)
        if cols.numel() == 0:
            return np.zeros(n_texts, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32)
        weights = self.exact(states, offsets, cols)
        if threshold > 0:
            weights.masked_fill_(weights <= threshold, 0.0)
        if top_k is not None and top_k < weights.shape[1]:
            top = torch.topk(weights, top_k, dim=1)
            weights = torch.zeros_like(weights).scatter_(1, top.indices, top.values)
        keep = weights > 0
        rows, local = keep.nonzero(as_tuple=True)
        counts = torch.bincount(rows, minlength=n_texts).to(torch.int32)
        return (
            counts.numpy(),
            cols[local].to(torch.int32).numpy(),
            weights[keep].numpy(),
        )

    def sparse_each(
        self, states: torch.Tensor, offsets: list[int], top_k: int | None, threshold: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`sparse`, screening every text on its own: for documents, whose hundreds of
        non-zeros make a batch's union of candidates approach the vocabulary, while one
        text's candidates stay a few hundred columns (~2.7x the float32 head's rate on
        SciFact documents here, float32 weights all the same)."""
        parts = [
            self.sparse(states[a:b], [0, b - a], top_k, threshold)
            for a, b in zip(offsets[:-1], offsets[1:], strict=True)
        ]
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )
