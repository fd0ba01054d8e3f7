"""CSR training: losses behave, a tiny run learns, data never reads test queries, evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from encoders.csr import CSREncoder, CSRSettings
from encoders.csr_sae import SAEConfig, TopKSAE
from encoders.errors import EncoderError
from encoders.training.data import build_training_texts, split_head, split_sentences
from encoders.training.losses import (
    auxk_loss,
    cross_distillation,
    info_nce,
    normalized_mse,
    similarity_distillation,
)
from encoders.training.retrieval import load_beir, ndcg_at_10, top_dense, top_sparse
from encoders.training.trainer import TrainConfig, train_sae


def test_normalized_mse() -> None:
    x = torch.randn(32, 8)
    assert float(normalized_mse(x, x)) == 0.0
    # Predicting the batch mean leaves all the variance unexplained.
    assert float(normalized_mse(x, x.mean(0, keepdim=True).expand_as(x))) == pytest.approx(1.0)


def test_auxk_is_zero_without_dead_latents_and_revives_only_dead_ones() -> None:
    torch.manual_seed(0)
    sae = TopKSAE(SAEConfig(input_dim=8, latent_dim=32, k=4))
    x = torch.randn(16, 8)
    pre = sae.pre_activations(x)
    residual = (x - sae(x)).detach()
    none_dead = torch.zeros(32, dtype=torch.bool)
    loss = auxk_loss(residual, pre, none_dead, sae.decoder_weight, k_aux=8)
    assert float(loss.detach()) == 0.0
    loss.backward()  # still part of the graph
    sae.zero_grad()
    dead = torch.zeros(32, dtype=torch.bool)
    dead[[3, 7, 11]] = True
    pre = sae.pre_activations(x)
    loss = auxk_loss(residual, pre, dead, sae.decoder_weight, k_aux=8)
    assert float(loss.detach()) > 0
    loss.backward()
    rows_with_grad = set(torch.nonzero(sae.encoder_weight.grad.abs().sum(1)).flatten().tolist())
    assert rows_with_grad <= {3, 7, 11} and rows_with_grad


def test_info_nce_prefers_aligned_pairs_and_masks_duplicates() -> None:
    torch.manual_seed(0)
    q = torch.relu(torch.randn(8, 16))
    aligned = info_nce(q, q.clone())
    shuffled = info_nce(q, q[torch.roll(torch.arange(8), 1)])
    assert float(aligned) < float(shuffled)
    doc_ids = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6])
    masked = info_nce(q, q.clone(), doc_ids=doc_ids)
    assert torch.isfinite(masked) and float(masked) <= float(aligned) + 1e-6


def test_similarity_distillation_is_zero_for_identical_geometry() -> None:
    x = torch.nn.functional.normalize(torch.randn(12, 6), dim=1)
    assert float(similarity_distillation(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(similarity_distillation(torch.relu(torch.randn(12, 30)), x)) > 0


def test_cross_distillation_ranks_documents_like_the_dense_model() -> None:
    torch.manual_seed(0)
    xq = torch.nn.functional.normalize(torch.randn(5, 6), dim=1)
    xd = torch.nn.functional.normalize(torch.randn(9, 6), dim=1)
    assert float(cross_distillation(xq, xq, xd, xd)) == pytest.approx(0.0, abs=1e-6)
    reversed_codes = float(cross_distillation(-xq, xq, xd, xd))
    assert reversed_codes > 0.1
    # An excluded (query, document) pair is left out of both distributions.
    exclude = torch.zeros(5, 9, dtype=torch.bool)
    exclude[:, 0] = True
    wrong_on_excluded = xd.clone()
    wrong_on_excluded[0] = -wrong_on_excluded[0]
    loss = cross_distillation(xq, xq, wrong_on_excluded, xd, exclude=exclude)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)


def _synthetic(n: int = 1500, d: int = 24, atoms: int = 48, active: int = 4) -> np.ndarray:
    """Unit vectors that are sparse non-negative mixtures of a hidden dictionary."""
    rng = np.random.default_rng(0)
    dictionary = rng.normal(size=(atoms, d))
    codes = np.zeros((n, atoms))
    for row in codes:
        row[rng.choice(atoms, active, replace=False)] = rng.uniform(0.5, 1.5, active)
    x = codes @ dictionary
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _tiny_config(**overrides) -> TrainConfig:
    """A training configuration small enough for the synthetic data and the CPU."""
    settings = dict(
        latent_dim=96,
        k=8,
        k_levels=(4, 8),
        steps=80,
        batch_size=256,
        pair_batch_size=64,
        aux_k=16,
        dead_after=2048,
        distill_batch=64,
        lr=3e-3,
        warmup_steps=5,
        log_every=10,
    )
    return TrainConfig(**{**settings, **overrides})


def _train_three_groups(x: np.ndarray, queries: np.ndarray, docs: np.ndarray, labeled, cfg):
    groups = (np.arange(len(x)) % 3).astype(np.int64)
    return train_sae(
        x,
        np.arange(len(x)),
        queries,
        docs,
        labeled,
        cfg,
        groups=groups,
        domain_groups=np.array([0]),
    )


def test_tiny_training_run_decreases_loss() -> None:
    x = _synthetic()
    pairs = np.arange(0, 200, 2)
    result = _train_three_groups(x, pairs, pairs + 1, np.arange(len(pairs)) < 20, _tiny_config())
    first, last = result.history[0], result.history[-1]
    assert last["recon"] < 0.6 * first["recon"]
    assert last["loss"] < first["loss"]
    norms = result.sae.decoder_weight.detach().norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def test_cpu_training_runs_on_every_allotted_cpu(monkeypatch) -> None:
    """Loading an encoder leaves torch on one thread; train_sae on the CPU uses all the
    process's CPUs while it trains and restores the encoders' one thread after."""
    import encoders.resources as resources

    monkeypatch.setattr(resources, "allotted_cpus", lambda root=None: 2)
    seen: list[int] = []
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        empty = np.zeros(0, np.int64)
        train_sae(
            _synthetic()[:300],
            np.arange(300),
            empty,
            empty,
            empty.astype(bool),
            _tiny_config(steps=3),
            on_log=lambda step, sae: seen.append(torch.get_num_threads()) or {},
        )
        assert seen and set(seen) == {2}
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_data_initialised_atoms_start_closer_and_init_sae_is_fine_tuned() -> None:
    x = _synthetic()
    empty = np.zeros(0, np.int64)
    cfg = _tiny_config(steps=1, contrastive_coef=0.0, distill_coef=0.0)
    cfg.init_from_data = True
    cfg.lr = 1e-9  # atoms as initialised
    base = train_sae(x, np.arange(len(x)), empty, empty, empty.astype(bool), cfg).sae
    atoms = torch.nn.functional.normalize(base.encoder_weight.detach(), dim=1)
    centred = torch.nn.functional.normalize(torch.from_numpy(x) - base.pre_bias.detach(), dim=1)
    assert float((atoms @ centred.T).max(1).values.min()) > 0.95  # each atom is a data row
    cfg.lr = 3e-3
    tuned = train_sae(x, np.arange(len(x)), empty, empty, empty.astype(bool), cfg, init_sae=base)
    assert tuned.sae is base  # trained in place, from its weights
    wrong = TopKSAE(SAEConfig(24, 64, 8))
    with pytest.raises(EncoderError, match="init_sae"):
        train_sae(x, np.arange(len(x)), empty, empty, empty.astype(bool), cfg, init_sae=wrong)


def test_nested_decode_equals_one_decode_per_level() -> None:
    from encoders.training.trainer import nested_decode

    torch.manual_seed(0)
    sae = TopKSAE(SAEConfig(24, 96, 8))
    x = torch.from_numpy(_synthetic(n=50))
    values, indices = sae.encode(x, 8)
    nested = nested_decode(sae, values, indices, (2, 4, 8))
    for k in (2, 4, 8):
        expected = sae.decode(values[:, :k], indices[:, :k])
        assert torch.allclose(nested[k], expected, atol=1e-5), k


def test_ranking_losses_at_one_level_per_step() -> None:
    from encoders.training.trainer import ranking_levels

    cfg = _tiny_config(k_levels=(2, 4, 8))
    assert ranking_levels(cfg, 5) == (2, 4, 8)
    cfg.ranking_level_per_step = True
    assert [ranking_levels(cfg, s) for s in range(4)] == [(2,), (4,), (8,), (2,)]
    cfg.recon_4k_coef = 0.0
    x = _synthetic()
    pairs = np.arange(0, 200, 2)
    result = _train_three_groups(x, pairs, pairs + 1, np.zeros(len(pairs), bool), cfg)
    assert "recon_4k" not in result.history[0]
    assert result.history[-1]["recon"] < 0.6 * result.history[0]["recon"]


def test_neighbourhood_batches_are_nearest_rows_and_train() -> None:
    from encoders.training.trainer import neighbourhood

    x = torch.from_numpy(_synthetic(n=300))
    pool = torch.arange(100, 300)
    gen = torch.Generator().manual_seed(0)
    rows = neighbourhood(x[pool], pool, 20, gen)
    anchor = rows[0]
    sims = x[pool] @ x[anchor]
    assert len(rows) == 20 and set(rows.tolist()) <= set(pool.tolist())
    assert float((x[rows] @ x[anchor]).min()) >= float(sims.topk(20).values.min()) - 1e-6
    cfg = _tiny_config(distill_neighbourhood=1.0, contrastive_coef=0.0, distill_coef=1.0)
    empty = np.zeros(0, np.int64)
    result = train_sae(_synthetic(), np.arange(1500), empty, empty, empty.astype(bool), cfg)
    assert result.history[-1]["distill"] < result.history[0]["distill"]


def _train_query_distillation(**overrides):
    """30 steps over three groups of synthetic rows, the first 300 rows pseudo queries of the
    next 300, with query distillation on."""
    queries = np.arange(0, 300)
    cfg = _tiny_config(
        steps=30,
        batch_size=128,
        pair_batch_size=32,
        query_distill_coef=1.0,
        query_distill_batch=16,
        **overrides,
    )
    labeled = np.zeros(len(queries), bool)
    return _train_three_groups(_synthetic(n=900), queries, queries + 300, labeled, cfg)


def test_query_distillation_and_distill_scale_train() -> None:
    result = _train_query_distillation(
        dead_after=1_000_000, distill_by_group=True, distill_scale=40.0, contrastive_coef=0.0
    )
    qdistill = [row["qdistill"] for row in result.history if "qdistill" in row]
    assert len(qdistill) >= 3 and all(np.isfinite(qdistill))
    assert qdistill[-1] < qdistill[0]


def test_cosine_ranking_losses_score_unit_codes_and_train() -> None:
    from encoders.training.trainer import ranking_codes

    values = torch.tensor([[3.0, 4.0, 1.0], [0.5, 0.0, 0.0]])
    indices = torch.tensor([[2, 0, 5], [1, 3, 4]])
    plain = ranking_codes(values, indices, 2, _tiny_config())
    assert plain[0, 2] == 3.0 and plain[0, 0] == 4.0 and plain[0, 5] == 0.0
    unit = ranking_codes(values, indices, 2, _tiny_config(cosine=True))
    torch.testing.assert_close(unit[0, [2, 0]], torch.tensor([0.6, 0.8]))
    torch.testing.assert_close(unit[1, 1], torch.tensor(1.0))
    result = _train_query_distillation(cosine=True)
    for term in ("distill", "qdistill", "infonce"):
        curve = [row[term] for row in result.history if term in row]
        assert len(curve) >= 3 and all(np.isfinite(curve)), term
        assert curve[-1] < curve[0], term


def test_wide_query_ranking_losses_score_wide_queries_and_train() -> None:
    """With wide_query_k, the query side of every ranking loss is the row's top
    wide_query_k latents (wider than the trained k = 8), the document side its code at each
    level; the three terms still fall."""
    from encoders.training.trainer import query_side

    torch.manual_seed(0)
    cfg = _tiny_config(wide_query_k=32)
    sae = TopKSAE(SAEConfig(24, cfg.latent_dim, cfg.k))
    x = torch.from_numpy(_synthetic(n=5))
    assert query_side(sae, x, _tiny_config()) is None
    wide = query_side(sae, x, cfg)
    assert wide.shape == (5, cfg.latent_dim)
    assert int((wide > 0).sum(1).max()) > cfg.k and int((wide > 0).sum(1).max()) <= 32
    with pytest.raises(ValueError, match="wide_query_k"):
        _tiny_config(wide_query_k=cfg.latent_dim + 1)
    result = _train_query_distillation(wide_query_k=32)
    for term in ("distill", "qdistill", "infonce"):
        curve = [row[term] for row in result.history if term in row]
        assert len(curve) >= 3 and all(np.isfinite(curve)), term
        assert curve[-1] < curve[0], term


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_wide_query_share_trains_that_share_of_steps_for_wide_queries(
    share: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With wide_query_share, a seeded coin per step decides whether the ranking losses score
    the queries wide or as documents: all of one kind at 0 and 1, both kinds at 0.5, and the
    terms still fall."""
    from encoders.training import trainer

    widths: list[int] = []
    real = trainer.query_side

    def spy(sae, x, cfg):
        widths.append(cfg.wide_query_k)
        return real(sae, x, cfg)

    monkeypatch.setattr(trainer, "query_side", spy)
    result = _train_query_distillation(wide_query_k=32, wide_query_share=share)
    wide = sum(w == 32 for w in widths) / len(widths)
    assert set(widths) <= {0, 32}
    assert wide == share if share in (0.0, 1.0) else 0.2 < wide < 0.8
    curve = [row["qdistill"] for row in result.history if "qdistill" in row]
    assert all(np.isfinite(curve)) and curve[-1] < curve[0]
    with pytest.raises(EncoderError, match="wide_query_share"):
        _tiny_config(wide_query_k=32, wide_query_share=1.5)


def test_favour_sources_names_corpus_files_whose_rows_the_domain_weight_draws(
    tmp_path: Path,
) -> None:
    """``train_csr --favour-sources``: corpus files named by their stem become the groups
    that ``domain_weight`` draws its share of each batch from; an unknown name stops."""
    from encoders.training.train_csr import favoured_groups
    from encoders.training.trainer import _Sampler

    files = []
    for name in ("wordnet", "dealii_tutorials", "gmsh_doc"):
        files.append(tmp_path / f"{name}.txt")
        files[-1].write_text(
            "\n".join(
                f"{name} text {i}. It has a second sentence of eight words." for i in range(20)
            )
        )
    data = build_training_texts(None, collections=(), corpus_files=tuple(files), vectors=False)
    favoured = favoured_groups(data.groups, ["gmsh_doc", "dealii_tutorials"])
    assert [data.groups[g] for g in favoured] == ["dealii_tutorials", "gmsh_doc"]
    with pytest.raises(SystemExit, match="no source named gmsh"):
        favoured_groups(data.groups, ["gmsh"])
    arrays = data.arrays()
    gen = torch.Generator().manual_seed(0)
    sampler = _Sampler(arrays["recon"], arrays["group"], favoured, 0.75, gen, torch.device("cpu"))
    rows = sampler.sample(400).numpy()
    assert (np.isin(arrays["group"][rows], favoured)).mean() == 0.75


def test_learning_rate_decays_over_the_time_budget() -> None:
    from encoders.training.trainer import _lr_factor

    cfg = TrainConfig(steps=100_000, warmup_steps=10, time_budget_s=100.0)
    assert _lr_factor(0, cfg) == pytest.approx(0.1)
    assert _lr_factor(20, cfg, elapsed_s=0.0) == pytest.approx(1.0, abs=1e-3)
    assert _lr_factor(20, cfg, elapsed_s=50.0) == pytest.approx(0.55, abs=1e-3)
    assert _lr_factor(20, cfg, elapsed_s=100.0) == pytest.approx(0.1)
    no_budget = TrainConfig(steps=110, warmup_steps=10)
    assert _lr_factor(110, no_budget) == pytest.approx(0.1)


def test_the_log_says_how_long_is_left_at_the_pace_so_far() -> None:
    """A CPU adaptation runs for many minutes: each log line says about how many are left."""
    from encoders.training.trainer import _time_left

    cfg = TrainConfig(steps=1000)
    assert _time_left(99, cfg, elapsed_s=60.0) == " (about 9.0 min left)"  # 900 steps at 0.6 s
    assert _time_left(0, cfg, elapsed_s=1.0) == "" and _time_left(999, cfg, 600.0) == ""
    budget = TrainConfig(steps=1000, time_budget_s=120.0)
    assert _time_left(99, budget, elapsed_s=60.0) == " (about 1.0 min left)"  # the budget ends it


def test_train_config_checks() -> None:
    with pytest.raises(EncoderError, match="4k"):
        TrainConfig(latent_dim=100, k=32, k_levels=(32,))
    assert TrainConfig(k=64, k_levels=(16, 32)).k_levels == (16, 32, 64)
    with pytest.raises(EncoderError, match="k_levels"):
        TrainConfig(k=8, k_levels=(16,), latent_dim=64)


def test_training_texts_never_read_test_queries(beir_folder: Path) -> None:
    data = build_training_texts(beir_folder, dev_fraction=0.0)
    assert "SECRET TEST" not in data.texts
    labeled = [
        (data.texts[q], data.texts[d])
        for q, d, lab in zip(data.pair_query, data.pair_doc, data.pair_labeled, strict=True)
        if lab
    ]
    assert labeled == [
        ("does aspirin help pain", "Aspirin and pain Aspirin reduces pain in adults. It is cheap.")
    ]
    # Pseudo pairs: title vs body, or first sentence vs rest when there is no title.
    assert (
        "Wings lift aircraft at speed.",
        "Flaps add lift on landing and slow the aircraft down.",
    ) in [
        (data.texts[q], data.texts[d])
        for q, d, lab in zip(data.pair_query, data.pair_doc, data.pair_labeled, strict=True)
        if not lab
    ]
    arrays = data.arrays()
    assert len(arrays["group"]) == len(data.texts)
    assert set(arrays["domain_groups"].tolist()) == {0, 1}  # scifact corpus + train queries
    held_out = build_training_texts(beir_folder, dev_fraction=1.0)
    assert held_out.dev_query_ids == ["q1"] and not any(held_out.pair_labeled)


def test_fidelity_queries_are_held_out_of_training(beir_folder: Path) -> None:
    data = build_training_texts(beir_folder, dev_fraction=0.0, fidelity_fraction=1.0)
    queries, docs = data.fidelity["scifact"]
    assert {data.texts[q] for q in queries} == {"Aspirin and pain", "Wings lift aircraft at speed."}
    assert len(docs) == 4
    arrays = data.arrays()
    used = set(arrays["recon"].tolist()) | set(arrays["pair_query"].tolist())
    assert not used & set(queries)
    assert not any(data.texts[q] == "Aspirin and pain" for q in arrays["pair_query"])


def test_query_texts_join_reconstruction_in_domain(beir_folder: Path) -> None:
    vectors = beir_folder / "vectors"
    vectors.mkdir()
    (vectors / "packages_queries.txt").write_text("how to parse json\nfast sparse search\n")
    (vectors / "packages_docs.txt").write_text("A JSON parser. It is fast.\n")
    plain = build_training_texts(beir_folder, dev_fraction=0.0)
    assert "how to parse json" not in plain.texts
    data = build_training_texts(beir_folder, dev_fraction=0.0, query_texts=True)
    arrays = data.arrays()
    rows = [data.texts.index(t) for t in ("how to parse json", "fast sparse search")]
    assert set(rows) <= set(arrays["recon"].tolist())
    group = data.groups.index("queries_packages_queries")
    assert group in arrays["domain_groups"] and data.groups[arrays["group"][rows[0]]] == (
        "queries_packages_queries"
    )


def test_sentence_texts_join_reconstruction_except_dev_documents(beir_folder: Path) -> None:
    from encoders.training.retrieval import doc_text, read_jsonl

    corpus = beir_folder / "scifact" / "corpus.jsonl"
    flight = "Slats delay the stall. Flaps add lift on landing. Trim tabs hold the pitch steady."
    extra = {"_id": "d5", "title": "Flight", "text": flight}  # no pseudo query: never held out
    corpus.write_text(corpus.read_text() + json.dumps(extra) + "\n")
    docs = [doc_text(d) for d in read_jsonl(corpus)]
    plain = build_training_texts(beir_folder, dev_fraction=0.0, fidelity_fraction=0.5)
    data = build_training_texts(
        beir_folder, dev_fraction=0.0, fidelity_fraction=0.5, sentence_texts=True
    )
    (held_query,) = data.fidelity["scifact"][0]
    (held,) = [t for t in docs if data.texts[held_query] in t]
    dev = [data.texts[r] for r in data.sentence_dev["scifact"]]
    assert dev == split_sentences(held) and len(dev) >= 2
    assert dev == [plain.texts[r] for r in plain.sentence_dev["scifact"]]  # always held out
    recon = {data.texts[r] for r in data.arrays()["recon"]}
    assert not recon & set(dev)
    others = {s for t in docs if t != held for s in split_sentences(t)}
    assert others and others <= recon
    assert others - {plain.texts[r] for r in plain.arrays()["recon"]}  # new training texts
    assert data.sources["scifact_sentences"] >= 1


def test_split_sentences() -> None:
    lower = "wing flutter at high speed . tests in a wind tunnel showed no flutter ."
    assert split_sentences(lower) == [
        "wing flutter at high speed",
        "tests in a wind tunnel showed no flutter .",
    ]
    # Sentences under four words are dropped; what is left of one sentence is no split.
    assert split_sentences("Cells divide. Most cells divide by mitosis in the body.") == []
    assert split_sentences("A single sentence of several words.") == []


def test_dev_callback_reports_fidelity(beir_folder: Path) -> None:
    from encoders.training.train_csr import dev_callback

    data = build_training_texts(beir_folder, dev_fraction=0.0, fidelity_fraction=1.0)
    emb = _synthetic(n=len(data.texts))
    on_log = dev_callback(data, emb, torch.device("cpu"))
    torch.manual_seed(0)
    sae = TopKSAE(SAEConfig(input_dim=emb.shape[1], latent_dim=256, k=64)).eval()
    row = on_log(0, sae)
    assert 0.0 <= row["dev_fidelity_scifact"] <= 1.0
    assert row["dev_fidelity_min"] == row["dev_fidelity_scifact"]
    assert "dev_query_fve" not in row  # no held-out train queries
    assert len(data.sentence_dev["scifact"]) == 2  # the sentences of d2 (held out with its head)
    assert np.isfinite(row["dev_sentence_fve_scifact"]) and row["dev_sentence_fve_scifact"] <= 1
    assert row["dev_sentence_fve_min"] == row["dev_sentence_fve_scifact"]


def test_dev_callback_reports_query_fidelity(beir_folder: Path) -> None:
    from encoders.training.train_csr import dev_callback

    data = build_training_texts(beir_folder, dev_fraction=1.0, fidelity_fraction=0.0)
    data.dev_query_rows.append(data.row("aspirin for headaches"))
    data.dev_query_ids.append("q2")
    data.dev_qrels["q2"] = {"d1": 1}
    emb = _synthetic(n=len(data.texts))
    on_log = dev_callback(data, emb, torch.device("cpu"))
    torch.manual_seed(0)
    sae = TopKSAE(SAEConfig(input_dim=emb.shape[1], latent_dim=256, k=64)).eval()
    untrained = on_log(0, sae)["dev_query_fve"]
    assert np.isfinite(untrained) and untrained <= 1.0
    # A decoder holding the queries themselves reconstructs them almost exactly.
    with torch.no_grad():
        x = torch.as_tensor(emb[data.dev_query_rows])
        sae.pre_bias.zero_()
        sae.latent_bias.fill_(-19.0)  # 20 * cos - 19: 1 on its own query, 0 on others
        sae.encoder_weight.zero_()
        sae.encoder_weight[: len(x)] = 20.0 * x
        sae.decoder_weight.zero_()
        sae.decoder_weight[: len(x)] = x
    assert on_log(0, sae)["dev_query_fve"] > max(untrained, 0.5)


def test_split_head() -> None:
    assert split_head("One sentence. Two sentences here.") == (
        "One sentence.",
        "Two sentences here.",
    )
    assert split_head("only one sentence") is None


def test_retrieval_eval_on_tiny_folder(beir_folder: Path) -> None:
    coll = load_beir(beir_folder / "scifact", "test")
    assert coll.query_ids == ["q9"] and len(coll.doc_ids) == 4
    docs = np.eye(4, dtype=np.float32)
    perfect = ndcg_at_10(*top_dense(docs[[3]], docs), coll.query_ids, coll.doc_ids, coll.qrels)
    assert perfect == pytest.approx(1.0)
    wrong = ndcg_at_10(
        *top_dense(docs[[0]], docs[:3]), coll.query_ids, coll.doc_ids[:3], coll.qrels
    )
    assert wrong == 0.0
    rows_s, scores_s = top_sparse(sp.csr_array(docs[[3]]), sp.csr_array(docs))
    assert rows_s[0, 0] == 3 and scores_s[0, 0] == pytest.approx(1.0)


def test_csr_codes_index_and_search_through_seismic() -> None:
    index = pytest.importorskip("index")
    torch.manual_seed(0)
    sae = TopKSAE(SAEConfig(input_dim=24, latent_dim=256, k=16)).eval()
    enc = CSREncoder(sae, CSRSettings(default_k=16), device="cpu")
    x = _synthetic(n=600)
    docs, queries = enc.sparsify(x[:500]), enc.sparsify(x[500:])
    idx = index.SeismicIndex.build(docs)
    rows, _ = idx.search(queries, k=10)
    exact_rows, _ = index.exact_search(docs, queries, k=10)
    assert index.recall_vs_exact(rows, exact_rows) >= 0.9


def test_default_recipe_is_the_shipped_models_and_flags_override_it() -> None:
    from dataclasses import fields

    from encoders.training.train_csr import parse_args
    from encoders.training.trainer import TrainConfig

    folder_old = "csr-minilm-indomain"

    def value(x):  # k_levels: a list from the command line and JSON, a tuple in TrainConfig
        return list(x) if isinstance(x, tuple | list) else x

    required = ["--data-dir", "d", "--out", "o"]
    models = Path(__file__).resolve().parents[2] / "encoders" / "models"
    for recipe, folder in (("csr-minilm", "csr-minilm"), ("csr-minilm-indomain", folder_old)):
        args = parse_args([*required, "--recipe", recipe])
        log = json.loads((models / folder / "train_log.json").read_text())
        run_only = {"steps", "time_budget_s", "log_every"}  # both ran under a time budget
        for f in fields(TrainConfig):
            if f.name not in run_only:
                # a field added after the model was trained held its default then
                logged = log["train_config"].get(f.name, f.default)
                assert value(getattr(args, f.name)) == value(logged), (recipe, f.name)
    assert parse_args(required).distill_neighbourhood == 0.9  # the default is csr-minilm's
    general = parse_args(required)
    assert general.collections == [] and general.scifact_dev and general.pair_with == "whole"
    log = json.loads((models / "csr-minilm" / "train_log.json").read_text())
    assert log["data"]["collections_trained_on"] == [] and log["data"]["labeled_pairs"] == 0
    args = parse_args([*required, "--recipe", "csr-minilm-indomain"])
    log = json.loads((models / folder_old / "train_log.json").read_text())
    assert args.sentence_texts and log["data"]["sources"]["cranfield_sentences"] > 0
    base = parse_args([*required, "--recipe", "base"])
    assert not base.sentence_texts
    for f in fields(TrainConfig):
        assert value(getattr(base, f.name)) == value(f.default), f.name
    flags = ["--lr", "0.002", "--no-distill-by-group", "--no-sentence-texts"]
    over = parse_args([*required, "--recipe", "csr-minilm-indomain", *flags])
    assert (over.lr, over.distill_by_group, over.sentence_texts) == (0.002, False, False)
    assert over.domain_weight == 0.75  # the rest of the recipe stays
