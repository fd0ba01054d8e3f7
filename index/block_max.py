"""The block-max index (Block-Max Pruning, Mallia et al., SIGIR'24), built from the
float16 forward index: per term, the ranges of :data:`RANGE_SIZE` consecutive internal
documents it occurs in and an upper bound of its weight there.

Documents are renumbered for locality at build, so a range holds similar documents and
its bounds are tight enough to skip most of the corpus. Unlike the block summaries
(alpha-pruned, rounded to nearest, over statically pruned lists) these bounds are sound
for every document and every term: ``sum_t q_t * code[t, r] * scale[t]`` over *all*
query terms is at least the score of every document of range ``r``
(:mod:`index.kernels.bounds` adds the float rounding margin).

Memory: two ``(n_chunks, dim)`` tables besides the result (3 bytes a (term, range) pair
below 2**16 ranges, else 5), one pass over the forward index per build pass.
"""

from __future__ import annotations

import numba
import numpy as np

from index.kernels.block_max import count_pairs, fill_pairs
from index.layout import BlockMaxIndex, ForwardIndex

# Documents per range. Measured with exact search by bounds on the shared vectors' real
# queries (packages / docstring): 8 documents a range score 100 / 276 ranges a query and
# read 133k / 89k (term, range) pairs for the bounds (~1 ns a pair); 16 read 93k / 58k
# pairs but score 271 / 599 ranges; 32 and 64 score 600-900 ranges. A power of two
# dividing 64: a range is then one byte of a word of the visited-document bitset.
RANGE_SIZE = 8


def build_block_max(
    offsets: np.ndarray,
    packed: np.ndarray,
    terms: np.ndarray,
    bits: np.ndarray,
    order: np.ndarray,
    dim: int,
    n_chunks: int | None = None,
    range_size: int = RANGE_SIZE,
) -> BlockMaxIndex:
    """The block-max index of a forward index (``offsets`` int64, ``packed`` uint32 or
    ``terms`` int32 + ``bits`` uint16, as :class:`index.build_steps.Forward`) whose row
    ``order[i]`` becomes internal document ``i`` (``order`` int64 (n_docs,))."""
    if range_size <= 0 or 64 % range_size:
        raise ValueError(f"range_size must be a power of two dividing 64, got {range_size}")
    if n_chunks is None:
        n_chunks = max(1, 4 * numba.get_num_threads())
    order = np.ascontiguousarray(order, dtype=np.int64)
    n_ranges = (order.shape[0] + range_size - 1) // range_size
    n_chunks = max(1, min(int(n_chunks), n_ranges))
    counts = np.zeros((n_chunks, dim), dtype=np.int64)
    max_bits = np.zeros((n_chunks, dim), dtype=np.uint16)
    count_pairs(offsets, packed, terms, bits, order, range_size, counts, max_bits)
    per_term = counts.sum(axis=0)
    term_ranges = np.zeros(dim + 1, dtype=np.int64)
    np.cumsum(per_term, out=term_ranges[1:])
    starts = term_ranges[:-1] + np.cumsum(counts, axis=0) - counts
    del counts
    scales = term_scales(max_bits.max(axis=0, initial=0).view(np.float16).astype(np.float32))
    del max_bits
    n_pairs = int(term_ranges[-1])
    ranges = np.empty(n_pairs, dtype=np.uint16 if n_ranges <= 1 << 16 else np.int32)
    codes = np.empty(n_pairs, dtype=np.uint8)
    fill_pairs(offsets, packed, terms, bits, order, range_size, scales, starts, ranges, codes)
    return BlockMaxIndex(
        range_size=np.array([range_size], dtype=np.int64),
        term_ranges=term_ranges,
        ranges=ranges,
        codes=codes,
        scales=scales,
    )


def block_max_of(forward: ForwardIndex, dim: int, range_size: int = RANGE_SIZE) -> BlockMaxIndex:
    """The block-max index of an index's forward index (already in internal order): what
    an index saved before format 3 lacks (see ``SeismicIndex.with_block_max``)."""
    n_docs = int(forward.offsets.shape[0]) - 1
    return build_block_max(
        forward.offsets,
        forward.packed,
        forward.terms,
        forward.values,
        np.arange(n_docs, dtype=np.int64),
        dim,
        range_size=range_size,
    )


def term_scales(max_weight: np.ndarray) -> np.ndarray:
    """float32 (dim,) code steps: the smallest float32 ``s`` near ``max_weight / 255`` with
    ``255 * s >= max_weight`` in exact arithmetic, so that code 255 bounds every weight."""
    max_weight = np.asarray(max_weight, dtype=np.float32)
    scales = (max_weight.astype(np.float64) / 255.0).astype(np.float32)
    while True:
        low = scales.astype(np.float64) * 255.0 < max_weight.astype(np.float64)
        if not low.any():
            return scales
        scales[low] = np.nextafter(scales[low], np.float32(np.inf))


def check_block_max(block_max: BlockMaxIndex, n_docs: int, dim: int) -> list[str]:
    """Cheap consistency checks of a loaded block-max index; returns the problems found."""
    if int(block_max.range_size[0]) == 0 and block_max.term_ranges.shape[0] == 0:
        return []
    problems = []
    size = int(block_max.range_size[0]) if block_max.range_size.shape == (1,) else -1
    if size <= 0 or 64 % size:
        return ["block_max.range_size is not a power of two dividing 64"]
    off = block_max.term_ranges
    if off.shape != (dim + 1,) or off[0] != 0 or np.any(np.diff(off) < 0):
        problems.append("block_max.term_ranges is not a valid offsets array")
    elif off[-1] != block_max.ranges.shape[0] or block_max.codes.shape != block_max.ranges.shape:
        problems.append("block_max arrays disagree in length")
    if block_max.scales.shape != (dim,):
        problems.append("block_max.scales does not match dim")
    n_ranges = (n_docs + size - 1) // size
    if block_max.ranges.size and int(block_max.ranges.max()) >= n_ranges:
        problems.append("block_max.ranges out of range")
    return problems
