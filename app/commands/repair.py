"""``lsr repair --data-dir DIR COLLECTION [--dry-run]``: the only way a damaged WAL or segment
is ever cut. Shows what is damaged, what will be recovered and what is lost; without
``--dry-run`` it repairs, keeping every original it changes under DIR/repair-backups/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "repair",
        help="recover a damaged (quarantined) collection",
        description=__doc__,
    )
    parser.add_argument("collection", help="the collection's name")
    parser.add_argument("--data-dir", type=Path, required=True, help="the service's data dir")
    parser.add_argument(
        "--dry-run", action="store_true", help="only say what would be recovered and lost"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.services.registry import NAME_RE
    from app.storage.repair import inspect, repair

    path = Path(args.data_dir) / "collections" / args.collection
    if not NAME_RE.fullmatch(args.collection) or not path.is_dir():
        print(f"lsr repair: no collection {args.collection!r} in {args.data_dir}", file=sys.stderr)
        return 2
    plan = inspect(path)
    print(plan.report())
    if not plan.findings:
        return 0
    if not plan.repairable:
        print("lsr repair: this damage cannot be repaired automatically", file=sys.stderr)
        return 1
    if args.dry_run:
        print("dry run: nothing was changed")
        return 0
    backup = repair(plan, Path(args.data_dir) / "repair-backups")
    print(f"repaired; the originals of every changed file are in {backup}")
    print("restart `lsr serve` to open the collection again")
    return 0
