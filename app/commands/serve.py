"""``lsr serve``: run the REST service with uvicorn."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the REST search service")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where collections live (env LSR_DATA_DIR; default ./lsr-data)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=None, help="worker threads (LSR_THREADS)")
    parser.add_argument(
        "--import-root",
        type=Path,
        action="append",
        default=None,
        metavar="DIR",
        help="a folder indexing jobs may read (repeatable; env LSR_IMPORT_ROOTS; "
        "default DATA_DIR/import)",
    )
    parser.add_argument(
        "--recall-sample-rate",
        type=_fraction,
        default=None,
        metavar="FRACTION",
        help="share of searches re-run exactly in the background for the live Recall@10 "
        "estimate (env LSR_RECALL_SAMPLE_RATE; default 0.01; 0 turns it off)",
    )
    parser.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        default=None,
        help="do not measure new sealed segments' recall/cost fronts (LSR_CALIBRATE_SEGMENTS"
        "=false); recall targets then search such segments exactly",
    )
    parser.add_argument("--log-level", default="info")
    parser.set_defaults(func=run)


def _fraction(text: str) -> float:
    """A number in [0, 1] (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The environment's settings, with the command line's options on top."""
    from app.settings import Settings

    overrides: dict = {}
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if args.threads is not None:
        overrides["threads"] = args.threads
    if args.import_root:
        overrides["import_roots"] = ",".join(str(p) for p in args.import_root)
    if args.recall_sample_rate is not None:
        overrides["recall_sample_rate"] = args.recall_sample_rate
    if args.calibrate is not None:
        overrides["calibrate_segments"] = args.calibrate
    return Settings(**overrides)


def run(args: argparse.Namespace) -> int:
    # Several request threads may call parallel Numba kernels: use a thread-safe layer.
    os.environ.setdefault("NUMBA_THREADING_LAYER", "omp")
    import uvicorn

    from app.main import create_app

    settings = settings_from_args(args)
    print(
        f"lsr serve: data dir {settings.data_dir.resolve()}, http://{args.host}:{args.port}/docs",
        flush=True,
    )
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )
    return 0
