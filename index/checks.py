"""Cheap consistency checks of a loaded index, so that a bad one fails at load with
:class:`index.storage.IndexFormatError`, never inside a kernel."""

from __future__ import annotations

import numpy as np

from index.block_max import check_block_max
from index.layout import IndexArrays
from index.storage import IndexFormatError


def check_structure(a: dict[str, np.ndarray], n_docs: int, dim: int, path: object) -> None:
    """Cheap consistency checks so that a bad index fails here, not inside a kernel."""
    problems = []
    if a["postings.list_blocks"].shape != (dim + 1,):
        problems.append("per-term block offsets do not match dim")
    for name in ("summaries.list_terms", "summaries.list_entries", "summaries.list_block_bytes"):
        if a[name].shape != (dim + 1,):
            problems.append(f"{name} does not match dim")
    if a["forward.offsets"].shape != (n_docs + 1,):
        problems.append("forward offsets do not match n_docs")
    n_blocks = a["summaries.block_min"].shape[0]
    if a["postings.block_offsets"].shape != (n_blocks + 1,) or a["summaries.block_scale"].shape != (
        n_blocks,
    ):
        problems.append("block arrays disagree")
    ends = [
        ("postings.list_blocks", n_blocks),
        ("postings.block_offsets", a["postings.postings"].shape[0]),
        ("summaries.list_terms", a["summaries.terms"].shape[0]),
        ("summaries.list_entries", a["summaries.codes"].shape[0]),
        ("summaries.list_block_bytes", a["summaries.entry_blocks"].shape[0] - 4),
        ("forward.offsets", max(a["forward.packed"].shape[0], a["forward.terms"].shape[0])),
    ]
    for name, end in ends:
        off = a[name]
        if off.shape[0] == 0 or off[0] != 0 or off[-1] != end or np.any(np.diff(off) < 0):
            problems.append(f"{name} is not a valid offsets array")
    if a["summaries.term_entries"].shape != a["summaries.terms"].shape:
        problems.append("summaries.term_entries length")
    if a["forward.values"].shape != a["forward.terms"].shape:
        problems.append("forward values disagree with their terms")
    if a["forward.packed"].size and a["forward.terms"].size:
        problems.append("forward index stored twice")
    if a["forward.packed"].size and int(a["forward.packed"].max() >> 16) >= dim:
        problems.append("forward.packed terms out of range")
    rows = a["forward.doc_rows"]
    if rows.shape != (n_docs,):
        problems.append("forward.doc_rows does not match n_docs")
    elif n_docs and (rows.min() < 0 or rows.max() >= n_docs):
        problems.append("forward.doc_rows out of range")
    postings = a["postings.postings"]
    if postings.size and (postings.min() < 0 or postings.max() >= n_docs):
        problems.append("posting rows out of range")
    for name in ("forward.terms", "summaries.terms"):
        if a[name].size and int(a[name].max()) >= dim:
            problems.append(f"{name} out of range")
    problems += check_block_max(IndexArrays.from_flat(a).block_max, n_docs, dim)
    if problems:
        raise IndexFormatError(f"{path}: inconsistent index ({'; '.join(problems)})")
