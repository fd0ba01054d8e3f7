"""Which reader a corpus source needs: a file by its suffix (and, for JSONL and Parquet, by
whether its records carry vectors), a BEIR folder, or an ``ir_datasets`` id."""

from __future__ import annotations

from pathlib import Path

from app.jobs import vector_corpus as vc
from app.jobs.corpus import (
    Corpus,
    IrDatasetsCorpus,
    JsonlCorpus,
    ParquetCorpus,
    TextLinesCorpus,
    beir_corpus_file,
)
from app.jobs.errors import CorpusError


def open_corpus(source: str | Path) -> Corpus:
    """Pick a reader for ``source``: a file by its suffix (and, for JSONL and Parquet, by
    whether its records carry vectors), a BEIR folder, or an ``ir_datasets`` id.

    Raises :class:`CorpusError` when the path exists but is of no known kind, or when it looks
    like a path that does not exist.
    """
    text = str(source)
    path = Path(text)
    if path.is_dir():
        corpus_file = beir_corpus_file(path)
        if corpus_file is None:
            raise CorpusError(f"{path}: a folder must be a BEIR dataset with corpus.jsonl[.gz]")
        return JsonlCorpus(str(corpus_file))
    if path.is_file():
        name = path.name.lower()
        if name.endswith((".jsonl", ".jsonl.gz", ".json", ".ndjson")):
            return vc.JsonVectorCorpus(text) if vc.peek_json_vectors(path) else JsonlCorpus(text)
        if name.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            names = set(pq.ParquetFile(text).schema_arrow.names)
            if {"indices", "values"} <= names:
                return vc.ParquetVectorCorpus(text)
            return ParquetCorpus(text)
        if name.endswith(".csr"):
            return vc.CsrFileCorpus(text)
        if name.endswith((".txt", ".txt.gz", ".tsv")) or name.endswith(".gz"):
            return TextLinesCorpus(text)
        raise CorpusError(
            f"{path}: unknown corpus format (use .jsonl[.gz], .parquet, .txt[.gz], .csr, "
            "a BEIR folder or an ir_datasets id)"
        )
    if text.startswith((".", "/", "~")) or path.suffix in {".jsonl", ".parquet", ".txt", ".gz",
                                                            ".csr"}:  # fmt: skip
        raise CorpusError(f"{text}: no such file or folder")
    return IrDatasetsCorpus(text)
