"""Train a CSR model (TopK sparse autoencoder over all-MiniLM-L6-v2) from the shared data.

    python -m encoders.training.train_csr --data-dir ../shared/data \\
        --out /tmp/csr --cache /tmp/csr_emb.npz [--device cuda]

A general model, trained on no text of the evaluation collections, from a broad corpus
(:mod:`encoders.training.corpus`), evaluated on every collection (none of them in training):

    python -m encoders.training.train_csr --recipe general --corpus CORPUS_DIR \\
        --data-dir ../shared/data --out /tmp/csr-general --eval [--device cuda]

``--leave-out NAME`` trains on the other collections only (leave one collection out);
``--eval`` then reports each collection's dense / CSR k=16..128 / BM25 nDCG@10 and whether
any of its text was in training.

The defaults are ``--recipe csr-minilm``, the arguments the shipped general model was trained
with (it needs ``--corpus``: the sample ``encoders.training.sample_corpus`` writes);
``--recipe csr-minilm-indomain`` gives those of the earlier in-domain model (:data:`RECIPES`;
any flag still overrides one of them; booleans have ``--no-`` forms);
``--recipe base`` starts from :class:`TrainConfig`'s plain defaults instead (uniform sampling,
no per-source distillation), which ``run_device.sh`` builds its variants on.

Steps: collect texts and pairs (:mod:`encoders.training.data`), embed them once with the
dense model (cached in ``--cache``), train (:mod:`encoders.training.trainer`), score
nDCG@10 on held-out SciFact *train* queries and the label-free fidelity to dense retrieval
(:func:`dev_callback`) as it goes, and write the model directory
(``lsr_encoder.json``, ``sae.safetensors``, ``train_log.json``, ``loss_curves.png``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch

from encoders.csr import CSREncoder, CSRSettings, save_csr_model
from encoders.csr_embedder import DenseEmbedder, resolve_device
from encoders.csr_sae import TopKSAE
from encoders.training.data import TrainingTexts, build_training_texts
from encoders.training.retrieval import COLLECTIONS
from encoders.training.trainer import TrainConfig, train_sae

logger = logging.getLogger("train_csr")


def texts_fingerprint(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()


def embed_cached(texts: list[str], embedder_factory, cache: Path | None) -> np.ndarray:
    """Embeddings of ``texts``, from ``cache`` (npz, fp16) when it holds these exact texts."""
    key = texts_fingerprint(texts)
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            if str(z["fingerprint"]) == key:
                logger.info("embeddings from cache %s", cache)
                return z["embeddings"].astype(np.float32)
        logger.info("cache %s is for other texts: recomputing", cache)
    emb = embedder_factory().embed(texts, progress=True)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, embeddings=emb.astype(np.float16), fingerprint=np.array(key))
    return emb


def dev_callback(
    data: TrainingTexts,
    emb: np.ndarray,
    device: torch.device,
    normalize: bool = True,
    query_k: int | None = None,
):
    """``on_log`` hook: the label-free fidelity of each BEIR corpus at k = 64, the share of
    the held-out SciFact train queries' variance their k = 64 codes explain, and their nDCG@10
    at k = 32 and 64 (when ir_measures is installed), and as served (``dev_ndcg10_served``:
    documents at k = 64, queries at ``query_k``, which may be wider) when ``query_k`` is given.

    Fidelity: the share of the dense model's top 10 that code retrieval also puts in its top
    10, for the corpus's held-out pseudo queries; ``dev_fidelity_min`` is the worst corpus.
    ``dev_query_fve``: queries are reconstructed far worse than documents, and that is where
    codes lose to the dense model, so it is watched without any judgment;
    ``dev_sentence_fve_<corpus>`` (and ``_min``) does the same for each corpus's held-out
    sentences, short in-domain texts like its queries.
    """
    from encoders.training.losses import normalized_mse
    from encoders.training.retrieval import ndcg_at_10, recall_of, top_dense, top_sparse

    fidelity = {
        name: (emb[q], emb[d], top_dense(emb[q], emb[d], depth=10)[0])
        for name, (q, d) in data.fidelity.items()
    }
    labeled = bool(data.dev_query_rows)
    if labeled:
        try:
            import ir_measures  # noqa: F401
        except ImportError:
            logger.warning("ir_measures missing: no dev nDCG during training")
            labeled = False
    if not data.dev_query_rows and not fidelity and not data.sentence_dev:
        return None
    q, d = emb[data.dev_query_rows], emb[data.dev_doc_rows]
    fve_sets = {"dev_query_fve": q} if len(q) > 1 else {}
    for name, rows in data.sentence_dev.items():
        if len(rows) > 1:
            fve_sets[f"dev_sentence_fve_{name}"] = emb[rows]
    fve_sets = {
        key: torch.as_tensor(x, dtype=torch.float32, device=device) for key, x in fve_sets.items()
    }
    dense = None
    if labeled:
        dense = ndcg_at_10(*top_dense(q, d), data.dev_query_ids, data.dev_doc_ids, data.dev_qrels)
        logger.info("dev (held-out SciFact train queries) dense nDCG@10 = %.4f", dense)

    def on_log(step: int, sae: TopKSAE) -> dict[str, float]:
        settings = CSRSettings(default_k=min(64, sae.config.k), normalize=normalize)
        enc = CSREncoder(sae, settings, device=device)
        row: dict[str, float] = {}
        k64 = min(64, sae.config.k)
        for name, (fq, fd, dense_top) in fidelity.items():
            top = top_sparse(enc.sparsify(fq, k64), enc.sparsify(fd, k64), 10)
            row[f"dev_fidelity_{name}"] = recall_of(top[0], dense_top)
        if fidelity:
            row["dev_fidelity_min"] = min(row[f"dev_fidelity_{n}"] for n in fidelity)
        with torch.no_grad():
            for key, x in fve_sets.items():
                row[key] = 1.0 - float(normalized_mse(x, sae.decode(*sae.encode(x, k64))))
        sentence = [v for key, v in row.items() if key.startswith("dev_sentence_fve_")]
        if sentence:
            row["dev_sentence_fve_min"] = min(sentence)
        if dense is not None:
            row["dev_dense_ndcg10"] = dense
            for k in (32, 64):
                if k <= sae.config.k:
                    ranked = top_sparse(enc.sparsify(q, k), enc.sparsify(d, k))
                    row[f"dev_ndcg10_k{k}"] = ndcg_at_10(
                        *ranked, data.dev_query_ids, data.dev_doc_ids, data.dev_qrels
                    )
            if query_k is not None:
                ranked = top_sparse(enc.sparsify(q, query_k, wide=True), enc.sparsify(d, k64))
                row["dev_ndcg10_served"] = ndcg_at_10(
                    *ranked, data.dev_query_ids, data.dev_doc_ids, data.dev_qrels
                )
        return row

    return on_log


def served_settings(args: argparse.Namespace, k: int) -> CSRSettings:
    """The settings the trained model is saved (and evaluated) with."""
    return CSRSettings(
        default_k=min(args.default_k, k),
        query_k=min(args.query_k, args.latent_dim),
        normalize=args.normalize_codes,
    )


def evaluate_model(
    args: argparse.Namespace, sae: TopKSAE, device: torch.device, trained_on: tuple[str, ...]
) -> dict:
    """nDCG@10 of dense, CSR at k = 16..128 and BM25 on every shared collection, each marked
    with whether its text was trained on; printed and written to ``OUT/eval.json``."""
    from encoders.training.evaluate import evaluate, format_table

    cache: dict[str, np.ndarray] = {}
    if args.eval_cache and args.eval_cache.is_file():
        with np.load(args.eval_cache) as z:
            cache = {k: z[k] for k in z.files}
    embedder = DenseEmbedder(args.dense_model, device=device, batch_size=args.embed_batch_size)
    settings = served_settings(args, sae.config.k)
    enc = CSREncoder(sae.to(device), settings, embedder=embedder)
    names = [c for c in args.eval_collections if (args.data_dir / c / "corpus.jsonl").is_file()]
    options = {"cache": cache, "in_training": trained_on}
    result = evaluate(enc, args.data_dir, names, (16, 32, 64, 128), **options)
    if args.eval_cache and not args.eval_cache.is_file():
        np.savez(args.eval_cache, **{k: v.astype(np.float16) for k, v in cache.items()})
    print(format_table(result))
    (args.out / "eval.json").write_text(json.dumps(result, indent=1) + "\n")
    sae.cpu()
    return result


def plot_history(history: list[dict[str, float]], path: Path) -> Path | None:
    """Loss curves (log scale) and dev nDCG@10 against step, as a PNG; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib missing: no loss curve plot")
        return None
    history = [h for h in history if "loss" in h]
    steps = [h["step"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("loss", "recon", "recon_4k", "auxk", "distill", "qdistill", "infonce"):
        if key in history[0]:
            ax1.plot(steps, [max(h[key], 1e-6) for h in history], label=key)
    ax1.set_yscale("log")
    ax1.set_xlabel("step")
    ax1.set_title("training losses")
    ax1.legend()
    per_corpus = ("dev_fidelity_", "dev_sentence_fve_")
    shown = [k for k in history[-1] if k.startswith("dev_")]
    for key in sorted(k for k in shown if k.endswith("_min") or not k.startswith(per_corpus)):
        ax2.plot(steps, [h.get(key, np.nan) for h in history], label=key[4:])
    ax2.set_xlabel("step")
    ax2.set_title("dev: SciFact train nDCG@10, fidelity to dense, FVE of short texts")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# Starting points for the flags: "csr-minilm" is what encoders/models/csr-minilm (the general
# model) was trained with (below); "csr-minilm-indomain" what encoders/models/csr-minilm-indomain
# was trained with (call9_T6 in benchmarks/results/csr_variants.json: it ran 5,135 steps under
# a 300 s budget on a shared H100, so here a fixed 5,200 steps); "base" is TrainConfig as it
# stands.
RECIPES: dict[str, dict[str, object]] = {
    "base": {},
    "csr-minilm-indomain": {
        "domain_weight": 0.75,
        "distill_by_group": True,
        "distill_coef": 3.0,
        "distill_scale": 50.0,
        "contrastive_coef": 0.5,
        "lr": 0.001,
        "sentence_texts": True,
        "seed": 6,
        "steps": 5200,
    },
    # No text of any evaluation collection: a broad corpus (--corpus) only, sampled uniformly,
    # distillation within one source at a time, pseudo pairs (first sentence vs the rest).
    "general": {
        "collections": [],
        "vectors": False,
        "distill_by_group": True,
        "distill_coef": 3.0,
        "distill_scale": 50.0,
        "contrastive_coef": 0.5,
        "lr": 0.001,
        "steps": 5200,
    },
}
# The general recipe as two CPU cores can run it (no GPU was lent for the general model):
# a sample of the corpus (``sample_corpus``) read at 128 tokens, (first sentence, whole text)
# pairs (nothing more to embed), 4,096 data-initialised latents (fewer, broader features for
# a small sample), half batches, no 4k term, ranking losses at one k per step, a time budget.
RECIPES["general-cpu"] = {
    **RECIPES["general"],
    "latent_dim": 4096,
    "init_from_data": True,
    "batch_size": 512,
    "distill_batch": 256,
    "pair_batch_size": 256,
    "recon_4k_coef": 0.0,
    "ranking_level_per_step": True,
    "warmup_steps": 50,
    "steps": 3000,
    "time_budget_s": 1500.0,
    "log_every": 100,
    "embed_max_length": 128,
    "pair_with": "whole",
    "scifact_dev": True,
}
# The earlier general model, trained on a CPU: general-cpu with half of the distillation batches
# neighbourhoods (run B of two side by side, chosen on SciFact train queries).
RECIPES["general-cpu-b"] = {**RECIPES["general-cpu"], "distill_neighbourhood": 0.5}
# The general recipe at GPU scale (encoders/training/run_general.sh): the whole corpus read at
# 256 tokens, 8,192 data-initialised latents, full batches, every ranking term every step, half
# of the distillation batches neighbourhoods, the SciFact train queries as the dev log.
RECIPES["general-gpu"] = {
    **RECIPES["general"],
    "init_from_data": True,
    "distill_neighbourhood": 0.5,
    "pair_with": "whole",
    "scifact_dev": True,
    "log_every": 250,
}
# The shipped general model (encoders/models/csr-minilm): run "e" of the five GPU runs
# (benchmarks/results/csr_general_runs.json), nine in ten distillation batches neighbourhoods at
# twice the distillation weight, 150 s on an H200; chosen by the rule fixed before the runs (the
# largest SciFact train dev nDCG@10 at k = 64 at the last log).
RECIPES["csr-minilm"] = {
    **RECIPES["general-gpu"],
    "distill_neighbourhood": 0.9,
    "distill_coef": 6.0,
    "time_budget_s": 150.0,
}


def favoured_groups(groups: list[str], names: list[str]) -> np.ndarray:
    """The group ids of the sources ``names`` (``--favour-sources``), which ``domain_weight``
    then favours; an unknown name stops the run."""
    wanted = set(names)
    missing = sorted(wanted - set(groups))
    if missing:
        raise SystemExit(f"--favour-sources: no source named {', '.join(missing)}")
    return np.asarray([i for i, g in enumerate(groups) if g in wanted], np.int64)


def corpus_files(paths: list[Path]) -> tuple[Path, ...]:
    """Files given, and the ``*.txt`` / ``*.txt.gz`` files of directories given (sorted)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.name.endswith((".txt", ".txt.gz"))))
        elif path.is_file():
            out.append(path)
        else:
            raise SystemExit(f"--corpus {path}: no such file or directory")
    return tuple(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="csr-minilm",
        help="the defaults to start from (default: the shipped csr-minilm's own arguments)",
    )
    p.add_argument("--data-dir", type=Path, required=True, help="the shared data folder")
    p.add_argument(
        "--collections",
        nargs="*",
        default=list(COLLECTIONS),
        help="BEIR folders of --data-dir to train on (none: a general model)",
    )
    p.add_argument("--leave-out", nargs="*", default=[], help="collections not to train on")
    p.add_argument("--corpus", type=Path, nargs="*", default=[], help="text files or folders")
    p.add_argument("--vectors", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--eval", action="store_true", help="score the collections after training")
    p.add_argument("--eval-collections", nargs="*", default=list(COLLECTIONS))
    p.add_argument("--eval-cache", type=Path, default=None, help="npz cache of eval embeddings")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--dense-model", default=None, help="all-MiniLM-L6-v2 folder (default: found)")
    p.add_argument("--cache", type=Path, default=None, help="npz cache of the text embeddings")
    p.add_argument("--device", default="auto")
    p.add_argument("--embed-batch-size", type=int, default=None)
    p.add_argument(
        "--embed-max-length",
        type=int,
        default=256,
        help="tokens the dense model reads of a training text (evaluation always reads 256)",
    )
    p.add_argument(
        "--pair-with",
        choices=("rest", "whole"),
        default="rest",
        help="a corpus text's pseudo pair: (first sentence, rest) or (first sentence, text)",
    )
    p.add_argument(
        "--scifact-dev",
        action="store_true",
        help="without SciFact in training: all its train queries as the dev set (no loss)",
    )
    p.add_argument("--limit-per-source", type=int, default=None, help="cap texts per source")
    p.add_argument(
        "--favour-sources",
        nargs="*",
        default=[],
        metavar="SOURCE",
        help="corpus sources (file names without .txt[.gz]) from which a --domain-weight share"
        " of each reconstruction and pair batch is drawn",
    )
    p.add_argument("--default-k", type=int, default=64, help="k the encoder uses by default")
    # Chosen on SciFact *train* queries with the general model (documents at k = 64): the
    # narrowest query k within 0.002 of the best nDCG@10 of those tried
    # (benchmarks/bench_csr_query_k.py, benchmarks/results/csr_query_k.json).
    p.add_argument(
        "--query-k",
        type=int,
        default=1024,
        help="k of a query's code by default (may exceed --k, up to --latent-dim)",
    )
    p.add_argument(
        "--normalize-codes",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the saved model scales each code to unit length (CSRSettings.normalize)",
    )
    p.add_argument(
        "--dev-fraction",
        type=float,
        default=0.2,
        help="share of SciFact train queries held out for the dev nDCG (0: none)",
    )
    p.add_argument(
        "--sentence-texts",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also reconstruct the sentences of the BEIR documents (short in-domain texts)",
    )
    p.add_argument("--no-dev", action="store_true", help="skip the dev nDCG during training")
    p.add_argument(
        "--query-texts",
        action="store_true",
        help="also reconstruct vectors/*_queries texts (in-domain), for question-style input",
    )
    for f in fields(TrainConfig):
        if f.name == "k_levels":
            p.add_argument("--k-levels", type=int, nargs="+", default=list(f.default))
        elif f.type in ("bool", bool):
            flag = f"--{f.name.replace('_', '-')}"
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            caster = float if isinstance(f.default, float) else int
            p.add_argument(f"--{f.name.replace('_', '-')}", type=caster, default=f.default)
    recipe, _ = p.parse_known_args(argv)
    p.set_defaults(**RECIPES[recipe.recipe])
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    collections = tuple(c for c in args.collections if c not in args.leave_out)
    data = build_training_texts(
        args.data_dir,
        collections=collections,
        corpus_files=corpus_files(args.corpus),
        vectors=args.vectors,
        limit_per_source=args.limit_per_source,
        dev_fraction=args.dev_fraction,
        query_texts=args.query_texts,
        sentence_texts=args.sentence_texts,
        pair_with=args.pair_with,
        scifact_dev=args.scifact_dev,
    )
    arrays = data.arrays()
    if args.favour_sources:
        arrays["domain_groups"] = favoured_groups(data.groups, args.favour_sources)
    logger.info(
        "%d unique texts, %d for reconstruction, %d pairs (%d labeled); sources %s",
        len(data.texts),
        len(arrays["recon"]),
        len(arrays["pair_query"]),
        int(arrays["pair_labeled"].sum()),
        data.sources,
    )

    def factory() -> DenseEmbedder:
        return DenseEmbedder(
            args.dense_model,
            device=device,
            batch_size=args.embed_batch_size,
            max_length=args.embed_max_length,
        )

    emb = embed_cached(data.texts, factory, args.cache)
    served = served_settings(args, cfg.k)
    on_log = (
        None
        if args.no_dev
        else dev_callback(data, emb, device, args.normalize_codes, served.query_k)
    )
    result = train_sae(
        emb,
        arrays["recon"],
        arrays["pair_query"],
        arrays["pair_doc"],
        arrays["pair_labeled"],
        cfg,
        device=device,
        on_log=on_log,
        groups=arrays["group"],
        domain_groups=arrays["domain_groups"],
    )
    sae = result.sae.cpu().eval()
    settings = served
    save_csr_model(
        args.out,
        sae,
        settings,
        description=f"CSR: all-MiniLM-L6-v2 + TopK SAE ({cfg.latent_dim} latents, k <= {cfg.k})",
    )
    log = {
        "train_config": asdict(cfg),
        "data": {
            "unique_texts": len(data.texts),
            "reconstruction_texts": len(arrays["recon"]),
            "pairs": len(arrays["pair_query"]),
            "labeled_pairs": int(arrays["pair_labeled"].sum()),
            "dev_queries": len(data.dev_query_ids),
            "fidelity_queries": {n: len(q) for n, (q, _) in data.fidelity.items()},
            "sources": data.sources,
            "groups": data.groups,
            "collections_trained_on": list(collections),
            "corpus_files": [str(p) for p in corpus_files(args.corpus)],
        },
        "device": str(device),
        "torch": torch.__version__,
        "train_seconds": round(result.seconds, 1),
        "history": result.history,
    }
    if args.eval:
        log["eval"] = evaluate_model(args, sae, device, collections)
    (args.out / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")
    plot_history(result.history, args.out / "loss_curves.png")
    print(
        json.dumps(
            {"out": str(args.out), "seconds": log["train_seconds"], "last": result.history[-1]}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
