"""The build pipeline: posting lists -> static pruning -> blocking -> summaries -> arrays."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numba
import numpy as np

from index.kernels.blocking import cluster_lists
from index.kernels.exact import transpose_csr
from index.kernels.pruning import doc_top_terms, prune_lists
from index.kernels.reorder import locality_keys, permute_csr, renumber_blocks
from index.kernels.summaries import (
    pack_block_ids,
    pack_summaries,
    summarize_blocks,
    transpose_summaries,
)
from index.layout import BlockSummaries, ForwardIndex, IndexArrays, PostingLists
from index.validation import MAX_WEIGHT, CsrArrays

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildParams:
    """Build-time choices (Seismic's names).

    n_postings: average postings kept per term; the global budget is ``n_postings`` times
        the number of non-empty terms (``None`` keeps every posting).
    max_fraction: no list keeps more than ``max_fraction * n_postings`` postings.
    centroid_fraction: blocks per list = ``max(1, centroid_fraction * list length)``.
    min_cluster_size: clusters of at most this many documents are dissolved and their
        documents reassigned to the surviving centroids (0 keeps every cluster).
    summary_energy: share (alpha) of a block summary's mass kept.
    doc_cut: a document's heaviest terms used to assign it to a centroid.
    seed: makes the random centroids, hence the whole index, reproducible.
    """

    n_postings: int | None = 3500
    max_fraction: float = 1.5
    centroid_fraction: float = 0.1
    min_cluster_size: int = 2
    summary_energy: float = 0.4
    doc_cut: int = 15
    seed: int = 42

    def __post_init__(self) -> None:
        if self.n_postings is not None and (
            isinstance(self.n_postings, bool)
            or int(self.n_postings) != self.n_postings
            or self.n_postings <= 0
        ):
            raise ValueError(f"n_postings must be a positive int or None, got {self.n_postings!r}")
        if not self.max_fraction >= 1.0:
            raise ValueError(f"max_fraction must be >= 1, got {self.max_fraction!r}")
        if not 0.0 < self.centroid_fraction <= 1.0:
            raise ValueError(f"centroid_fraction must be in (0, 1], got {self.centroid_fraction!r}")
        if (
            isinstance(self.min_cluster_size, bool)
            or int(self.min_cluster_size) != self.min_cluster_size
            or self.min_cluster_size < 0
        ):
            raise ValueError(f"min_cluster_size must be an int >= 0, got {self.min_cluster_size!r}")
        if not 0.0 < self.summary_energy <= 1.0:
            raise ValueError(f"summary_energy must be in (0, 1], got {self.summary_energy!r}")
        if isinstance(self.doc_cut, bool) or int(self.doc_cut) != self.doc_cut or self.doc_cut < 1:
            raise ValueError(f"doc_cut must be a positive int, got {self.doc_cut!r}")
        if isinstance(self.seed, bool) or int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class _Clock:
    """Logs the seconds each build phase took (DEBUG level)."""

    def __init__(self) -> None:
        self.last = time.perf_counter()

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        log.debug("build phase %s: %.2f s", phase, now - self.last)
        self.last = now


def _smallest_uint(max_value: int) -> type:
    """uint16 when every value fits, else int32 (int64 offsets only past 2**31)."""
    if max_value < 2**16:
        return np.uint16
    if max_value < 2**31:
        return np.int32
    return np.int64


def _offset_dtype(max_value: int) -> type:
    return np.int32 if max_value < 2**31 else np.int64


# Bounded scratch for one batch of block summaries (entries, 8 bytes each).
_SUMMARY_BATCH = 1 << 25


def _summaries(
    block_docs: np.ndarray,
    rows: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    alpha: float,
    dim: int,
    n_chunks: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Quantised summaries of all blocks, block-major: ``(terms int32, codes uint8,
    block_min, block_scale, offsets int64 (n_blocks+1,))``.

    Computed in batches whose summed upper bounds (the blocks' total non-zeros) fit a
    bounded buffer, so memory stays flat for large corpora; one pass over the documents.
    """
    n_blocks = block_docs.shape[0] - 1
    doc_nnz = np.diff(indptr)
    per_block = np.zeros(n_blocks, dtype=np.int64)
    if rows.shape[0]:
        per_block = np.add.reduceat(doc_nnz[rows], block_docs[:-1]).astype(np.int64)
        per_block = np.minimum(per_block, dim)
    sizes = np.zeros(n_blocks, dtype=np.int64)
    parts_t, parts_v = [], []
    b = 0
    while b < n_blocks:
        ends = np.cumsum(per_block[b:])
        e = b + max(1, int(np.searchsorted(ends, _SUMMARY_BATCH, side="right")))
        bound = np.concatenate([[0], ends[: e - b]]).astype(np.int64)
        buf_t = np.empty(int(bound[-1]), dtype=np.int32)
        buf_v = np.empty(int(bound[-1]), dtype=np.float32)
        bsizes = np.zeros(e - b, dtype=np.int64)
        summarize_blocks(
            block_docs[b : e + 1],
            rows,
            indptr,
            indices,
            data,
            alpha,
            dim,
            n_chunks,
            bound,
            buf_t,
            buf_v,
            bsizes,
        )
        keep = np.repeat(bound[:-1] - np.concatenate([[0], np.cumsum(bsizes)[:-1]]), bsizes)
        keep += np.arange(int(bsizes.sum()))
        parts_t.append(buf_t[keep])
        parts_v.append(buf_v[keep])
        sizes[b:e] = bsizes
        b = e
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    terms = np.concatenate(parts_t) if parts_t else np.empty(0, dtype=np.int32)
    vals = np.concatenate(parts_v) if parts_v else np.empty(0, dtype=np.float32)
    codes = np.empty(terms.shape[0], dtype=np.uint8)
    block_min = np.empty(n_blocks, dtype=np.float32)
    block_scale = np.empty(n_blocks, dtype=np.float32)
    pack_summaries(offsets, sizes, terms, vals, offsets, terms, codes, block_min, block_scale)
    return terms, codes, block_min, block_scale, offsets


def _forward_index(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, dim: int, doc_rows: np.ndarray
) -> ForwardIndex:
    """The forward index: float16 weights packed with their uint16 term ids into one uint32
    per entry (one cache stream per document) when ``dim <= 65536``; otherwise int32 terms
    and float16 bits apart. The unused form is stored empty."""
    bits = data.astype(np.float16).view(np.uint16)
    if dim <= 1 << 16:
        packed = (indices.astype(np.uint32) << np.uint32(16)) | bits.astype(np.uint32)
        return ForwardIndex(
            offsets=indptr,
            packed=packed,
            terms=np.empty(0, dtype=np.int32),
            values=np.empty(0, dtype=np.uint16),
            doc_rows=doc_rows,
        )
    return ForwardIndex(
        offsets=indptr,
        packed=np.empty(0, dtype=np.uint32),
        terms=indices.astype(np.int32),
        values=bits,
        doc_rows=doc_rows,
    )


def build_arrays(docs: CsrArrays, params: BuildParams) -> IndexArrays:
    """All arrays of a Seismic index over ``docs`` (see :class:`index.SeismicIndex`)."""
    if docs.nnz and float(docs.data.max()) > MAX_WEIGHT:
        raise ValueError(f"docs has weights above {MAX_WEIGHT}, too large for float16 storage")
    dim = docs.n_cols
    n_threads = numba.get_num_threads()
    clock = _Clock()
    offsets, rows, values = transpose_csr(docs.indptr, docs.indices, docs.data, dim)
    lengths = np.diff(offsets)
    if params.n_postings is None:
        threshold, cap = 0.0, int(lengths.max(initial=0))
    else:
        budget = int(params.n_postings) * int(np.count_nonzero(lengths))
        threshold = 0.0
        if values.shape[0] > budget:
            threshold = float(np.partition(values, values.shape[0] - budget)[-budget])
        cap = max(1, int(params.max_fraction * params.n_postings))
    offsets, rows, values = prune_lists(offsets, rows, values, np.float32(threshold), cap)
    lengths = np.diff(offsets)
    clock.mark("transpose+prune")
    log.debug("pruned to %d postings (threshold %.4g, cap %d)", rows.shape[0], threshold, cap)

    top_terms, top_vals, top_len = doc_top_terms(
        docs.indptr, docs.indices, docs.data, int(params.doc_cut)
    )
    n_centroids = np.where(
        lengths > 0, np.maximum(1, (params.centroid_fraction * lengths).astype(np.int64)), 0
    ).astype(np.int64)
    block_base = np.concatenate([[0], np.cumsum(n_centroids)]).astype(np.int64)
    list_order = np.argsort(-lengths, kind="stable")[: int(np.count_nonzero(lengths))]
    n_chunks = max(1, 4 * n_threads)
    rows, block_sizes = cluster_lists(
        offsets,
        rows,
        values,
        n_centroids,
        block_base,
        int(params.seed),
        int(params.min_cluster_size),
        list_order.astype(np.int64),
        n_chunks,
        docs.indptr,
        docs.indices,
        docs.data,
        top_terms,
        top_vals,
        top_len,
    )
    clock.mark("blocking")
    heaviest = np.where(top_len > 0, top_terms[:, 0], -1).astype(np.int32)
    del top_terms, top_vals, top_len, values
    keys = locality_keys(offsets, block_sizes, block_base, rows, heaviest)
    row_ids = np.argsort(keys, kind="stable").astype(np.int64)
    del keys, heaviest
    new_of_old = np.empty(docs.n_rows, dtype=np.int32)
    new_of_old[row_ids] = np.arange(docs.n_rows, dtype=np.int32)
    fwd_indptr, fwd_indices, fwd_data = permute_csr(docs.indptr, docs.indices, docs.data, row_ids)
    nonempty = block_sizes > 0
    list_of_block = np.repeat(np.arange(dim, dtype=np.int64), n_centroids)[nonempty]
    blocks_per_list = np.bincount(list_of_block, minlength=dim)
    list_blocks = np.concatenate([[0], np.cumsum(blocks_per_list)]).astype(np.int64)
    block_docs = np.concatenate([[0], np.cumsum(block_sizes[nonempty])]).astype(np.int64)
    renumber_blocks(rows, block_docs, new_of_old)
    del new_of_old

    clock.mark("reorder")
    s_terms, s_codes, block_min, block_scale, sum_offsets = _summaries(
        block_docs,
        rows,
        fwd_indptr,
        fwd_indices,
        fwd_data,
        float(params.summary_energy),
        dim,
        n_chunks,
    )
    n_entries = int(sum_offsets[-1])
    clock.mark("block summaries")
    sentry_block = np.empty(n_entries, dtype=np.int64)
    sentry_code = np.empty(n_entries, dtype=np.uint8)
    u_terms = np.empty(n_entries, dtype=np.int32)
    u_start = np.empty(n_entries, dtype=np.int64)
    u_count = np.zeros(dim, dtype=np.int64)
    transpose_summaries(
        list_blocks,
        sum_offsets,
        s_terms,
        s_codes,
        sentry_block,
        sentry_code,
        u_terms,
        u_start,
        u_count,
    )
    del s_terms, s_codes
    list_first_entry = sum_offsets[list_blocks[:-1]]
    n_unique = int(u_count.sum())
    list_sterms = np.concatenate([[0], np.cumsum(u_count)]).astype(np.int64)
    take = np.repeat(list_first_entry - list_sterms[:-1], u_count) + np.arange(n_unique)
    list_entries = sum_offsets[list_blocks].astype(np.int64)
    # Offsets relative to the list's first entry fit 16 bits for all but huge lists.
    sterm_entries = u_start[take] - np.repeat(list_entries[:-1], u_count)
    per_list = np.diff(list_entries)
    if blocks_per_list.max(initial=0) > 1 << 24:
        raise ValueError("a posting list has more than 2**24 blocks; lower centroid_fraction")
    widths = np.maximum(1, np.ceil(np.log2(np.maximum(blocks_per_list, 1))).astype(np.int64))
    list_block_bytes = np.concatenate([[0], np.cumsum((widths * per_list + 7) // 8)])
    list_block_bytes = list_block_bytes.astype(np.int64)
    # 4 spare bytes: the reader loads 4 bytes at a time.
    block_bytes = np.zeros(int(list_block_bytes[-1]) + 4, dtype=np.uint8)
    pack_block_ids(list_entries, list_blocks, list_block_bytes, sentry_block, block_bytes)

    clock.mark("summaries")
    term_dtype = _smallest_uint(dim - 1)
    return IndexArrays(
        postings=PostingLists(
            list_blocks=list_blocks,
            block_offsets=block_docs.astype(_offset_dtype(rows.shape[0])),
            postings=rows.astype(np.int32, copy=False),
        ),
        summaries=BlockSummaries(
            block_min=block_min,
            block_scale=block_scale,
            list_terms=list_sterms,
            terms=u_terms[take].astype(term_dtype),
            term_entries=sterm_entries.astype(
                np.uint16 if per_list.max(initial=0) < 1 << 16 else np.uint32
            ),
            list_entries=list_entries,
            codes=sentry_code,
            entry_blocks=block_bytes,
            list_block_bytes=list_block_bytes,
        ),
        forward=_forward_index(fwd_indptr, fwd_indices, fwd_data, dim, row_ids.astype(np.int32)),
    )
