"""The arrays of a Seismic index, named once, in the paper's words.

An index is four parts, each a flat ``NamedTuple`` of NumPy arrays that the kernels take
as arguments (Numba types a ``NamedTuple`` of arrays as a record of arrays; nested ones
break its parallel lowering, so the parts travel side by side, never inside each other):

* :class:`PostingLists` (the inverted index): each term's statically pruned posting list,
  split into blocks of similar documents.
* :class:`BlockSummaries`: per block, the quantised summary vector (coordinate-wise
  maximum of its documents, alpha-pruned, uint8 codes on a per-block ``min + scale *
  code`` grid), stored transposed per list (term -> entries) so that one pass over the
  query's terms scores every block of a list.
* :class:`ForwardIndex`: every document's full vector, for exact scoring.
* :class:`BlockMaxIndex` (format 3): per term, the fixed ranges of internal document
  numbers it occurs in, with an upper bound of its weight in each range (Block-Max
  Pruning's term-major block-max index): sound upper bounds for certified and exact search.

Documents are renumbered at build time so that a block reads a mostly contiguous stretch
of the forward index; ``ForwardIndex.doc_rows`` maps an internal document number back to
the caller's row. On disk each field is one Arrow IPC file named ``<part>.<field>``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class PostingLists(NamedTuple):
    """Pruned posting lists cut into blocks.

    list_blocks: int64 (dim+1,): list ``t``'s blocks are ``[list_blocks[t], list_blocks[t+1])``.
    block_offsets: int32 or int64 (n_blocks+1,): block ``b``'s postings are
        ``postings[block_offsets[b]:block_offsets[b+1]]``.
    postings: int32 (n_postings,): internal document numbers, ascending inside a block.
    """

    list_blocks: np.ndarray
    block_offsets: np.ndarray
    postings: np.ndarray


class BlockSummaries(NamedTuple):
    """Quantised block summaries, stored term-major per posting list.

    block_min, block_scale: float32 (n_blocks,): a code ``c`` of block ``b`` decodes to
        ``block_min[b] + block_scale[b] * c``.
    list_terms: int64 (dim+1,): list ``t``'s distinct summary terms are
        ``terms[list_terms[t]:list_terms[t+1]]`` (ascending).
    terms: uint16 or int32: those terms.
    term_entries: uint16 or uint32, parallel to ``terms``: each term's first entry,
        relative to the list's first entry ``list_entries[t]``.
    list_entries: int64 (dim+1,): list ``t``'s entries are ``[list_entries[t],
        list_entries[t+1])`` of ``codes``.
    codes: uint8 (n_entries,): the quantised summary values.
    entry_blocks: uint8: each entry's list-local block id, bit-packed with
        ``id_bits(blocks of the list)`` bits from byte ``list_block_bytes[t]`` (4 spare
        bytes at the end: the reader loads 4 bytes at a time).
    list_block_bytes: int64 (dim+1,).
    """

    block_min: np.ndarray
    block_scale: np.ndarray
    list_terms: np.ndarray
    terms: np.ndarray
    term_entries: np.ndarray
    list_entries: np.ndarray
    codes: np.ndarray
    entry_blocks: np.ndarray
    list_block_bytes: np.ndarray


class ForwardIndex(NamedTuple):
    """Every document's full vector, in internal document order.

    offsets: int64 (n_docs+1,): document ``d``'s entries are ``[offsets[d], offsets[d+1])``.
    packed: uint32: ``term << 16 | float16 bits`` per entry when ``dim <= 65536`` (one
        cache stream per document), else empty.
    terms: int32 and values: uint16 (float16 bits): the same entries in two arrays when
        ``dim > 65536``, else empty.
    doc_rows: int32 (n_docs,): the caller's row of each internal document.
    """

    offsets: np.ndarray
    packed: np.ndarray
    terms: np.ndarray
    values: np.ndarray
    doc_rows: np.ndarray


class BlockMaxIndex(NamedTuple):
    """Upper bounds of every term's weight per range of ``range_size`` consecutive internal
    documents (range ``r`` holds documents ``[r * range_size, (r + 1) * range_size)``).

    range_size: int64 (1,): documents per range, a power of two dividing 64 (so that a
        range is a whole byte of a 64-bit visited-document bitset word).
    term_ranges: int64 (dim+1,): term ``t``'s entries are ``[term_ranges[t], term_ranges[t+1])``.
    ranges: uint16 or int32: the ranges term ``t`` occurs in, ascending.
    codes: uint8, parallel to ``ranges``: ``codes * scales[t]`` (exact real product) is at
        least the largest float16 weight of ``t`` in the range: codes are rounded *up*.
    scales: float32 (dim,): each term's code step (its largest weight / 255, rounded up).

    All arrays are empty in an index saved before format 3 (it cannot certify).
    """

    range_size: np.ndarray
    term_ranges: np.ndarray
    ranges: np.ndarray
    codes: np.ndarray
    scales: np.ndarray


EMPTY_BLOCK_MAX = BlockMaxIndex(
    range_size=np.zeros(1, dtype=np.int64),
    term_ranges=np.zeros(0, dtype=np.int64),
    ranges=np.zeros(0, dtype=np.int32),
    codes=np.zeros(0, dtype=np.uint8),
    scales=np.zeros(0, dtype=np.float32),
)
"""What an index of format 1 or 2 loads with: no bounds (``range_size`` 0)."""


PARTS: dict[str, type] = {
    "postings": PostingLists,
    "summaries": BlockSummaries,
    "forward": ForwardIndex,
    "block_max": BlockMaxIndex,
}
# Parts that an older format lacks, with the value they load as.
OPTIONAL_PARTS: dict[str, NamedTuple] = {"block_max": EMPTY_BLOCK_MAX}

# Format 1 stored the same arrays under older names; they load through this map.
LEGACY_NAMES: dict[str, str] = {
    "postings.list_blocks": "list_blocks",
    "postings.block_offsets": "block_docs",
    "postings.postings": "postings",
    "summaries.block_min": "block_min",
    "summaries.block_scale": "block_scale",
    "summaries.list_terms": "list_sterms",
    "summaries.terms": "sterm",
    "summaries.term_entries": "sterm_entries",
    "summaries.list_entries": "list_entries",
    "summaries.codes": "sentry_code",
    "summaries.entry_blocks": "sentry_block",
    "summaries.list_block_bytes": "list_block_bytes",
    "forward.offsets": "fwd_offsets",
    "forward.packed": "fwd_packed",
    "forward.terms": "fwd_terms",
    "forward.values": "fwd_values",
    "forward.doc_rows": "row_ids",
}


class IndexArrays(NamedTuple):
    """The parts of an index (Python-side container; kernels take the parts)."""

    postings: PostingLists
    summaries: BlockSummaries
    forward: ForwardIndex
    block_max: BlockMaxIndex = EMPTY_BLOCK_MAX

    @property
    def can_certify(self) -> bool:
        """Whether the index holds block-max bounds (format 3)."""
        return int(self.block_max.range_size[0]) > 0

    def flat(self) -> dict[str, np.ndarray]:
        """``{"<part>.<field>": array}``, the names of the files on disk."""
        return {
            f"{part}.{name}": array
            for part in PARTS
            for name, array in getattr(self, part)._asdict().items()
        }

    @classmethod
    def from_flat(cls, arrays: dict[str, np.ndarray]) -> IndexArrays:
        """Inverse of :meth:`flat`; a ``KeyError`` names a missing array. A part of
        :data:`OPTIONAL_PARTS` of which no array is given takes its empty value."""
        parts = {}
        for part, kind in PARTS.items():
            names = [f"{part}.{f}" for f in kind._fields]
            if part in OPTIONAL_PARTS and not any(n in arrays for n in names):
                parts[part] = OPTIONAL_PARTS[part]
                continue
            parts[part] = kind(**{f: arrays[f"{part}.{f}"] for f in kind._fields})
        return cls(**parts)

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.flat().values()))


ARRAY_NAMES: tuple[str, ...] = tuple(
    f"{part}.{field}" for part, kind in PARTS.items() for field in kind._fields
)
OPTIONAL_NAMES: tuple[str, ...] = tuple(
    f"{part}.{field}" for part in OPTIONAL_PARTS for field in PARTS[part]._fields
)
"""Arrays an index of format 1 or 2 does not have."""
