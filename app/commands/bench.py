"""``lsr bench NAME [ARGS...]``: run ``benchmarks/bench_NAME.py`` with ``ARGS``.

A shortcut for a source checkout (the benchmark scripts are not installed with the
package): ``lsr bench index --dataset packages`` equals
``python benchmarks/bench_index.py --dataset packages``: the script runs in its own Python
process with every argument as given (``--help`` included), and its exit status is
``lsr``'s (a signal N gives 128 + N, as a shell reports it).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def available() -> list[str]:
    """Benchmark names found next to the package (``bench_NAME.py``)."""
    return sorted(p.stem.removeprefix("bench_") for p in BENCHMARKS.glob("bench_*.py"))


def run(args: argparse.Namespace) -> int:
    script = BENCHMARKS / f"bench_{args.name}.py"
    if not script.is_file():
        print(
            f"no benchmark {args.name!r}; available: {', '.join(available()) or 'none'}",
            file=sys.stderr,
        )
        return 2
    with subprocess.Popen([sys.executable, str(script), *args.args]) as child:
        try:
            code = child.wait()
        except KeyboardInterrupt:  # the child got the same SIGINT; let it finish its way
            code = child.wait()
    return 128 - code if code < 0 else code


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark script from benchmarks/",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("name", help=f"benchmark name ({', '.join(available()) or 'none found'})")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    parser.set_defaults(func=run)
