"""Evaluation datasets: a local BEIR folder, a BEIR name (zip download), or an ``ir_datasets`` id.

Only judged queries are kept (those with at least one judgment), as trec_eval does.
"""

from __future__ import annotations

import csv
import json
import os
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from app.jobs.corpus import Corpus, IrDatasetsCorpus, JsonlCorpus, beir_corpus_file
from app.jobs.errors import CorpusError, DatasetUnavailableError
from app.jobs.evaluation.metrics import Qrels
from app.jobs.irds import iter_ir_dataset

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
BEIR_NAMES = frozenset(
    {
        "msmarco", "trec-covid", "nfcorpus", "nq", "hotpotqa", "fiqa", "arguana",
        "webis-touche2020", "cqadupstack", "quora", "dbpedia-entity", "scidocs", "fever",
        "climate-fever", "scifact", "bioasq", "signal1m", "trec-news", "robust04",
    }
)  # fmt: skip


def default_cache_dir() -> Path:
    """Where downloaded BEIR zips are unpacked (``$LSR_DATA_DIR`` or ``~/.cache/lsr/beir``)."""
    return Path(os.environ.get("LSR_DATA_DIR", Path.home() / ".cache" / "lsr")) / "beir"


@dataclass
class EvalDataset:
    """Documents (streamed), judged queries and their judgments."""

    name: str
    corpus: Corpus
    queries: dict[str, str]
    qrels: Qrels
    n_queries_total: int = 0
    meta: dict[str, str] = field(default_factory=dict)


def read_qrels_tsv(path: Path) -> Qrels:
    """BEIR qrels: ``query-id  corpus-id  score`` with a header line."""
    qrels: Qrels = {}
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for line_no, row in enumerate(reader, start=1):
            if not row or (line_no == 1 and not row[-1].strip().lstrip("-").isdigit()):
                continue
            if len(row) < 3:
                raise CorpusError(f"{path}:{line_no}: expected query-id, corpus-id, score")
            try:
                score = int(row[-1])
            except ValueError as exc:
                raise CorpusError(f"{path}:{line_no}: score {row[-1]!r} is not an integer") from exc
            qrels.setdefault(row[0], {})[row[1]] = score
    return qrels


def read_queries_jsonl(path: Path) -> dict[str, str]:
    queries = {}
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                queries[str(record["_id"])] = record["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise CorpusError(f"{path}:{line_no}: expected {{'_id', 'text'}} ({exc})") from exc
    return queries


def judged_only(queries: dict[str, str], qrels: Qrels) -> tuple[dict[str, str], Qrels]:
    """Keep queries that have judgments, and judgments of queries that have text."""
    kept = {qid: text for qid, text in queries.items() if qid in qrels}
    return kept, {qid: qrels[qid] for qid in kept}


def load_beir_folder(folder: Path, split: str = "test") -> EvalDataset:
    """A BEIR folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``."""
    corpus_file = beir_corpus_file(folder)
    qrels_file = folder / "qrels" / f"{split}.tsv"
    queries_file = folder / "queries.jsonl"
    missing = [
        str(p)
        for p in (corpus_file or folder / "corpus.jsonl", queries_file, qrels_file)
        if not p.is_file()
    ]
    if missing:
        raise CorpusError(f"{folder} is not a BEIR folder with split {split!r}: missing {missing}")
    all_queries = read_queries_jsonl(queries_file)
    queries, qrels = judged_only(all_queries, read_qrels_tsv(qrels_file))
    if not queries:
        raise CorpusError(f"{folder}: no judged queries in split {split!r}")
    return EvalDataset(
        name=folder.name,
        corpus=JsonlCorpus(str(corpus_file)),
        queries=queries,
        qrels=qrels,
        n_queries_total=len(all_queries),
        meta={"source": str(folder), "split": split},
    )


def download_beir(name: str, cache_dir: Path | None = None) -> Path:
    """The unpacked BEIR folder of ``name``, downloading its zip on first use.

    Raises :class:`DatasetUnavailableError` when the download is impossible (no network).
    """
    cache_dir = cache_dir or default_cache_dir()
    folder = cache_dir / name
    if beir_corpus_file(folder) is not None:
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    url = BEIR_URL.format(name=name)
    zip_path = cache_dir / f"{name}.zip"
    tmp = zip_path.with_suffix(".zip.part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(tmp, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise DatasetUnavailableError(
            f"BEIR dataset {name!r} is not in {cache_dir} and downloading it from {url} needs "
            f"the network, which is not reachable here ({exc}). Download and unzip it on a "
            f"machine with the network, then pass the folder: --dataset /path/to/{name}"
        ) from exc
    os.replace(tmp, zip_path)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(cache_dir)
    zip_path.unlink()
    return folder


def load_ir_datasets(dataset_id: str) -> EvalDataset:
    """Queries and qrels of an ``ir_datasets`` id; documents stream from its docs store."""
    all_queries = {str(q.query_id): q.text for q in iter_ir_dataset(dataset_id, "queries")}
    qrels: Qrels = {}
    for qrel in iter_ir_dataset(dataset_id, "qrels"):
        qrels.setdefault(str(qrel.query_id), {})[str(qrel.doc_id)] = int(qrel.relevance)
    queries, qrels = judged_only(all_queries, qrels)
    return EvalDataset(
        name=dataset_id.replace("/", "_"),
        corpus=IrDatasetsCorpus(dataset_id),
        queries=queries,
        qrels=qrels,
        n_queries_total=len(all_queries),
        meta={"source": f"ir_datasets:{dataset_id}"},
    )


def load_eval_dataset(dataset: str, split: str = "test") -> EvalDataset:
    """Resolve ``dataset``: a local folder, ``NAME``/``beir/NAME`` of BEIR, else ``ir_datasets``."""
    path = Path(dataset).expanduser()
    if path.is_dir():
        return load_beir_folder(path, split)
    if path.exists():
        raise CorpusError(f"{dataset}: --dataset takes a BEIR folder, not a file")
    if dataset.startswith((".", "/", "~")):
        raise CorpusError(f"{dataset}: no such folder")
    parts = dataset.split("/")
    if len(parts) <= 2 and parts[-1] in BEIR_NAMES and parts[0] in ("beir", parts[-1]):
        return load_beir_folder(download_beir(parts[-1]), split)
    return load_ir_datasets(dataset)
