"""Where ``bench_index.py``'s documents, queries and (optionally) ground truth come from.

``--dataset packages|docstring``: the shared SPLADE shards. ``--docs``/``--queries``: a
scipy ``.npz``, a pyseismic ``.jsonl`` (``vector`` token -> weight per line; both files
then share one token vocabulary) or a big-ann ``.csr`` file, with ``--gt`` a big-ann
ground-truth file. ``--generate N``: synthetic Zipf vectors.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from index.bigann import read_csr, read_gt
from index.vectors import load_vector_shards


@dataclass
class Inputs:
    """Documents, queries and, when a file gives it, the exact top-k row ids."""

    name: str
    docs: sp.csr_array
    queries: sp.csr_array
    truth: np.ndarray | None = None
    truth_source: str = "exact_search"


def read_jsonl(path: Path, vocab: dict[str, int]) -> sp.csr_array:
    """pyseismic's jsonl (``{"id", "content", "vector": {token: weight}}`` per line)."""
    indptr, indices, data = [0], [], []
    with open(path) as f:
        for line in f:
            vec = json.loads(line)["vector"]
            cols = [vocab.setdefault(tok, len(vocab)) for tok in vec]
            order = np.argsort(cols)
            indices.extend(np.asarray(cols, dtype=np.int64)[order].tolist())
            data.extend(np.asarray(list(vec.values()), dtype=np.float32)[order].tolist())
            indptr.append(len(indices))
    return sp.csr_array(
        (np.asarray(data, np.float32), np.asarray(indices, np.int32), np.asarray(indptr, np.int64))
    )


def read_matrix(path: Path, vocab: dict[str, int]) -> sp.csr_array:
    """One documents or queries file, by its suffix."""
    if path.suffix == ".jsonl":
        return read_jsonl(path, vocab)
    if path.suffix == ".csr":
        return read_csr(path).to_scipy()
    if path.suffix == ".npz":
        return sp.csr_array(sp.load_npz(path))
    raise ValueError(f"{path}: expected a .npz, .jsonl or big-ann .csr file")


def load_truth(path: Path, n_queries: int, k: int) -> np.ndarray:
    """The first ``k`` ids per query of a big-ann ground-truth file, as int64 rows."""
    ids, _ = read_gt(path)
    if ids.shape[0] != n_queries:
        raise ValueError(
            f"{path}: ground truth for {ids.shape[0]} queries, the queries file has {n_queries}"
        )
    if ids.shape[1] < k:
        raise ValueError(f"{path}: ground truth has k = {ids.shape[1]}, need at least {k}")
    return np.asarray(ids[:, :k], dtype=np.int64)


def load_inputs(args: argparse.Namespace, k: int) -> Inputs:
    """Read what the command line names; ``--n-queries`` keeps the first N queries."""
    if args.dataset:
        vec_dir = Path(args.vectors_dir)
        inputs = Inputs(
            args.dataset,
            load_vector_shards(vec_dir, f"{args.dataset}_docs"),
            load_vector_shards(vec_dir, f"{args.dataset}_queries"),
        )
    elif args.generate:
        from tests.index.conftest import zipf_splade

        inputs = Inputs(
            f"generated{args.generate}",
            zipf_splade(args.generate, 30522, 60, seed=1, f16=False),
            zipf_splade(args.n_queries or 500, 30522, 25, seed=2, f16=False),
        )
    else:
        docs_path, queries_path = Path(args.docs), Path(args.queries)
        if (docs_path.suffix == ".jsonl") != (queries_path.suffix == ".jsonl"):
            raise ValueError(
                "a .jsonl file names tokens by string: give documents and queries both as .jsonl"
            )
        vocab: dict[str, int] = {}
        mats = [read_matrix(p, vocab) for p in (docs_path, queries_path)]
        dim = len(vocab) if vocab else max(m.shape[1] for m in mats)
        docs, queries = (
            sp.csr_array((m.data, m.indices, m.indptr), shape=(m.shape[0], dim)) for m in mats
        )
        inputs = Inputs(docs_path.stem, docs, queries)
        if args.gt:
            inputs.truth = load_truth(Path(args.gt), queries.shape[0], k)
            inputs.truth_source = f"file {args.gt}"
    if args.n_queries and args.n_queries < inputs.queries.shape[0]:
        inputs.queries = inputs.queries[: args.n_queries]
        if inputs.truth is not None:
            inputs.truth = inputs.truth[: args.n_queries]
    return inputs
