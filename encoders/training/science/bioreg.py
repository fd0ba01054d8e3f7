"""Extract the descriptions of scientific databases and vocabularies from the bioregistry wheel.

Inputs, under DL_DIR (the unpacked wheels of ``fetch.sh``): ``br/bioregistry/data/
bioregistry.json``, then the other ``br/bioregistry/data/*.json`` and
``br/bioregistry/external/*/processed.json`` (FAIRsharing, re3data, BARTOC, MIRIAM, OBO
Foundry, OLS, Integbio, ...), each in sorted order and read once.

Every string ``description`` field anywhere in the JSON (depth first) gives one text: HTML
tags become spaces, entities are unescaped and whitespace is collapsed; empty descriptions
are dropped. The text is ``name: description`` when the record has a ``name`` and the
description does not already start with the name's first 20 characters (case-insensitive),
else the description alone. It is cut to 2,000 characters at the last word boundary and
kept only if it passes the prose filter of ``html2paras.prose_ok`` (>= 12 words, >= 70%
word tokens, >= 65% letters, two English function words). Texts are deduplicated
case-insensitively on the description. No merging into longer units. Output:
``OUT_DIR/bioregistry.txt``, one text per line.

usage: bioreg.py --dl DL_DIR --out OUT_DIR
"""

import argparse
import glob
import html
import json
import logging
import os
import re
import sys
from collections.abc import Iterator

# A sibling module: found because Python puts the script's own folder first on sys.path.
from html2paras import prose_ok

BR_PACKAGE = os.path.join("br", "bioregistry")
MAX_CHARS = 2000

log = logging.getLogger(__name__)


def descriptions(node) -> Iterator[tuple[str, str]]:
    """Yield ``(name, description)`` for every string ``description`` in ``node``, depth first."""
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            yield node.get("name") or "", node["description"]
        for value in node.values():
            yield from descriptions(value)
    elif isinstance(node, list):
        for value in node:
            yield from descriptions(value)


def input_files(package_dir: str) -> list[str]:
    """The registry JSONs: ``bioregistry.json`` first, then data/ and external/, no repeats."""
    root = glob.escape(package_dir)
    files = (
        [os.path.join(package_dir, "data", "bioregistry.json")]
        + sorted(glob.glob(os.path.join(root, "data", "*.json")))
        + sorted(glob.glob(os.path.join(root, "external", "*", "processed.json")))
    )
    return list(dict.fromkeys(files))


def to_text(name: str, desc: str) -> tuple[str, str]:
    """Return the cleaned description and the ``name: description`` text built from it."""
    desc = html.unescape(re.sub(r"<[^>]+>", " ", desc))
    desc = re.sub(r"\s+", " ", desc).strip()
    if name and not desc.lower().startswith(name.lower()[:20]):
        text = name + ": " + desc
    else:
        text = desc
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS].rsplit(" ", 1)[0]
    return desc, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dl", metavar="DL_DIR", required=True, help="folder holding the unpacked br/"
    )
    parser.add_argument(
        "--out", metavar="OUT_DIR", required=True, help="folder for bioregistry.txt"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.makedirs(args.out, exist_ok=True)

    seen: set[str] = set()
    count = chars = 0
    with open(os.path.join(args.out, "bioregistry.txt"), "w", encoding="utf-8") as f:
        for path in input_files(os.path.join(args.dl, BR_PACKAGE)):
            with open(path, encoding="utf-8") as src:
                registry = json.load(src)
            for name, raw in descriptions(registry):
                desc, text = to_text(name, raw)
                if not desc or not prose_ok(text):
                    continue
                key = desc.lower()
                if key in seen:
                    continue
                seen.add(key)
                f.write(text + "\n")
                count += 1
                chars += len(text)
    log.info("bioregistry %d %d", count, chars)
    return 0


if __name__ == "__main__":
    sys.exit(main())
