"""Streaming corpus readers: JSONL, Parquet, a BEIR folder, plain text or an ``ir_datasets`` id.

Every reader yields :class:`Document` records one at a time, in a stable order, so a batch job
can skip the documents it has already encoded and never holds the whole corpus in memory.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from app.jobs.errors import CorpusError
from app.jobs.irds import iter_ir_dataset, load_ir_dataset

ID_FIELDS = ("_id", "id", "doc_id", "docid")
TEXT_FIELDS = ("text", "contents", "body")
PARQUET_BATCH_ROWS = 4096


# A precomputed vector: {token: weight}, or (column ids, weights) arrays.
RawVector = dict[str, float] | tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Document:
    """One corpus entry: ``doc_id`` is the external string id, ``text`` what the encoder reads;
    ``vector`` is set (and ``text`` empty) when the source carries precomputed vectors."""

    doc_id: str
    text: str
    vector: RawVector | None = field(default=None, compare=False)


def join_title(title: str | None, text: str) -> str:
    """BEIR convention: title, a space, then the body (the title alone when the body is empty)."""
    title = (title or "").strip()
    if not title:
        return text
    return f"{title} {text}" if text else title


def open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")  # noqa: SIM115 - the caller closes it


def pick(record: dict[str, Any], fields: tuple[str, ...]) -> Any:
    for name in fields:
        if name in record and record[name] is not None:
            return record[name]
    return None


def _record_to_document(record: dict[str, Any], where: str) -> Document:
    doc_id = pick(record, ID_FIELDS)
    if doc_id is None or str(doc_id) == "":
        raise CorpusError(f"{where}: no document id (expected one of {', '.join(ID_FIELDS)})")
    text = pick(record, TEXT_FIELDS)
    if text is None:
        raise CorpusError(f"{where}: document {doc_id!r} has no text (expected a 'text' field)")
    if not isinstance(text, str):
        raise CorpusError(f"{where}: document {doc_id!r} has a non-string text field")
    title = record.get("title")
    return Document(str(doc_id), join_title(title if isinstance(title, str) else None, text))


class Corpus:
    """A re-iterable, streaming view of a document source (``count`` may need one pass)."""

    kind: str = "corpus"
    has_vectors: bool = False  # documents carry precomputed vectors (never encoded)
    dim: int | None = None  # the vectors' width, when the source states it

    def __init__(self, source: str) -> None:
        self.source = source

    def __iter__(self) -> Iterator[Document]:
        raise NotImplementedError

    def count(self) -> int:
        """The number of documents (one cheap pass for line-based files)."""
        return sum(1 for _ in self)

    def iter_from(self, start: int) -> Iterator[Document]:
        """The documents from position ``start`` on (earlier ones are read and dropped)."""
        return islice(iter(self), start, None)

    def describe(self) -> dict[str, str]:
        """A fingerprint of the source, stored in job manifests to detect a changed corpus."""
        out = {"kind": self.kind, "source": self.source}
        path = Path(self.source)
        if path.exists():
            stat = path.stat()
            out["size"] = str(stat.st_size)
        return out


class JsonLinesSource(Corpus):
    """A file of one JSON object per line (``.gz`` too); subclasses make documents of them."""

    def records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(where, record)`` per non-blank line; ``where`` is ``FILE:LINE`` for errors."""
        path = Path(self.source)
        with open_text(path) as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{line_no}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CorpusError(f"{where}: not valid JSON ({exc.msg})") from exc
                if not isinstance(record, dict):
                    raise CorpusError(f"{where}: expected a JSON object per line")
                yield where, record

    def count(self) -> int:
        with open_text(Path(self.source)) as handle:
            return sum(1 for line in handle if line.strip())


class JsonlCorpus(JsonLinesSource):
    """One JSON object per line: ``_id``/``id``, optional ``title``, ``text`` (``.gz`` too)."""

    kind = "jsonl"

    def __iter__(self) -> Iterator[Document]:
        for where, record in self.records():
            yield _record_to_document(record, where)


class TextLinesCorpus(Corpus):
    """One text per line (``.txt`` or ``.txt.gz``); the id is the 0-based line number."""

    kind = "text"

    def __iter__(self) -> Iterator[Document]:
        with open_text(Path(self.source)) as handle:
            for line_no, line in enumerate(handle):
                yield Document(str(line_no), line.rstrip("\r\n"))

    def count(self) -> int:
        with open_text(Path(self.source)) as handle:
            return sum(1 for _ in handle)


class ParquetCorpus(Corpus):
    """A Parquet file: an id column (``_id``/``id``/``doc_id``), ``text``, optional ``title``."""

    kind = "parquet"

    def _columns(self) -> tuple[str, str, str | None]:
        import pyarrow.parquet as pq

        names = pq.ParquetFile(self.source).schema_arrow.names
        id_col = next((n for n in ID_FIELDS if n in names), None)
        text_col = next((n for n in TEXT_FIELDS if n in names), None)
        if id_col is None or text_col is None:
            raise CorpusError(
                f"{self.source}: Parquet needs an id column ({', '.join(ID_FIELDS)}) and a text "
                f"column ({', '.join(TEXT_FIELDS)}); found {names}"
            )
        return id_col, text_col, "title" if "title" in names else None

    def __iter__(self) -> Iterator[Document]:
        import pyarrow.parquet as pq

        id_col, text_col, title_col = self._columns()
        columns = [c for c in (id_col, text_col, title_col) if c]
        parquet = pq.ParquetFile(self.source)
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
            ids = batch.column(id_col).to_pylist()
            texts = batch.column(text_col).to_pylist()
            titles = batch.column(title_col).to_pylist() if title_col else [None] * len(ids)
            for doc_id, text, title in zip(ids, texts, titles, strict=True):
                yield _record_to_document(
                    {"_id": doc_id, "text": text, "title": title}, self.source
                )

    def count(self) -> int:
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(self.source).metadata.num_rows)


class IrDatasetsCorpus(Corpus):
    """The documents of an ``ir_datasets`` id (needs the package, and the network on first use)."""

    kind = "ir_datasets"

    def __iter__(self) -> Iterator[Document]:
        for doc in iter_ir_dataset(self.source, "docs"):
            text = getattr(doc, "text", None) or getattr(doc, "body", None) or ""
            yield Document(str(doc.doc_id), join_title(getattr(doc, "title", None), text))

    def count(self) -> int:
        return int(load_ir_dataset(self.source).docs_count() or 0)

    def describe(self) -> dict[str, str]:
        return {"kind": self.kind, "source": self.source}


def beir_corpus_file(folder: Path) -> Path | None:
    """The corpus file of a BEIR folder (``corpus.jsonl`` or ``corpus.jsonl.gz``), if any."""
    for name in ("corpus.jsonl", "corpus.jsonl.gz"):
        if (folder / name).is_file():
            return folder / name
    return None
