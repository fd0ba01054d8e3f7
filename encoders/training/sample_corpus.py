"""A seeded, mixed sample of the general corpus: what a CPU can embed in the time it has.

    python -m encoders.training.sample_corpus --corpus CORPUS_DIR --out DIR --chunks N

The general corpus (:mod:`encoders.training.corpus`, 383k texts) takes a GPU about a minute
to embed and two CPU cores hours. This takes, from each source's texts in a seeded shuffle,
the first ``N`` chunks' worth in a fixed mix (``MIX`` texts per chunk), so that a CPU can
embed the sample chunk by chunk, stop at any chunk, and the sample is still reproducible.
Writes ``DIR/<source>.txt`` (one text a line) and ``DIR/sample.json`` (counts).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

# Texts per chunk from each source: definitions, docstrings and computing prose weighted up
# (their texts are longer and read more like documents), short package blurbs down.
MIX: dict[str, int] = {
    "docstrings": 800,
    "gcide": 1000,
    "wordnet": 600,
    "packages": 500,
    "foldoc": 450,
    "fortunes": 400,
    "jargon": 120,
    "readmes": 130,
}


def shuffled_source(corpus_dir: Path, name: str) -> list[str]:
    """The non-empty lines of ``corpus_dir/<name>.txt[.gz]`` in the source's seeded order."""
    from encoders.training.data import read_lines

    found = [corpus_dir / f"{name}{ext}" for ext in (".txt", ".txt.gz")]
    path = next((p for p in found if p.is_file()), None)
    if path is None:
        raise FileNotFoundError(f"{corpus_dir} has no {name}.txt[.gz]")
    lines = read_lines(path)
    random.Random(sum(map(ord, name)) + 7).shuffle(lines)
    return lines


def sample(corpus_dir: Path, chunks: int) -> dict[str, list[str]]:
    """Each source's first ``chunks * MIX[source]`` texts in its seeded order."""
    return {name: shuffled_source(corpus_dir, name)[: chunks * n] for name, n in MIX.items()}


def chunk_texts(sources: dict[str, list[str]], chunk: int) -> list[tuple[str, str]]:
    """(source, text) of chunk number ``chunk``, in ``MIX`` order: the unit a CPU embeds."""
    out = []
    for name, n in MIX.items():
        out.extend((name, t) for t in sources[name][chunk * n : (chunk + 1) * n])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, required=True, help="the general corpus folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--chunks", type=int, required=True, help="chunks of the mix to take")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, texts in sample(args.corpus, args.chunks).items():
        (args.out / f"{name}.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
        counts[name] = len(texts)
    card = {"chunks": args.chunks, "mix": MIX, "texts": counts, "total": sum(counts.values())}
    (args.out / "sample.json").write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps(card))
    return 0


if __name__ == "__main__":
    sys.exit(main())
