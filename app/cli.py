"""The ``lsr`` command line: one sub-command per module in ``app.commands``.

Each module in ``app.commands`` exposes ``register(subparsers)``, which adds its
sub-parser and sets ``func`` to a callable taking the parsed arguments and
returning an exit code. Modules are imported lazily so that ``lsr --help`` stays
fast and a sub-command never pays for another's imports (torch, Ray, ...).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> (module, one-line help); the module is imported only when chosen.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("app.commands.serve", "run the REST search service"),
    "index": ("app.commands.index", "encode a corpus and build an index (batch job)"),
    "eval": ("app.commands.eval", "evaluate an encoder + index on BEIR / MS MARCO"),
    "models": ("app.commands.models", "fetch, list and adapt offline models"),
    "bench": ("app.commands.bench", "run a benchmark script from benchmarks/"),
    "repair": ("app.commands.repair", "recover a damaged (quarantined) collection"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lsr", description="Learned sparse retrieval engine")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if a in COMMANDS), None)
    for name, (module, help_text) in COMMANDS.items():
        if name == chosen:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
