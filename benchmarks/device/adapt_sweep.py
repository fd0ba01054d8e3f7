"""Choosing the corpus-adaptation settings on SciFact *train* queries, on a GPU.

What ran on one H200 on 2026-12-05 (``benchmarks/results/csr_adapt_sweep_h200.json``): the
shipped ``csr-minilm`` adapted to SciFact's documents under each variant of
:class:`encoders.training.adapt.AdaptConfig` below, each scored on SciFact's 809 *train* queries
(the selection) and its 300 test queries (reported, not used); the variant with the best train
nDCG@10 at k = 64 was then run on every shared collection, each adapted on its own documents,
beside the previous default. Adaptation reads no query; the train queries only choose.

Two steps, because the GPU machine has no dense model and no data (all-MiniLM-L6-v2 embeddings
are made here, on the CPU, once):

    python benchmarks/device/adapt_sweep.py prepare --data-dir ../shared/data --out .devcarry
    # on the GPU machine, .devcarry carried (with ir_measures wheels):
    python3 benchmarks/device/adapt_sweep.py run .devcarry

``prepare`` writes ``adapt_cache.npz``: documents, test queries, first sentences (the pseudo
queries of :func:`encoders.training.adapt.pseudo_pairs`), SciFact's train queries (float16) and
up to four sentences a document (int8 with a scale per row, to fit what travels), and
``adapt_meta.json`` (document ids, query ids, judgments). Adaptation itself is
:func:`encoders.training.adapt.adapt_sae`'s training on the same rows, with the variant's
settings (``pairs``: which pseudo queries, ``qdistill``: ``query_distill_coef``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.getcwd())
from benchmarks.machine import MODEL_PACKAGES, machine_info  # noqa: E402
from encoders.csr_sae import TopKSAE  # noqa: E402
from encoders.training.adapt import AdaptConfig, adapt_sae, pseudo_pairs  # noqa: E402
from encoders.training.retrieval import (  # noqa: E402
    COLLECTIONS,
    load_beir,
    ndcg_at_10,
    query_key,
    top_hits,
    top_of,
)
from encoders.training.trainer import train_sae  # noqa: E402

MODEL = Path("encoders/models/csr-minilm")
SENTENCES_PER_DOC = 4
# The variants that ran (in this order); v0 is the default they were compared with.
VARIANTS = {
    "v0_default": {},
    "v1_4k": dict(steps=4000, max_epochs=1000),
    "v3_4k_qd1": dict(steps=4000, max_epochs=1000, qdistill=1.0),
    "v5_4k_both_qd1": dict(steps=4000, max_epochs=1000, pairs="both", qdistill=1.0),
    "v8_4k_lr4": dict(steps=4000, max_epochs=1000, lr=4e-3),
    "v2_8k": dict(steps=8000, max_epochs=1000),
    "v7_4k_nb": dict(steps=4000, max_epochs=1000, distill_neighbourhood=0.5),
}
# The defaults before this sweep (what v0 ran): 1,600 steps, at most 150 passes, no query
# distillation.
BEFORE = dict(steps=1600, max_epochs=150.0, query_distill_coef=0.0)


def prepare(data_dir: Path, out: Path) -> None:
    from encoders.csr import load_csr

    enc = load_csr(MODEL, device="cpu")
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, dict] = {}
    for name in COLLECTIONS:
        coll = load_beir(data_dir / name, "test")
        arrays[f"{name}/docs"] = enc.embedder.embed(coll.doc_texts).astype(np.float16)
        arrays[query_key(name)] = enc.embedder.embed(coll.query_texts).astype(np.float16)
        heads, of = pseudo_pairs(coll.doc_texts)
        arrays[f"{name}/heads"] = enc.embedder.embed(heads).astype(np.float16)
        arrays[f"{name}/head_doc"] = np.asarray(of, np.int64)
        # pseudo_pairs lists the first sentences, then up to SENTENCES_PER_DOC sentences a text
        both, both_of = pseudo_pairs(coll.doc_texts, SENTENCES_PER_DOC)
        sents, sent_doc = both[len(heads) :], both_of[len(heads) :]
        x = enc.embedder.embed(sents).astype(np.float32)
        scale = np.abs(x).max(1) / 127.0
        arrays[f"{name}/sents"] = np.round(x / scale[:, None]).astype(np.int8)
        arrays[f"{name}/sents_scale"] = scale.astype(np.float32)
        arrays[f"{name}/sent_doc"] = np.asarray(sent_doc, np.int64)
        meta[name] = {
            "doc_ids": coll.doc_ids,
            "test_qids": coll.query_ids,
            "test_qrels": coll.qrels,
        }
    train = load_beir(data_dir / "scifact", "train")
    arrays[query_key("scifact", "train")] = enc.embedder.embed(train.query_texts).astype(np.float16)
    meta["scifact"].update(train_qids=train.query_ids, train_qrels=train.qrels)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "adapt_cache.npz", **arrays)
    (out / "adapt_meta.json").write_text(json.dumps(meta))


class Sweep:
    def __init__(self, folder: Path, model: Path = MODEL) -> None:
        self.z = np.load(folder / "adapt_cache.npz")
        self.meta = json.loads((folder / "adapt_meta.json").read_text())
        self.dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.base = TopKSAE.load(model).float().eval()

    def machine(self) -> dict:
        """What a report records of where it ran: CPU, library versions and the GPU."""
        gpu = torch.cuda.get_device_name(self.dev) if self.dev.type == "cuda" else None
        return {**machine_info(MODEL_PACKAGES), "gpu": gpu, "cuda": torch.version.cuda}

    def rows(self, key: str) -> np.ndarray:
        x = self.z[key]
        if x.dtype == np.int8:
            x = x.astype(np.float32) * self.z[key + "_scale"][:, None]
            x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(np.float32)

    @torch.no_grad()
    def codes(self, sae: TopKSAE, x: np.ndarray, k: int) -> torch.Tensor:
        v, i = sae.to(self.dev).encode(torch.from_numpy(x).to(self.dev), k, wide=k > sae.config.k)
        out = torch.zeros(x.shape[0], sae.config.latent_dim, device=self.dev)
        return out.scatter_(1, i, v)

    def ndcg(
        self, sae: TopKSAE, coll: str, split: str, qk: int = 64, normalize: bool = False
    ) -> float:
        """nDCG@10, documents at k = 64, queries at ``qk``, codes scaled to unit length when
        ``normalize`` (``CSRSettings.normalize``); only documents sharing a latent with the
        query are hits (as the sparse exact search ranks)."""
        q = self.rows(query_key(coll, split))
        d = self.rows(f"{coll}/docs")
        cq, cd = self.codes(sae, q, qk), self.codes(sae, d, 64)
        if normalize:
            cq, cd = F.normalize(cq, dim=1), F.normalize(cd, dim=1)
        scores = (cq @ cd.T).cpu().numpy()
        scores[scores <= 0] = -np.inf
        rows, top = top_hits(scores, 100)
        m = self.meta[coll]
        return ndcg_at_10(rows, top, m[f"{split}_qids"], m["doc_ids"], m[f"{split}_qrels"])

    def dense(self, coll: str) -> float:
        """The dense model's test nDCG@10 on ``coll`` (exact cosine)."""
        q, d = self.rows(query_key(coll)), self.rows(f"{coll}/docs")
        m = self.meta[coll]
        return ndcg_at_10(*top_of(q @ d.T, 100), m["test_qids"], m["doc_ids"], m["test_qrels"])

    def adapt(self, coll: str, pairs: str = "heads", qdistill: float = 0.0, **over):
        """``adapt_sae``'s training: the base recentred on the documents' mean, trained on the
        documents and the chosen pseudo queries (``heads``, ``sents`` or ``both``)."""
        docs = self.rows(f"{coll}/docs")
        parts, pair_q, pair_d, offset = [docs], [], [], len(docs)
        keys = {"heads": ["heads"], "sents": ["sents"], "both": ["heads", "sents"]}[pairs]
        for key in keys:
            x = self.rows(f"{coll}/{key}")
            parts.append(x)
            pair_q.append(np.arange(offset, offset + len(x)))
            pair_d.append(self.z[f"{coll}/{'head_doc' if key == 'heads' else 'sent_doc'}"])
            offset += len(x)
        emb = np.concatenate(parts)
        cfg = AdaptConfig(**{**BEFORE, **over})
        sae = copy.deepcopy(self.base)
        with torch.no_grad():
            sae.pre_bias.copy_(torch.from_numpy(docs.mean(0)))
        train_cfg = cfg.train_config(sae, len(docs))
        train_cfg.query_distill_coef = qdistill
        start = time.perf_counter()
        result = train_sae(
            emb,
            np.arange(len(emb)),
            np.concatenate(pair_q),
            np.concatenate(pair_d),
            np.zeros(sum(map(len, pair_q)), bool),
            train_cfg,
            device=self.dev,
            init_sae=sae,
            groups=np.zeros(len(emb), np.int64) if qdistill > 0 else None,
        )
        if self.dev.type == "cuda":
            torch.cuda.synchronize()
        return result.sae.eval(), time.perf_counter() - start, train_cfg.steps


def run(folder: Path, out: Path) -> None:
    s = Sweep(folder)
    results = {
        "general": {
            "train": s.ndcg(s.base, "scifact", "train"),
            "test": s.ndcg(s.base, "scifact", "test"),
            "train_qk128": s.ndcg(s.base, "scifact", "train", 128),
        }
    }
    print("general", results["general"], flush=True)
    for name, variant in VARIANTS.items():
        sae, seconds, steps = s.adapt("scifact", **variant)
        results[name] = {
            "train": s.ndcg(sae, "scifact", "train"),
            "test": s.ndcg(sae, "scifact", "test"),
            "train_qk128": s.ndcg(sae, "scifact", "train", 128),
            "test_qk128": s.ndcg(sae, "scifact", "test", 128),
            "seconds": seconds,
            "steps": steps,
            "variant": variant,
        }
        print(name, results[name], flush=True)
    best = max((k for k in results if k != "general"), key=lambda k: results[k]["train"])
    print("selected on scifact train:", best, flush=True)
    final = {}
    for coll in COLLECTIONS:
        row = {"dense": s.dense(coll), "general": s.ndcg(s.base, coll, "test")}
        for name in dict.fromkeys(["v0_default", best]):
            sae, seconds, steps = s.adapt(coll, **VARIANTS[name])
            row[name] = s.ndcg(sae, coll, "test")
            row[name + "_qk128"] = s.ndcg(sae, coll, "test", 128)
            row[name + "_seconds"], row[name + "_steps"] = seconds, steps
        final[coll] = row
        print(coll, row, flush=True)
    report = {"sweep": results, "selected": best, "final": final}
    (out / "sweep.json").write_text(json.dumps(report, indent=1) + "\n")


# Round 2 (after codes scaled to unit length, CSRSettings.normalize, became the shipped
# setting): AdaptConfig fields over the round-1 default (4,000 steps, query distillation 1),
# through the product's adapt_sae; selection on SciFact train nDCG@10 at k = 64 with
# normalised codes. ``cosine``: the ranking losses score the codes' cosine, as they are served.
# What ran on one H100 (benchmarks/results/csr_adapt_sweep2_h100.json): all four, then the
# selected one (r2_default) on every collection.
ROUND2 = {
    "r2_default": {},
    "r2_cos": dict(cosine=True),
    "r2_qd3_cos": dict(query_distill_coef=3.0, cosine=True),
    "r2_6k_qd3_cos": dict(steps=6000, query_distill_coef=3.0, cosine=True),
}


def scores(s: Sweep, sae: TopKSAE, coll: str, splits: tuple[str, ...]) -> dict[str, float]:
    """nDCG@10 of ``splits`` at documents 64 / queries 64 and 128, raw and normalised."""
    out = {}
    for split in splits:
        for qk in (64, 128):
            for norm in (False, True):
                key = f"{split}_q{qk}" + ("_norm" if norm else "")
                out[key] = s.ndcg(sae, coll, split, qk, norm)
    return out


def adapt2(s: Sweep, coll: str, over: dict) -> tuple[TopKSAE, float, int]:
    """``adapt_sae`` (the product's adaptation) of the base to ``coll``'s documents."""
    heads = s.rows(f"{coll}/heads")
    start = time.perf_counter()
    result = adapt_sae(
        s.base,
        s.rows(f"{coll}/docs"),
        heads,
        s.z[f"{coll}/head_doc"],
        AdaptConfig(**over),
        device=s.dev,
    )
    return result.sae.float().eval(), time.perf_counter() - start, result.steps


def run2(folder: Path, out: Path, model: Path, variants: list[str], final: list[str]) -> None:
    """Round 2: ``variants`` on SciFact (train selects), then ``final`` on every collection."""
    s = Sweep(folder, model)
    report: dict = {"model": str(model), "sweep": {}, "final": {}}
    if variants:
        report["sweep"]["general"] = scores(s, s.base, "scifact", ("train", "test"))
        print("general", report["sweep"]["general"], flush=True)
    for name in variants:
        sae, seconds, steps = adapt2(s, "scifact", ROUND2[name])
        row = scores(s, sae, "scifact", ("train", "test"))
        report["sweep"][name] = {**row, "seconds": seconds, "steps": steps, "set": ROUND2[name]}
        print(name, report["sweep"][name], flush=True)
    if variants:
        best = max(variants, key=lambda n: report["sweep"][n]["train_q64_norm"])
        report["selected"] = best
        print("selected on scifact train (k = 64, normalised):", best, flush=True)
        final = [best if name == "selected" else name for name in final]
    for coll in COLLECTIONS if final else ():
        row = {"dense": s.dense(coll), "general": scores(s, s.base, coll, ("test",))}
        for name in final:
            sae, seconds, steps = adapt2(s, coll, ROUND2[name])
            row[name] = {**scores(s, sae, coll, ("test",)), "seconds": seconds, "steps": steps}
        report["final"][coll] = row
        print(coll, row, flush=True)
    tag = "_".join(variants or final)[:60]
    (out / f"sweep2_{tag}.json").write_text(json.dumps(report, indent=1) + "\n")


# Round 3 (after queries came to be served at 1,024 latents, CSRSettings.query_k, and
# AdaptConfig.wide_query_k trained the adaptation for them on a CPU selection, 1,000 steps):
# the adaptation trained for the wide queries (the default: wide_query_k resolved to the base's
# 1,024, normalised codes) against trained at each level's k (wide_query_k 0, plain codes), each
# served as ``adapted_settings`` serves it. Selection fixed before the run: the larger SciFact
# *train* nDCG@10 as served (documents 64, queries 1,024); both then on every collection.
ROUND3 = {
    "r3_wide": {},
    "r3_sym": dict(wide_query_k=0),
}


def scores3(s: Sweep, sae: TopKSAE, coll: str, splits: tuple[str, ...], over: dict) -> dict:
    """nDCG@10 at documents 64 / queries 64 and 1,024, plain and normalised, and ``served``:
    queries at 1,024 scored as ``adapted_settings`` serves the adaptation ``over``."""
    from encoders.csr import CSRSettings
    from encoders.training.adapt import adapted_settings, resolved

    wide = resolved(AdaptConfig(**over), CSRSettings(default_k=64, query_k=1024), s.base)
    norm_served = adapted_settings(CSRSettings(), wide).normalize
    out = {}
    for split in splits:
        for qk in (64, 1024):
            for norm in (False, True):
                out[f"{split}_q{qk}" + ("_norm" if norm else "")] = s.ndcg(
                    sae, coll, split, qk, norm
                )
        out[f"{split}_served"] = out[f"{split}_q1024" + ("_norm" if norm_served else "")]
    return out


def run3(folder: Path, out: Path, model: Path) -> None:
    """Round 3: both ROUND3 variants on every collection; SciFact train selects."""
    s = Sweep(folder, model)
    report: dict = {"model": str(model), "variants": ROUND3, "final": {}}
    for coll in ["scifact", *[c for c in COLLECTIONS if c != "scifact"]]:
        splits = ("train", "test") if coll == "scifact" else ("test",)
        general = scores(s, s.base, coll, splits) | {
            f"{sp}_q1024_norm": s.ndcg(s.base, coll, sp, 1024, True) for sp in splits
        }
        row = {"dense": s.dense(coll), "general": general}
        for name, over in ROUND3.items():
            resolved_over = {"wide_query_k": 1024, **over}
            sae, seconds, steps = adapt2(s, coll, resolved_over)
            row[name] = {
                **scores3(s, sae, coll, splits, resolved_over),
                "seconds": seconds,
                "steps": steps,
            }
        report["final"][coll] = row
        print(coll, json.dumps(row), flush=True)
    train = report["final"]["scifact"]
    report["selected"] = max(ROUND3, key=lambda n: train[n]["train_served"])
    print("selected on scifact train (as served):", report["selected"], flush=True)
    (out / "sweep3.json").write_text(json.dumps(report, indent=1) + "\n")


# Round 4 (after round 3 found the two query widths tied on SciFact train but each below the
# other somewhere on test): the product's adaptation (``adapt_with_check`` with
# ``wide_query_k`` "auto", the default while this ran) trains both widths on each
# collection's documents and keeps the one with the larger label-free held-out overlap
# (``heldout_overlap`` on 512 later sentences of the collection, ``heldout_queries``).
# Fixed before the run: the check is what chooses on
# every collection (no test query is read by it); "auto" stays the default if, on SciFact
# *train* queries as served, its choice scores at least the documents-width adaptation (the
# default before) less 0.002; both widths' test scores are recorded so that the reader sees
# how often the check chose the better one.


def prepare_heldout(data_dir: Path, out: Path) -> None:
    """``adapt_heldout.npz``: the embeddings of ``heldout_queries`` of each collection's
    documents (the texts ``prepare`` embedded), float16."""
    from encoders.csr import load_csr
    from encoders.training.adapt import heldout_queries

    enc = load_csr(MODEL, device="cpu")
    arrays = {}
    for name in COLLECTIONS:
        texts = load_beir(data_dir / name, "test").doc_texts
        arrays[f"{name}/heldout"] = enc.embedder.embed(heldout_queries(texts)).astype(np.float16)
        print(name, arrays[f"{name}/heldout"].shape, flush=True)
    np.savez(out / "adapt_heldout.npz", **arrays)


def run4(folder: Path, out: Path, model: Path) -> None:
    """Round 4: ``adapt_with_check`` on every collection; every candidate scored as served."""
    from encoders.csr import CSRSettings
    from encoders.training.adapt import AUTO, adapt_with_check

    s = Sweep(folder, model)
    held = np.load(folder / "adapt_heldout.npz")
    extra = json.loads((model / "lsr_encoder.json").read_text())["extra"]
    base_settings = CSRSettings.from_dict(extra)
    qk = base_settings.query_k or base_settings.default_k
    report: dict = {"model": str(model), "base_settings": extra, "final": {}}
    for coll in ["scifact", *[c for c in COLLECTIONS if c != "scifact"]]:
        splits = ("train", "test") if coll == "scifact" else ("test",)

        def served(sae: TopKSAE, settings: CSRSettings, coll=coll, splits=splits) -> dict:
            return {sp: s.ndcg(sae, coll, sp, qk, settings.normalize) for sp in splits}

        docs = s.rows(f"{coll}/docs")
        start = time.perf_counter()
        chosen, tried = adapt_with_check(
            s.base,
            base_settings,
            docs,
            s.rows(f"{coll}/heads"),
            s.z[f"{coll}/head_doc"],
            AdaptConfig(wide_query_k=AUTO),
            held[f"{coll}/heldout"].astype(np.float32),
            device=s.dev,
        )
        row = {
            "dense": s.dense(coll),
            "general": served(s.base, base_settings),
            "seconds": time.perf_counter() - start,
            "heldout": chosen.result.heldout,
            "chosen_width": chosen.result.config.wide_query_k,
        }
        for c in tried:
            row[f"width_{c.result.config.wide_query_k}"] = {
                **served(c.result.sae.float(), c.settings),
                "overlap": c.overlap,
                "normalize": c.settings.normalize,
                "steps": c.result.steps,
            }
        row["chosen"] = row[f"width_{row['chosen_width']}"]
        report["final"][coll] = row
        print(coll, json.dumps(row), flush=True)
    train = report["final"]["scifact"]
    report["auto_stays_default"] = bool(
        train["chosen"]["train"] >= train["width_0"]["train"] - 0.002
    )
    print("auto stays the default:", report["auto_stays_default"], flush=True)
    (out / "sweep4.json").write_text(json.dumps(report, indent=1) + "\n")


# Round 5 (round 4's check chose the wide training on all five collections; on the test
# queries, reported only, that is below the general model on CACM and MED, where the
# documents-width training gains): one adaptation trained for both, a ``wide_query_share`` of
# its steps for queries at 1,024 and the rest for queries as documents, served as
# ``adapted_settings`` serves a wide training (normalised). Fixed before the run: a variant
# becomes the default if its SciFact *train* nDCG@10 as served is at least round 4's choice
# (0.6113) + 0.002; the larger such one if both are.
# What happened (benchmarks/results/csr_adapt_sweep{4,5}_h200.json): round 4's check kept the
# wide training on all five collections, and its rule kept "auto" (0.6113 within 0.002 of
# 0.6121); round 5's rule picked r5_mixed25 (0.6134 against a bar of 0.6133). Neither rule was
# followed: the default stays round 3's choice (queries as documents, AdaptConfig), because the
# margins are below what 809 queries separate, and the test queries, read after the runs, put
# both below it (mean share of dense 0.979 and 0.961 against 0.988) and below the general model
# on CACM. That decision saw the test numbers; the adaptation model card says so.
ROUND5 = {
    "r5_mixed50": dict(wide_query_k=1024, wide_query_share=0.5),
    "r5_mixed25": dict(wide_query_k=1024, wide_query_share=0.25),
}
ROUND4_TRAIN = 0.6113


def run5(folder: Path, out: Path, model: Path) -> None:
    """Round 5: the ROUND5 variants on every collection, with the held-out overlap."""
    from encoders.csr import CSRSettings
    from encoders.training.adapt import adapted_settings, heldout_overlap

    s = Sweep(folder, model)
    held = np.load(folder / "adapt_heldout.npz")
    base_settings = CSRSettings.from_dict(
        json.loads((model / "lsr_encoder.json").read_text())["extra"]
    )
    report: dict = {"model": str(model), "variants": ROUND5, "final": {}}
    for coll in ["scifact", *[c for c in COLLECTIONS if c != "scifact"]]:
        splits = ("train", "test") if coll == "scifact" else ("test",)
        row: dict = {"dense": s.dense(coll)}
        for name, over in ROUND5.items():
            sae, seconds, steps = adapt2(s, coll, over)
            settings = adapted_settings(base_settings, AdaptConfig(**over))
            overlap = heldout_overlap(
                sae, settings, s.rows(f"{coll}/docs"), held[f"{coll}/heldout"].astype(np.float32)
            )
            row[name] = {
                **scores3(s, sae, coll, splits, over),
                "overlap": overlap,
                "seconds": seconds,
                "steps": steps,
            }
        report["final"][coll] = row
        print(coll, json.dumps(row), flush=True)
    train = report["final"]["scifact"]
    passed = [n for n in ROUND5 if train[n]["train_served"] >= ROUND4_TRAIN + 0.002]
    report["selected"] = max(passed, key=lambda n: train[n]["train_served"]) if passed else None
    print("selected over round 4's choice:", report["selected"], flush=True)
    (out / "sweep5.json").write_text(json.dumps(report, indent=1) + "\n")


# Round 6 (rounds 3-5 put the four trainings within 0.007 of each other on SciFact *train*, one
# seed each, below what 809 queries and one seed tell apart): the same four on SciFact again
# with other seeds (``AdaptConfig.seed``: which documents and pairs each step draws), so that
# a difference can be told from seed noise. Fixed before the run (written 2026-12-05, no GPU
# that session): over seeds 0 (rounds 3-5, below) and those run here, a variant replaces the
# default (queries as documents) only if its mean SciFact-train nDCG@10 as served beats the
# default's by at least 0.003 and by more than twice the standard error of the per-seed
# paired differences; of several, the larger mean. The test queries are recorded, not used.
# Ran so far: the default at seed 1 on a 2-core CPU (``--seeds 1 --variants documents``,
# benchmarks/results/csr_adapt_sweep6_cpu_documents_seed1.json): SciFact train 0.6033 against
# seed 0's 0.6121 (an H100), a seed's spread larger than the four variants' (0.007).
# Ran on one H200 on 2026-12-06 (all four at seeds 1 and 2,
# benchmarks/results/csr_adapt_sweep6_h200.json): no variant passed (wide +0.0034, standard
# error 0.0021), so the default stays.
ROUND6 = {
    "documents": dict(wide_query_k=0),
    "wide": dict(wide_query_k=1024),
    "mixed50": dict(wide_query_k=1024, wide_query_share=0.5),
    "mixed25": dict(wide_query_k=1024, wide_query_share=0.25),
}
# SciFact train as served at seed 0 (csr_adapt_sweep3_h100.json r3_sym and r3_wide,
# csr_adapt_sweep5_h200.json r5_mixed50 and r5_mixed25).
ROUND6_SEED0 = {
    "documents": 0.6121389104466882,
    "wide": 0.61133433453521,
    "mixed50": 0.6068033716456175,
    "mixed25": 0.6133918874476877,
}
ROUND6_MARGIN = 0.003


def round6_rule(train: dict[str, list[float]], default: str = "documents") -> dict:
    """Round 6's rule on ``train`` (variant -> its SciFact-train scores, one per seed, in the
    same seed order): each variant's mean, its paired gain over ``default`` and that gain's
    standard error; ``selected``: the variant that replaces the default, or None."""
    base = np.asarray(train[default], float)
    out: dict = {"mean": {}, "gain": {}, "stderr": {}, "passed": []}
    for name, values in train.items():
        v = np.asarray(values, float)
        out["mean"][name] = float(v.mean())
        if name == default:
            continue
        diff = v - base
        err = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
        out["gain"][name], out["stderr"][name] = float(diff.mean()), err
        if diff.mean() >= ROUND6_MARGIN and diff.mean() > 2 * err:
            out["passed"].append(name)
    out["selected"] = max(out["passed"], key=lambda n: out["mean"][n], default=None)
    return out


def run6(
    folder: Path, out: Path, model: Path, seeds: list[int], variants: list[str] | None = None
) -> None:
    """Round 6: the ROUND6 ``variants`` (default all) on SciFact at each of ``seeds``; the
    rule above decides (over the variants run)."""
    s = Sweep(folder, model)
    names = variants or list(ROUND6)
    report: dict = {"model": str(model), "variants": ROUND6, "seeds": seeds, "runs": {}}
    report["device"], report["machine"] = str(s.dev), s.machine()
    train = {name: [ROUND6_SEED0[name]] for name in names}
    for seed in seeds:
        for name in names:
            over = ROUND6[name]
            sae, seconds, steps = adapt2(s, "scifact", {**over, "seed": seed})
            row = {
                **scores3(s, sae, "scifact", ("train", "test"), over),
                "seconds": seconds,
                "steps": steps,
            }
            report["runs"][f"{name}_seed{seed}"] = row
            train[name].append(row["train_served"])
            print(name, seed, json.dumps(row), flush=True)
    report["train_served_by_seed"] = {"seeds": [0, *seeds], **train}
    report["rule"] = round6_rule(train) if "documents" in train else None
    print("round 6:", json.dumps(report["rule"]), flush=True)
    (out / "sweep6.json").write_text(json.dumps(report, indent=1) + "\n")


def _round(sub: argparse._SubParsersAction, name: str, help: str) -> argparse.ArgumentParser:
    """A GPU round's subcommand: the carried folder and the base model directory."""
    one = sub.add_parser(name, help=help)
    one.add_argument("folder", type=Path)
    one.add_argument("--model", type=Path, default=MODEL, help="the base model directory")
    return one


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    for name, what in (("prepare", "the collections"), ("prepare-heldout", "held-out sentences")):
        prep = sub.add_parser(name, help=f"embed {what} here (CPU)")
        prep.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
        prep.add_argument("--out", type=Path, default=Path(".devcarry"))
    go = sub.add_parser("run", help="the sweep (GPU)")
    go.add_argument("folder", type=Path)
    two = _round(sub, "run2", "round 2 (GPU): ROUND2 variants, then the final ones")
    two.add_argument("--variants", nargs="*", default=[], choices=sorted(ROUND2))
    two.add_argument(
        "--final",
        nargs="*",
        default=[],
        choices=[*sorted(ROUND2), "selected"],
        help="variants to run on every collection ('selected': the sweep's choice)",
    )
    _round(sub, "run3", "round 3 (GPU): wide-trained vs symmetric adaptation")
    _round(sub, "run4", "round 4 (GPU): adapt_with_check on every collection")
    _round(sub, "run5", "round 5 (GPU): adaptations trained for both widths")
    six = _round(sub, "run6", "round 6 (GPU): the four trainings at more seeds")
    six.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    six.add_argument("--variants", nargs="+", default=None, choices=sorted(ROUND6))
    args = p.parse_args()
    if args.step == "run2" and "selected" in args.final and not args.variants:
        p.error("--final selected needs --variants to select from")
    out = Path(os.environ.get("OUT", "/tmp"))
    if args.step == "prepare":
        prepare(args.data_dir, args.out)
    elif args.step == "prepare-heldout":
        prepare_heldout(args.data_dir, args.out)
    elif args.step == "run":
        run(args.folder, out)
    elif args.step == "run2":
        run2(args.folder, out, args.model, args.variants, args.final)
    elif args.step == "run3":
        run3(args.folder, out, args.model)
    elif args.step == "run4":
        run4(args.folder, out, args.model)
    elif args.step == "run5":
        run5(args.folder, out, args.model)
    else:
        run6(args.folder, out, args.model, args.seeds, args.variants)


if __name__ == "__main__":
    main()
