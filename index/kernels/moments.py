"""Per-term statistics of the forward index's weights, for pseudo-queries."""

from __future__ import annotations

import numpy as np
from numba import njit

from index.kernels.intrinsics import f16_bits_to_f32


@njit(cache=True, nogil=True)
def term_log_moments(
    packed: np.ndarray, terms: np.ndarray, bits: np.ndarray, dim: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and standard deviation of ``log(weight)`` of every term over the
    forward index (``packed`` uint32, or ``terms`` int32 + ``bits`` uint16 when it is
    empty); zero weights are left out. Returns int64, float64, float64 arrays (dim,)."""
    count = np.zeros(dim, dtype=np.int64)
    total = np.zeros(dim, dtype=np.float64)
    squares = np.zeros(dim, dtype=np.float64)
    n = packed.shape[0] if packed.shape[0] else terms.shape[0]
    for j in range(n):
        if packed.shape[0]:
            t = np.int64(packed[j] >> np.uint32(16))
            w = f16_bits_to_f32(np.uint16(packed[j] & np.uint32(0xFFFF)))
        else:
            t = np.int64(terms[j])
            w = f16_bits_to_f32(bits[j])
        if w > 0:
            x = np.log(np.float64(w))
            count[t] += 1
            total[t] += x
            squares[t] += x * x
    mean = np.zeros(dim, dtype=np.float64)
    std = np.zeros(dim, dtype=np.float64)
    for t in range(dim):
        if count[t]:
            mean[t] = total[t] / count[t]
            std[t] = np.sqrt(max(0.0, squares[t] / count[t] - mean[t] * mean[t]))
    return count, mean, std
