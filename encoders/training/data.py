"""Training texts for CSR from the shared data folder.

Reconstruction: every document of the BEIR folders and of ``vectors/*_docs.txt.gz``, plus
the short texts below. Contrastive pairs: (query, relevant document) from SciFact's
``qrels/train.tsv`` only (a seeded share of those queries is held out as a dev set for model
selection) and pseudo pairs (a document's title or first sentence vs. the rest of it).
Test queries are never read.

Label-free dev set: a seeded share of each BEIR corpus's pseudo queries (titles / first
sentences) is held out of every loss; how well code retrieval for them reproduces the dense
model's top 10 over that corpus ("fidelity") is logged without any judgment, and so is how
much of the variance of those documents' sentences the codes explain ("sentence FVE").

Optionally (``sentence_texts``) every other document's sentences join reconstruction: a model
trained on whole documents only explains in-domain sentences as badly as it explains queries
(both short, neither seen), and queries are where codes lose to the dense model.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from encoders.training.retrieval import COLLECTIONS, doc_text, read_jsonl, read_qrels

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
# Any sentence end, also lower-cased text with a free-standing " . " (Cranfield, MED, CISI).
_ANY_SENTENCE_END = re.compile(r"\s+\.\s+|(?<=[.!?])\s+")


@dataclass
class TrainingTexts:
    """Unique texts to embed once, and row indices into them for each use.

    ``pair_query``/``pair_doc``: rows of (query, positive) pairs; ``pair_labeled``: True for
    real SciFact train judgments; ``pair_group``: an id per positive text (in-batch masking).
    ``dev_*``: held-out SciFact train queries and the SciFact corpus, for model selection.
    ``fidelity[corpus]``: (held-out pseudo-query rows, document rows) of each BEIR corpus;
    ``sentence_dev[corpus]``: sentences of those held-out documents (held out too).
    """

    texts: list[str] = field(default_factory=list)
    recon: list[int] = field(default_factory=list)
    pair_query: list[int] = field(default_factory=list)
    pair_doc: list[int] = field(default_factory=list)
    pair_labeled: list[bool] = field(default_factory=list)
    dev_query_rows: list[int] = field(default_factory=list)
    dev_query_ids: list[str] = field(default_factory=list)
    dev_doc_rows: list[int] = field(default_factory=list)
    dev_doc_ids: list[str] = field(default_factory=list)
    dev_qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    fidelity: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict)
    sentence_dev: dict[str, list[int]] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    text_group: list[int] = field(default_factory=list)
    _row_of: dict[str, int] = field(default_factory=dict, repr=False)

    def start_group(self, name: str) -> None:
        """Texts added from now on belong to source ``name`` (for per-source sampling)."""
        self.groups.append(name)

    def row(self, text: str) -> int:
        """Row of ``text``, adding it on first sight (in the current group)."""
        row = self._row_of.get(text)
        if row is None:
            row = self._row_of[text] = len(self.texts)
            self.texts.append(text)
            self.text_group.append(max(0, len(self.groups) - 1))
        return row

    def add_pseudo_pair(self, head: str, rest: str) -> None:
        if is_pseudo_pair(head, rest):
            self.pair_query.append(self.row(head))
            self.pair_doc.append(self.row(rest))
            self.pair_labeled.append(False)

    def arrays(self) -> dict[str, np.ndarray]:
        """The index lists as int64 / bool arrays; fidelity queries and dev sentences are in
        none of them."""
        held = [r for q, _ in self.fidelity.values() for r in q]
        held = np.asarray(held + [r for rows in self.sentence_dev.values() for r in rows], np.int64)
        pair_query = np.asarray(self.pair_query, np.int64)
        keep = ~np.isin(pair_query, held)
        return {
            "recon": np.setdiff1d(np.asarray(self.recon, np.int64), held),
            "pair_query": pair_query[keep],
            "pair_doc": np.asarray(self.pair_doc, np.int64)[keep],
            "pair_labeled": np.asarray(self.pair_labeled, bool)[keep],
            "group": np.asarray(self.text_group, np.int64),
            "domain_groups": np.asarray(
                [
                    i
                    for i, g in enumerate(self.groups)
                    if g in (*COLLECTIONS, "scifact_train") or g.startswith("queries_")
                ],
                np.int64,
            ),
        }


def is_pseudo_pair(head: str, rest: str) -> bool:
    """A (head, rest) split long enough on both sides to act as a (query, document) pair."""
    return len(head.split()) >= 3 and len(rest.split()) >= 8


def pseudo_query(doc: dict) -> tuple[str, str] | None:
    """``(title or first sentence, rest)`` of a BEIR document, or None."""
    title, body = (doc.get("title") or "").strip(), (doc.get("text") or "").strip()
    if title and body and not body.startswith(title):
        return title, body
    return split_head(body)


def split_head(text: str) -> tuple[str, str] | None:
    """``(first sentence, rest)`` of a text with at least two sentences, else None."""
    parts = _SENTENCE_END.split(text.strip(), maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else None


def split_sentences(text: str, min_words: int = 4) -> list[str]:
    """The sentences of ``text`` with at least ``min_words`` words, in order, or ``[]`` when
    ``text`` is a single sentence. Splitting an abbreviation by mistake only yields a shorter
    training text, so the rule is loose: after ``.!?`` and at a free-standing `` . ``."""
    parts = [p.strip() for p in _ANY_SENTENCE_END.split(text.strip())]
    parts = [p for p in parts if len(p.split()) >= min_words]
    return parts if len(parts) > 1 else []


def read_lines(path: Path, limit: int | None = None) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    lines = [line for line in lines if line]
    return lines[:limit] if limit else lines


def build_training_texts(
    data_dir: str | Path | None,
    *,
    collections: tuple[str, ...] = COLLECTIONS,
    corpus_files: tuple[Path, ...] = (),
    vectors: bool = True,
    dev_fraction: float = 0.2,
    seed: int = 0,
    limit_per_source: int | None = None,
    fidelity_fraction: float = 0.1,
    fidelity_max: int = 200,
    query_texts: bool = False,
    sentence_texts: bool = False,
    sentence_dev_max: int = 300,
    pair_with: str = "rest",
    scifact_dev: bool = False,
) -> TrainingTexts:
    """Collect texts and pairs from ``data_dir`` (the shared ``data`` folder) and
    ``corpus_files`` (one text a line, ``.txt[.gz]``; each file a source).

    ``collections``: the BEIR folders whose documents (and, for SciFact, train judgments)
    are trained on; ``()`` trains on none of them (a general model). ``vectors``: also the
    shared ``vectors/*_docs`` texts. ``limit_per_source`` caps each source (for quick runs
    and tests). ``fidelity_fraction`` (at most ``fidelity_max``) of each source's pseudo
    queries form its fidelity dev set (held out of every loss). ``query_texts``: also
    reconstruct ``vectors/*_queries.txt*`` (real search queries that no CSR number is
    reported on). ``sentence_texts``: also reconstruct each BEIR document's sentences (in its
    corpus's group), except for the fidelity documents, whose sentences (at most
    ``sentence_dev_max`` per corpus) are always held out as ``sentence_dev``.
    ``pair_with``: a corpus file's pseudo pair is (first sentence, ``"rest"`` of the text) or
    (first sentence, the ``"whole"`` text), which needs no extra text embedded.
    ``scifact_dev``: when SciFact is not trained on, every SciFact train query becomes a dev
    query over its corpus (read by the dev log only, in no loss).
    """
    data_dir = Path(data_dir) if data_dir is not None else None
    out = TrainingTexts()
    rng = np.random.default_rng(seed)
    for name in collections:
        folder = data_dir / name if data_dir is not None else Path(name)
        if not (folder / "corpus.jsonl").is_file():
            continue
        docs = read_jsonl(folder / "corpus.jsonl")[:limit_per_source]
        out.start_group(name)
        doc_rows = [out.row(doc_text(doc)) for doc in docs]
        out.recon.extend(doc_rows)
        heads = [(i, parts) for i, doc in enumerate(docs) if (parts := pseudo_query(doc))]
        heads = [(i, parts) for i, parts in heads if is_pseudo_pair(*parts)]
        n_held = min(fidelity_max, int(round(fidelity_fraction * len(heads))))
        held = set(rng.choice(len(heads), size=n_held, replace=False).tolist()) if n_held else set()
        for j, (_, (head, rest)) in enumerate(heads):
            if j not in held:
                out.add_pseudo_pair(head, rest)
        if held:
            queries = [out.row(heads[j][1][0]) for j in sorted(held)]
            out.fidelity[name] = (queries, doc_rows)
        held_docs = {heads[j][0] for j in held}
        dev_sentences = dict.fromkeys(
            s for i in sorted(held_docs) for s in split_sentences(doc_text(docs[i]))
        )
        if dev_sentences:
            out.sentence_dev[name] = [out.row(s) for s in list(dev_sentences)[:sentence_dev_max]]
        if sentence_texts:
            sentences = (
                s
                for i, doc in enumerate(docs)
                if i not in held_docs
                for s in split_sentences(doc_text(doc))
            )
            whole = set(doc_rows)  # a one-line document is its own sentence: counted once
            rows = [r for r in dict.fromkeys(out.row(s) for s in sentences) if r not in whole]
            out.recon.extend(rows)
            out.sources[name + "_sentences"] = len(rows)
        out.sources[name] = len(docs)
    if vectors and data_dir is not None:
        for path in sorted((data_dir / "vectors").glob("*_docs.txt*")):
            add_text_source(out, path.name.split(".")[0], read_lines(path, limit_per_source))
    for path in corpus_files:
        name = Path(path).name.split(".")[0]
        held = fidelity_max if fidelity_fraction > 0 else 0
        lines = read_lines(Path(path), limit_per_source)
        add_text_source(out, name, lines, rng, held, pair_with=pair_with)
    if query_texts and data_dir is not None:
        for path in sorted((data_dir / "vectors").glob("*_queries.txt*")):
            lines = read_lines(path, limit_per_source)
            out.start_group("queries_" + path.name.split(".")[0])
            out.recon.extend(out.row(line) for line in lines)
            out.sources[path.name] = len(lines)
    if "scifact" in collections and data_dir is not None:
        _add_scifact_train(out, data_dir / "scifact", dev_fraction, seed)
    elif scifact_dev and data_dir is not None:
        _add_scifact_train(out, data_dir / "scifact", 1.0, seed)
    # Short texts (titles, first sentences, train queries) teach the query side too.
    out.recon.extend(out.pair_query)
    out.recon.extend(out.pair_doc)
    return out


def add_text_source(
    out: TrainingTexts,
    name: str,
    lines: list[str],
    rng: np.random.Generator | None = None,
    fidelity_max: int = 0,
    fidelity_docs: int = 5000,
    *,
    pair_with: str = "rest",
) -> None:
    """One text a line as a source: every line reconstructed, (first sentence, rest) as a
    pseudo pair (or (first sentence, whole line) with ``pair_with="whole"``); ``fidelity_max``
    of those pairs' first sentences held out as this source's fidelity queries over (at most
    ``fidelity_docs`` of) its texts."""
    if pair_with not in ("rest", "whole"):
        raise ValueError(f"pair_with must be 'rest' or 'whole', got {pair_with!r}")
    out.start_group(name)
    rows = [out.row(line) for line in lines]
    out.recon.extend(rows)
    heads = [
        (parts[0], parts[1] if pair_with == "rest" else line)
        for line in lines
        if (parts := split_head(line)) and is_pseudo_pair(*parts)
    ]
    n_held = min(fidelity_max, len(heads) // 10)
    held = set(rng.choice(len(heads), n_held, replace=False).tolist()) if n_held and rng else set()
    for j, parts in enumerate(heads):
        if j not in held:
            out.add_pseudo_pair(*parts)
    if held:
        docs = rows if len(rows) <= fidelity_docs else rng.choice(rows, fidelity_docs, False)
        out.fidelity[name] = ([out.row(heads[j][0]) for j in sorted(held)], list(docs))
    out.sources[name] = len(lines)


def _add_scifact_train(out: TrainingTexts, folder: Path, dev_fraction: float, seed: int) -> None:
    train_file = folder / "qrels" / "train.tsv"
    if not train_file.is_file():
        return
    qrels = read_qrels(train_file)
    out.start_group("scifact_train")
    queries = {str(q["_id"]): q["text"] for q in read_jsonl(folder / "queries.jsonl")}
    corpus = {str(d["_id"]): doc_text(d) for d in read_jsonl(folder / "corpus.jsonl")}
    qids = sorted(q for q in qrels if q in queries)
    rng = np.random.default_rng(seed)
    n_dev = int(round(dev_fraction * len(qids)))
    dev = set(rng.choice(qids, size=n_dev, replace=False).tolist()) if n_dev else set()
    for qid in qids:
        if qid in dev:
            continue
        for doc_id, grade in qrels[qid].items():
            if grade > 0 and doc_id in corpus:
                out.pair_query.append(out.row(queries[qid]))
                out.pair_doc.append(out.row(corpus[doc_id]))
                out.pair_labeled.append(True)
    if dev:
        out.dev_doc_ids = list(corpus)
        out.dev_doc_rows = [out.row(t) for t in corpus.values()]
        out.dev_query_ids = sorted(dev)
        out.dev_query_rows = [out.row(queries[q]) for q in out.dev_query_ids]
        out.dev_qrels = {q: qrels[q] for q in out.dev_query_ids}
    out.sources["scifact_train_pairs"] = int(sum(out.pair_labeled))
