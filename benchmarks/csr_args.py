"""What the CSR benchmarks (``bench_csr.py``, ``bench_csr_adapt.py``) share: the model, data,
collections, ``k`` values, device and embedding-cache arguments, and reading that cache."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from encoders.training.retrieval import COLLECTIONS

ROOT = Path(__file__).resolve().parents[1]


def add_csr_eval_args(p: argparse.ArgumentParser) -> None:
    """``--model --data-dir --collections --ks --device --embeddings-cache --normalize``."""
    p.add_argument("--model", type=Path, default=ROOT / "encoders" / "models" / "csr-minilm")
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--collections", nargs="+", default=list(COLLECTIONS))
    p.add_argument("--ks", type=int, nargs="+", default=[16, 32, 64, 128])
    p.add_argument("--device", default="auto")
    p.add_argument("--embeddings-cache", type=Path, default=None, help="npz of dense embeddings")
    p.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="codes scaled to unit length or not (default: the model's own setting)",
    )


def load_embedding_cache(path: Path | None) -> dict[str, np.ndarray]:
    """The arrays of an embedding cache (``{collection}/docs`` ...), empty when there is none."""
    if path is None or not path.is_file():
        return {}
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
