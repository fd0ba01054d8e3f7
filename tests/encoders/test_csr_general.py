"""The general CSR pipeline: a broad corpus with no evaluation text, general / leave-one-out
training texts, and the evaluation table."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from encoders.training.corpus import (
    collection_shingles,
    dictd_entries,
    shingles,
    wordnet_glosses,
)
from encoders.training.data import build_training_texts
from encoders.training.retrieval import doc_text, read_jsonl


def _write_lines(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in lines)
    return path


def test_a_shared_ten_word_window_is_contamination(shared_data) -> None:
    banned = collection_shingles(shared_data, ["cranfield"])
    doc = doc_text(read_jsonl(shared_data / "cranfield" / "corpus.jsonl")[7])
    window = " ".join(doc.split()[5:16])
    assert shingles(f"Quoted: {window.upper()}!") & banned
    assert not shingles("a dictionary definition of the word wing as used in birds") & banned


def test_dictd_and_wordnet_readers(tmp_path) -> None:
    entry = b'Epigram \\Ep"i*gram\\, n. [L.]\n   1. A short poem. --Shak.\n   [1913 Webster]\n'
    with gzip.open(tmp_path / "t.dict.dz", "wb") as fh:
        fh.write(entry)
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    length = b64[len(entry) // 64] + b64[len(entry) % 64]  # dictd's base-64 numbers
    (tmp_path / "t.index").write_text(f"00-database-info\tA\tB\nepigram\tA\t{length}\n")
    assert list(dictd_entries(tmp_path / "t.dict.dz", tmp_path / "t.index", 3)) == [
        "Epigram , n. [L.] 1. A short poem."
    ]
    header = "  1 This software and database is being provided | licence\n"
    synset = "02084071 05 n 02 dog 0 domestic_dog 0 000 | a member of the genus Canis\n"
    for pos in ("noun", "verb", "adj", "adv"):
        (tmp_path / f"data.{pos}").write_text(header + (synset if pos == "noun" else ""))
    assert list(wordnet_glosses(tmp_path)) == ["dog, domestic dog: a member of the genus Canis"]


def test_general_texts_hold_no_collection_text(beir_folder, tmp_path) -> None:
    """No collection, no vectors: only the corpus files, each a source with held-out
    fidelity pseudo queries; no SciFact judgment is read."""
    prose = [
        f"Topic {i} opens here with words. It goes on for a while after that." for i in range(40)
    ]
    files = (
        _write_lines(tmp_path / "prose.txt.gz", prose),
        _write_lines(tmp_path / "short.txt.gz", ["one line", "another line"]),
    )
    data = build_training_texts(beir_folder, collections=(), vectors=False, corpus_files=files)
    assert data.sources == {"prose": 40, "short": 2}
    docs = {doc_text(d) for d in read_jsonl(beir_folder / "scifact" / "corpus.jsonl")}
    assert not docs & set(data.texts) and "does aspirin help pain" not in data.texts
    assert not any(data.pair_labeled) and not data.dev_query_rows
    queries, doc_rows = data.fidelity["prose"]
    held = set(queries)
    arrays = data.arrays()
    assert held and not held & set(arrays["recon"].tolist()) and len(doc_rows) == 40
    assert not held & set(arrays["pair_query"].tolist())


def test_whole_text_pairs_and_scifact_train_queries_as_dev_only(beir_folder, tmp_path) -> None:
    """``pair_with="whole"`` pairs a first sentence with its own line (nothing new to embed);
    ``scifact_dev`` makes every SciFact train query a dev query, in no loss."""
    line = "Topic opens here with words. It goes on for a while after that, and on."
    files = (_write_lines(tmp_path / "prose.txt.gz", [line]),)
    options = {"collections": (), "vectors": False, "corpus_files": files, "fidelity_fraction": 0}
    data = build_training_texts(beir_folder, pair_with="whole", scifact_dev=True, **options)
    assert [data.texts[r] for r in data.pair_doc] == [line]
    assert data.texts[data.pair_query[0]] == "Topic opens here with words."
    assert data.dev_query_ids == ["q1"] and not any(data.pair_labeled)
    assert "SECRET TEST" not in data.texts
    assert not set(data.dev_doc_rows) & set(data.arrays()["recon"].tolist())
    rest = build_training_texts(beir_folder, **options)
    assert rest.texts[rest.pair_doc[0]] != line and not rest.dev_query_ids
    with pytest.raises(ValueError, match="pair_with"):
        build_training_texts(beir_folder, pair_with="half", **options)


def test_leave_one_out_drops_that_collection_and_its_judgments(beir_folder) -> None:
    cran = beir_folder / "cranfield"
    cran.mkdir()
    (cran / "corpus.jsonl").write_text(json.dumps({"_id": "c1", "text": "Flow over a wing."}))
    kept = build_training_texts(beir_folder, collections=("cranfield",), vectors=False)
    assert "Flow over a wing." in kept.texts and not any(kept.pair_labeled)
    both = build_training_texts(beir_folder, collections=("scifact", "cranfield"), vectors=False)
    assert any(both.pair_labeled)


def test_general_recipe_and_corpus_flags(tmp_path) -> None:
    from encoders.training.train_csr import corpus_files, parse_args

    args = parse_args(["--recipe", "general", "--data-dir", "d", "--out", "o", "--eval"])
    assert args.collections == [] and not args.vectors and args.domain_weight == 0.0 and args.eval
    _write_lines(tmp_path / "b.txt.gz", ["x"])
    _write_lines(tmp_path / "a.txt.gz", ["y"])
    (tmp_path / "card.json").write_text("{}")
    assert [p.name for p in corpus_files([tmp_path])] == ["a.txt.gz", "b.txt.gz"]


def test_evaluation_table_marks_training_collections(beir_folder) -> None:
    """Dense, CSR at each k and BM25 per collection, with whether it was trained on."""
    import torch

    from encoders.csr import CSREncoder, CSRSettings
    from encoders.csr_sae import SAEConfig, TopKSAE
    from encoders.training.evaluate import evaluate, format_table

    class HashEmbedder:  # stands in for MiniLM: bag of hashed words, unit norm
        def embed(self, texts, progress=False):
            out = np.zeros((len(texts), 16), np.float32)
            for i, text in enumerate(texts):
                for word in text.lower().split():
                    out[i, sum(map(ord, word)) % 16] += 1
            return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    torch.manual_seed(0)
    sae = TopKSAE(SAEConfig(16, 64, 8))
    enc = CSREncoder(sae, CSRSettings(default_k=8), embedder=HashEmbedder(), device="cpu")
    result = evaluate(enc, beir_folder, ["scifact"], (4, 8, 64), in_training=["scifact"])
    row = result["collections"]["scifact"]
    assert result["ks"] == [4, 8] and row["in_training"] and 0 <= row["bm25"] <= 1
    assert {"dense", "csr_k4", "csr_k8", "ratio_k8"} <= set(row)
    assert "scifact" in format_table(result)
    # The served setting: documents at default_k, queries at query_k (here both 8).
    assert (row["served_doc_k"], row["served_query_k"]) == (8, 8)
    assert row["csr_served"] == row["csr_k8"] and "mean_ratio_served" in result["summary"]


@pytest.mark.parametrize("name", ["wordnet", "gcide"])
def test_system_dictionaries_parse_when_installed(name) -> None:
    """The Debian dictionaries the corpus reads (skipped where they are not installed)."""
    from itertools import islice

    dictd = Path("/usr/share/dictd")
    if name == "wordnet":
        if not Path("/usr/share/wordnet/data.noun").is_file():
            pytest.skip("wordnet-base not installed")
        texts = list(islice(wordnet_glosses(), 200))
    else:
        if not (dictd / "gcide.index").is_file():
            pytest.skip("dict-gcide not installed")
        entries = dictd_entries(dictd / "gcide.dict.dz", dictd / "gcide.index")
        texts = list(islice(entries, 200))
    assert len(texts) == 200 and all(": " in t or " , " in t or len(t) > 10 for t in texts)
    assert not any("[1913 Webster]" in t for t in texts)


def test_corpus_sample_is_seeded_and_chunked(tmp_path) -> None:
    from encoders.training import sample_corpus

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in sample_corpus.MIX:
        _write_lines(corpus / f"{name}.txt.gz", [f"{name} text {i}" for i in range(3000)])
    one = sample_corpus.sample(corpus, 1)
    two = sample_corpus.sample(corpus, 2)
    for name, n in sample_corpus.MIX.items():
        assert len(one[name]) == n and two[name][:n] == one[name]
    assert one["gcide"] != [f"gcide text {i}" for i in range(1000)]  # shuffled
    chunk = sample_corpus.chunk_texts(two, 1)
    assert len(chunk) == sum(sample_corpus.MIX.values())
    assert chunk[0] == ("docstrings", two["docstrings"][800])
    assert (
        sample_corpus.main(["--corpus", str(corpus), "--out", str(tmp_path / "s"), "--chunks", "1"])
        == 0
    )
    assert json.loads((tmp_path / "s" / "sample.json").read_text())["texts"] == sample_corpus.MIX


def test_extra_sources_are_decontaminated_deduplicated_and_capped(tmp_path, monkeypatch) -> None:
    import encoders.training.corpus as corpus
    from encoders.training.retrieval import COLLECTIONS

    shared = tmp_path / "shared"
    quoted = "the boundary layer of a swept wing separates near the leading edge at high lift"
    for name in COLLECTIONS:
        folder = shared / "data" / name
        folder.mkdir(parents=True)
        doc = {"_id": "d1", "title": "", "text": quoted if name == "cranfield" else name}
        (folder / "corpus.jsonl").write_text(json.dumps(doc) + "\n")
        (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "a query"}) + "\n")
    monkeypatch.setattr(corpus, "sources", lambda shared: {"base": iter(["a base text"])})
    extra = tmp_path / "extra"
    extra.mkdir()
    texts = [f"paragraph {i} about the physics of heat transfer in pipes" for i in range(50)]
    (extra / "science.txt").write_text(
        "\n".join([*texts, f"As the paper says, {quoted}.", texts[0].upper(), "A BASE TEXT"]) + "\n"
    )
    (extra / "small.txt").write_text("one   text\twith odd   spacing\n")
    card = corpus.build_corpus(tmp_path / "out", shared, extra=extra, extra_cap=20)
    science = card["sources"]["science"]
    assert science["contaminated"] == 1  # shares a 10-word window with a Cranfield document
    assert science["duplicate"] == 2  # case-insensitive, also across sources
    assert science["kept"] == science["capped_to"] == 20
    kept = gzip.open(tmp_path / "out" / "science.txt.gz", "rt").read().splitlines()
    assert len(kept) == 20 and set(kept) <= set(texts)
    small = gzip.open(tmp_path / "out" / "small.txt.gz", "rt").read()
    assert small == "one text with odd spacing\n"
    assert card["total_texts"] == 1 + 20 + 1
    with pytest.raises(ValueError, match="exists already"):
        (extra / "base.txt").write_text("x\n")
        corpus.build_corpus(tmp_path / "out2", shared, extra=extra)
