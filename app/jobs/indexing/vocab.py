"""Vocabularies of precomputed vectors: how a token key such as ``"apple"`` becomes a column.

Vectors written as ``{token: weight}`` (Anserini JsonVectorCollection, Seismic jsonl) need a
token -> column map; vectors given as column ids (big-ann ``.csr``, Parquet ``indices`` /
``values``) do not. ``lsr index --vocab`` picks one of:

``encoder``  the encoder's own word pieces (``--encoder NAME``, the default with a model):
             the index then answers that encoder's queries; an unknown token is an error.
``ids``      every key is a column number written as a string (``"2057"``); the default
             with ``--encoder none``.
``build``    columns are given to tokens in order of first appearance; the list is saved
             as ``vocab.json`` beside the shards and the index (and into a published
             collection), so queries can be mapped the same way.
``FILE``     a fixed vocabulary: ``vocab.txt`` (one token a line, BERT's layout) or a JSON
             list of tokens; column = position.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from app.jobs.errors import CorpusError
from app.storage.vectors import MAX_DIM, VectorError, checked_csr

VOCAB_NAME = "vocab.json"
VOCAB_MODES = ("encoder", "ids", "build")


class Vocabulary:
    """token -> column. ``tokens`` is the column order (None for ``ids``); ``growable``
    vocabularies (``build``) add unseen tokens, the others reject them."""

    def __init__(
        self, kind: str, tokens: Sequence[str] | None = None, growable: bool = False
    ) -> None:
        self.kind = kind
        self.growable = growable
        self.tokens: list[str] | None = None if tokens is None else list(tokens)
        self._columns: dict[str, int] = {}
        if self.tokens is not None:
            for col, token in enumerate(self.tokens):
                self._columns.setdefault(token, col)

    @classmethod
    def ids(cls) -> Vocabulary:
        return cls("ids")

    @classmethod
    def of_encoder(cls, encoder: Any) -> Vocabulary:
        return cls("encoder", list(encoder.feature_names))

    @classmethod
    def build(cls, tokens: Sequence[str] = ()) -> Vocabulary:
        return cls("build", tokens, growable=True)

    @classmethod
    def from_file(cls, path: Path) -> Vocabulary:
        """A ``.json`` list of tokens, or a text file of one token a line."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CorpusError(f"vocabulary file {Path(path).name}: cannot be read ({exc})") from exc
        if Path(path).suffix == ".json":
            try:
                tokens = json.loads(text)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"vocabulary {Path(path).name}: not JSON ({exc.msg})") from exc
            if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                raise CorpusError(f"vocabulary {Path(path).name}: expected a JSON list of tokens")
        else:
            tokens = text.splitlines()
        if not tokens or len(tokens) > MAX_DIM:
            raise CorpusError(
                f"vocabulary {Path(path).name}: {len(tokens)} tokens; need 1..{MAX_DIM}"
            )
        return cls("file", tokens)

    @property
    def dim(self) -> int | None:
        """The fixed width (None while it can still grow, or for ``ids``)."""
        return None if self.growable or self.tokens is None else len(self.tokens)

    def column(self, token: str, doc_id: str) -> int:
        """The column of ``token``; unknown tokens are added (``build``) or an error."""
        col = self._columns.get(token)
        if col is not None:
            return col
        if self.tokens is None:  # ids: the key is the column
            if not (token.isascii() and token.isdigit()):
                raise VectorError(
                    f"document {doc_id!r}: key {token[:40]!r} is not a column number; for "
                    "token keys use --vocab build, --vocab FILE or --encoder NAME"
                )
            col = int(token)
            if col >= MAX_DIM:
                raise VectorError(f"document {doc_id!r}: column {token[:40]} is >= {MAX_DIM}")
            return col
        if not self.growable:
            raise VectorError(
                f"document {doc_id!r}: token {token[:40]!r} is not in the {self.kind} vocabulary"
            )
        if len(self.tokens) >= MAX_DIM:
            raise VectorError(f"the vocabulary is full ({MAX_DIM} tokens)")
        col = len(self.tokens)
        self.tokens.append(token)
        self._columns[token] = col
        return col

    def save(self, path: Path) -> None:
        from app.storage.files import write_bytes_atomic

        write_bytes_atomic(path, json.dumps(self.tokens, ensure_ascii=False).encode("utf-8"))


def load_saved(path: Path) -> list[str]:
    """Tokens saved by :meth:`Vocabulary.save` (empty when there is no file yet)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def vectors_to_csr(
    doc_ids: Sequence[str], vectors: Sequence[Any], vocab: Vocabulary, dim: int | None
) -> sparse.csr_array:
    """Rows of given vectors, validated: each vector is ``{token: weight}`` or a pair of
    (column ids, weights) arrays. ``dim`` None: the width is the largest column + 1 so far
    (bounded by ``MAX_DIM``). Raises :class:`VectorError` naming the document."""
    lengths = np.zeros(len(vectors), np.int64)
    cols: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for i, (doc_id, vector) in enumerate(zip(doc_ids, vectors, strict=True)):
        if isinstance(vector, Mapping):
            c = np.fromiter((vocab.column(t, doc_id) for t in vector), np.int64, len(vector))
            w = np.fromiter(vector.values(), np.float64, len(vector))
        else:
            c, w = vector
        lengths[i] = len(c)
        cols.append(np.asarray(c))
        weights.append(np.asarray(w))
    indptr = np.zeros(len(vectors) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    idx = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    val = np.concatenate(weights) if weights else np.zeros(0, np.float32)
    width = dim
    if width is None:
        width = MAX_DIM if vocab.tokens is None else max(len(vocab.tokens), 1)
    return checked_csr(indptr, idx, val, width, doc_ids)
