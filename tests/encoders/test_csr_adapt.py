"""Corpus adaptation: a tiny corpus is adapted in seconds, reconstruction improves, the result
is a model directory that loads, encodes and can be named as a collection's encoder."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from encoders.csr import CSREncoder, CSRSettings, load_csr, save_csr_model
from encoders.csr_sae import SAEConfig, TopKSAE
from encoders.errors import EncoderError
from encoders.training.adapt import (
    ADAPT_LOG,
    AdaptConfig,
    adapt_model,
    adapt_sae,
    heldout_overlap,
    heldout_queries,
    pseudo_pairs,
    read_documents,
)
from tests.conftest import needs_minilm

TOPICS = ("wing lift", "boundary layer", "library catalog", "blood cells", "compiler")


def _tiny_docs(n: int = 36) -> list[str]:
    return [
        f"Study {i} of the {TOPICS[i % 5]}. It reports measurements of the {TOPICS[i % 5]} "
        f"under condition {i % 7} and compares them with theory number {i % 3}."
        for i in range(n)
    ]


@pytest.fixture
def base_sae() -> TopKSAE:
    """A small random autoencoder: general, knowing nothing of the corpus."""
    torch.manual_seed(0)
    return TopKSAE(SAEConfig(input_dim=32, latent_dim=256, k=16)).eval()


def _narrow_corpus(n: int = 40, d: int = 32) -> np.ndarray:
    """Unit rows clustered around one direction: a narrow domain far from the origin."""
    rng = np.random.default_rng(1)
    x = 3.0 * rng.normal(size=(1, d)) + rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_adaptation_lowers_reconstruction_error_and_keeps_base(base_sae: TopKSAE) -> None:
    docs = _narrow_corpus()
    before = {k: v.clone() for k, v in base_sae.state_dict().items()}
    heads = docs[:10] + 0.05
    heads /= np.linalg.norm(heads, axis=1, keepdims=True)
    result = adapt_sae(base_sae, docs, heads, np.arange(10), AdaptConfig(steps=60, lr=3e-3, seed=0))
    assert result.documents == 40 and result.pairs == 10 and result.steps >= 1
    for k in ("k16",):
        assert result.fve_after[k] > result.fve_before[k] + 0.05, (k, result)
    # The base model is left as it was; the adapted one has the same shape.
    for name, value in base_sae.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert result.sae.config == base_sae.config
    assert {"recon", "distill", "infonce"} <= set(result.history[0])


def test_query_distillation_uses_the_pseudo_queries(base_sae: TopKSAE) -> None:
    """Pseudo queries (>= 16) rank the corpus's documents as the dense cosine does: the
    ``qdistill`` term is trained when its weight is > 0 and absent at 0."""
    docs = _narrow_corpus()
    heads = docs[:20] + 0.05
    heads /= np.linalg.norm(heads, axis=1, keepdims=True)
    on = adapt_sae(base_sae, docs, heads, np.arange(20), AdaptConfig(steps=5, log_every=1))
    off = adapt_sae(
        base_sae, docs, heads, np.arange(20), AdaptConfig(steps=5, query_distill_coef=0.0)
    )
    assert all("qdistill" in h and np.isfinite(h["qdistill"]) for h in on.history)
    assert all("qdistill" not in h for h in off.history)


def test_small_corpus_stops_after_max_epochs(base_sae: TopKSAE) -> None:
    cfg = AdaptConfig(steps=10_000, max_epochs=3, batch_size=512)
    assert cfg.train_config(base_sae, 40).steps == 3  # 40 docs in batches of 40
    assert cfg.train_config(base_sae, 40).batch_size == 40


def test_adaptation_input_checks(base_sae: TopKSAE) -> None:
    with pytest.raises(EncoderError, match="at least 2"):
        adapt_sae(base_sae, np.zeros((1, 32), np.float32))
    with pytest.raises(EncoderError, match="width 32"):
        adapt_sae(base_sae, np.zeros((5, 8), np.float32))
    with pytest.raises(EncoderError, match="head_doc"):
        adapt_sae(base_sae, _narrow_corpus(), _narrow_corpus(3), np.arange(2))


def test_pseudo_pairs_and_corpus_reading(tmp_path: Path) -> None:
    heads, of = pseudo_pairs(["One sentence only here", *_tiny_docs(2)])
    assert of == [1, 2] and heads[0] == "Study 0 of the wing lift."
    # With sentences: the first sentences, then up to n sentences of each text, evenly spaced.
    text = "Alpha beta gamma delta. " * 2 + "Middle one two three. " + "Omega psi chi phi. " * 2
    heads, of = pseudo_pairs([text.strip()], sentences_per_doc=3)
    assert of == [0, 0, 0, 0]
    assert heads[1:] == ["Alpha beta gamma delta.", "Middle one two three.", "Omega psi chi phi."]
    beir = tmp_path / "beir"
    beir.mkdir()
    rows = [{"_id": "a", "title": "T", "text": "x  y"}, {"_id": "b", "title": "", "text": ""}]
    (beir / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert read_documents(beir) == ["T x y"]
    (tmp_path / "docs.txt").write_text("first doc\n\nsecond doc\n")
    assert read_documents(tmp_path / "docs.txt") == ["first doc", "second doc"]
    with pytest.raises(EncoderError, match="corpus.jsonl"):
        read_documents(tmp_path)


class _HashEmbedder:
    """A stand-in for the dense model: bag of hashed words, unit rows (no weights needed)."""

    max_length = 256
    dim = 32

    def embed(self, texts, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, sum(map(ord, word)) % self.dim] += 1.0
        out += 0.5  # a shared component: a narrow corpus far from the origin
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_adapt_model_writes_a_loadable_model_dir(base_sae: TopKSAE, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_tiny_docs()) + "\n")
    settings = CSRSettings(default_k=8, normalize=True)
    enc = CSREncoder(base_sae, settings, embedder=_HashEmbedder(), device="cpu")
    out, result = adapt_model(
        "tiny-base", corpus, tmp_path / "adapted", AdaptConfig(steps=40, lr=3e-3), encoder=enc
    )
    assert result.fve_after["k16"] > result.fve_before["k16"]
    log = json.loads((out / ADAPT_LOG).read_text())
    assert log["documents"] == 36 and "no queries" in log["method"]
    assert (out / "README.md").is_file()
    loaded = load_csr(out, device="cpu", embedder=_HashEmbedder())
    assert loaded.default_k == 8 and loaded.sae.config == base_sae.config
    # The adapted model ranks by the plain inner product its training taught, whatever the
    # base does (a normalising general model here); the base's settings are left as they were.
    assert not loaded.settings.normalize and settings.normalize
    codes = loaded.encode_documents(_tiny_docs(3))
    assert codes.shape == (3, 256) and 0 < codes.nnz <= 3 * 8
    assert not torch.equal(loaded.sae.encoder_weight, base_sae.encoder_weight)
    # How close each model ranks to the dense one on sentences it did not train on.
    held = log["heldout_dense_overlap"]
    assert held["queries"] == 36 and held["depth"] == 10
    assert 0.0 <= held["base"] <= 1.0 and 0.0 <= held["adapted"] <= 1.0
    assert "did not train on" in (out / "README.md").read_text()


def test_adapt_model_loads_the_base_on_every_allotted_cpu(
    base_sae: TopKSAE, tmp_path: Path, monkeypatch
) -> None:
    """Adaptation is a batch job: the base encoder embeds the corpus on every CPU the process
    was given, not the half that the encoders' server default leaves."""
    import encoders
    import encoders.training.adapt as adapt

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_tiny_docs()) + "\n")
    seen: dict = {}

    def fake_load(name, **options):
        seen.update(options, name=name)
        return CSREncoder(base_sae, CSRSettings(default_k=8), embedder=_HashEmbedder())

    monkeypatch.setattr(adapt, "allotted_cpus", lambda: 3)
    monkeypatch.setattr(encoders, "load_encoder", fake_load)
    adapt_model("tiny-base", corpus, tmp_path / "adapted", AdaptConfig(steps=2), device="cpu")
    assert seen == {"name": "tiny-base", "device": "cpu", "num_threads": 3}


def test_heldout_queries_are_sentences_the_adaptation_does_not_train_on() -> None:
    """Later sentences of random documents, never a first sentence (those are the training's
    pseudo queries), one a document, at most ``n``, the same for the same seed."""
    texts = _tiny_docs(12) + ["One sentence only, with no second one to hold out at all"]
    held = heldout_queries(texts, n=5)
    assert len(held) == 5 and held == heldout_queries(texts, n=5)
    firsts = {pseudo_pairs([t])[0][0] for t in texts[:12]}
    assert all(h.startswith("It reports measurements") for h in held) and not firsts & set(held)
    assert len(heldout_queries(texts)) == 12  # every document with a later sentence, once


def test_heldout_overlap_is_one_when_codes_rank_as_the_dense_model() -> None:
    """Codes equal to the (non-negative) embeddings rank exactly as the dense cosine: overlap
    1; a random autoencoder's codes do not."""
    torch.manual_seed(0)
    d = 8
    exact = TopKSAE(SAEConfig(input_dim=d, latent_dim=2 * d, k=d)).eval()
    with torch.no_grad():  # pre-activations [x, -x]: the top d of them are x itself
        exact.encoder_weight.copy_(torch.cat([torch.eye(d), -torch.eye(d)]))
        exact.latent_bias.zero_()
        exact.pre_bias.zero_()
    rng = np.random.default_rng(0)
    docs, queries = rng.uniform(0.05, 1.0, (40, d)), rng.uniform(0.05, 1.0, (6, d))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    settings = CSRSettings(default_k=d, query_k=2 * d)
    assert heldout_overlap(exact, settings, docs, queries) == 1.0
    scrambled = TopKSAE(SAEConfig(input_dim=d, latent_dim=2 * d, k=2)).eval()
    narrow = CSRSettings(default_k=2, query_k=2)
    assert heldout_overlap(scrambled, narrow, docs, queries) < 1.0


def test_adaptation_trains_for_the_query_width_the_base_serves_on_request(
    base_sae: TopKSAE, tmp_path: Path
) -> None:
    """A base serving queries wider than its trained k: wide_query_k=0 trains queries as
    documents and the adapted model, which keeps the width, keeps the plain product;
    wide_query_k=None trains the ranking losses for the base's width and the adapted model
    ranks by the codes' cosine. One training each."""
    from encoders.training.adapt import trained_query_width

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_tiny_docs()) + "\n")
    wide_k = 4 * base_sae.config.k
    settings = CSRSettings(default_k=8, query_k=wide_k)
    assert trained_query_width(settings, base_sae) == wide_k
    assert trained_query_width(CSRSettings(default_k=8), base_sae) == 0
    enc = CSREncoder(base_sae, settings, embedder=_HashEmbedder(), device="cpu")
    out, result = adapt_model(
        "tiny-base",
        corpus,
        tmp_path / "narrow",
        AdaptConfig(steps=10, lr=3e-3, wide_query_k=0),
        encoder=enc,
    )
    loaded = load_csr(out, device="cpu", embedder=_HashEmbedder())
    assert result.config.wide_query_k == 0 and list(result.heldout["by_query_width"]) == ["0"]
    assert loaded.query_k == wide_k and not loaded.settings.normalize
    out, result = adapt_model(
        "tiny-base",
        corpus,
        tmp_path / "wide",
        AdaptConfig(steps=10, lr=3e-3, wide_query_k=None),
        encoder=enc,
    )
    assert result.config.wide_query_k == wide_k
    assert json.loads((out / ADAPT_LOG).read_text())["config"]["wide_query_k"] == wide_k
    loaded = load_csr(out, device="cpu", embedder=_HashEmbedder())
    assert loaded.query_k == wide_k and loaded.settings.normalize


def test_auto_width_trains_both_and_keeps_the_one_closer_to_dense_on_heldout_sentences(
    base_sae: TopKSAE, tmp_path: Path
) -> None:
    """ "auto", for a base serving queries wider than its trained k: one
    adaptation trained for queries as documents, one for the base's query width, each scored
    by the held-out overlap; the larger is written, with the settings of its width, and the
    log says what was asked, what each scored and what was kept. A base serving queries as
    documents has one width: one training."""
    from encoders.training.adapt import AUTO, adapt_with_check, candidate_configs

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_tiny_docs()) + "\n")
    wide_k = 4 * base_sae.config.k
    settings = CSRSettings(default_k=8, query_k=wide_k)
    auto = AdaptConfig(wide_query_k=AUTO, wide_query_share=1.0)
    assert [c.wide_query_k for c in candidate_configs(auto, settings, base_sae)] == [0, wide_k]
    narrow = CSRSettings(default_k=8)
    assert [c.wide_query_k for c in candidate_configs(auto, narrow, base_sae)] == [0]
    enc = CSREncoder(base_sae, settings, embedder=_HashEmbedder(), device="cpu")
    out, result = adapt_model(
        "tiny-base",
        corpus,
        tmp_path / "auto",
        replace(auto, steps=10, lr=3e-3),
        encoder=enc,
    )
    scored = result.heldout["by_query_width"]
    assert set(scored) == {"0", str(wide_k)}
    kept = max(scored, key=lambda w: (scored[w], w == "0"))  # the documents' width on a tie
    assert str(result.config.wide_query_k) == kept
    assert result.heldout["adapted"] == scored[kept]
    log = json.loads((out / ADAPT_LOG).read_text())
    assert log["query_width_requested"] == AUTO and log["config"]["wide_query_k"] == int(kept)
    loaded = load_csr(out, device="cpu", embedder=_HashEmbedder())
    assert loaded.settings.normalize == (kept != "0") and loaded.query_k == wide_k
    assert "the larger was kept" in (out / "README.md").read_text()
    # Without held-out sentences there is nothing to choose by: the first width only.
    docs = _narrow_corpus()
    chosen, tried = adapt_with_check(
        base_sae, settings, docs, None, None, replace(auto, steps=5), None, device="cpu"
    )
    assert len(tried) == 1 and chosen.result.config.wide_query_k == 0
    assert np.isnan(chosen.overlap) and chosen.result.heldout == {}


@needs_minilm
def test_cli_adapts_a_real_model_and_load_encoder_reads_it(tmp_path: Path) -> None:
    """``lsr models adapt`` end to end: MiniLM embeddings, a small CSR base, a model dir that
    ``load_encoder`` (what the service calls for a collection's encoder) loads by path."""
    from app.cli import main
    from encoders import load_encoder

    torch.manual_seed(0)
    base = tmp_path / "base"
    save_csr_model(base, TopKSAE(SAEConfig(384, 512, 32)).eval(), CSRSettings(default_k=16))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_tiny_docs()) + "\n")
    out = tmp_path / "adapted"
    argv = ["models", "adapt", "--base", str(base), "--corpus", str(corpus), "--out", str(out)]
    assert main([*argv, "--steps", "30", "--device", "cpu"]) == 0
    log = json.loads((out / ADAPT_LOG).read_text())
    assert log["fve_after"]["k32"] > log["fve_before"]["k32"]
    enc = load_encoder(str(out), device="cpu")
    codes = enc.encode_queries(["lift of a wing"])
    assert codes.shape == (1, 512) and 0 < codes.nnz <= 16
    assert log["config"]["wide_query_k"] == 0 and not enc.settings.normalize


@needs_minilm
def test_cli_wide_queries_trains_for_the_base_query_width(tmp_path: Path) -> None:
    """``lsr models adapt --query-width wide``: the ranking losses at the base's query width,
    and the adapted model, which keeps that width, ranks by the codes' cosine
    (``--wide-queries``, the earlier spelling, says the same)."""
    from app.cli import main
    from encoders import load_encoder

    torch.manual_seed(0)
    base = tmp_path / "base"
    settings = CSRSettings(default_k=16, query_k=128)
    save_csr_model(base, TopKSAE(SAEConfig(384, 512, 32)).eval(), settings)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_tiny_docs()) + "\n")
    out = tmp_path / "adapted"
    argv = ["models", "adapt", "--base", str(base), "--corpus", str(corpus), "--out", str(out)]
    assert main([*argv, "--steps", "10", "--device", "cpu", "--query-width", "wide"]) == 0
    assert json.loads((out / ADAPT_LOG).read_text())["config"]["wide_query_k"] == 128
    enc = load_encoder(str(out), device="cpu")
    assert enc.query_k == 128 and enc.settings.normalize
    assert main([*argv, "--steps", "10", "--device", "cpu", "--wide-queries"]) == 0
    assert json.loads((out / ADAPT_LOG).read_text())["config"]["wide_query_k"] == 128
