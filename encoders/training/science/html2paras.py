"""Extract prose paragraphs from HTML documentation trees, one text per line.

Used on the unpacked Debian documentation packages (``x/<package>/usr/share/doc/...``,
``*.html``, ``*.htm`` and their ``.gz`` forms) listed in ``fetch.sh``.

Rules, in order:

- Files whose path contains an ``--exclude`` substring or one of ``GLOBAL_EXCL`` (release
  notes, changelogs, indexes, Sphinx ``_sources``/``_static``/``_modules``, licence and
  about pages) are skipped; trees are walked in sorted order.
- Dropped before extraction: the tags in ``DROP_TAGS`` (script, style, pre, table, nav,
  header, footer, math, svg, img, button, form, select, textarea), any element with a class
  matching ``DROP_CLASS`` (code highlighting, sidebars, navigation, tables of contents,
  signatures, gallery boxes ...) and any ``role="navigation"`` element.
- Paragraphs are ``<p>``, leaf ``<li>`` (no nested p/li/ul/ol) and leaf ``<dd>`` (no nested
  p/dl/ul/ol/div), not inside another ``<p>``. Inline and display LaTeX, stray LaTeX
  commands, pilcrows and non-breaking spaces are removed; whitespace is collapsed.
- A paragraph that fails the prose filter (``prose_ok`` with a 6-word minimum) or a heading
  ends the current unit. Consecutive prose paragraphs of one section are merged greedily:
  a unit is closed before a paragraph that would take it over 300 words, and as soon as it
  reaches 60 words.
- A unit is kept only with at least 12 words; it is cut to 2,000 characters at the last word
  boundary, must pass ``prose_ok`` (12 words), and is written once per output file
  (deduplicated case-insensitively).

A ROOT may also be a single HTML file. With ``--keep START END`` (repeatable) only the parts
of each file from the first match of the regex START up to the next match of END are read
(e.g. the introduction and results sections of the deal.II tutorial pages).

usage: html2paras.py OUT.txt ROOT [ROOT...] [--exclude SUBSTR ...] [--keep START END ...]
"""

import argparse
import gzip
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator

DROP_TAGS = [
    "script", "style", "pre", "table", "nav", "header", "footer",
    "math", "svg", "img", "button", "form", "select", "textarea",
]  # fmt: skip
GLOBAL_EXCL = [
    "whats_new", "release", "changelog", "/changes", "NEWS", "genindex", "modindex",
    "/search.htm", "/authors", "/about", "/_sources/", "/_static/", "/_modules/", "/license",
]  # fmt: skip
DROP_CLASS = re.compile(
    r"(highlight(-[a-z0-9]+)?|math|sphinxsidebar|related|headerlink|footer|navigation|"
    r"nav|toc|toctree-wrapper|sidebar|breadcrumb|doctest|literal-block|"
    r"bd-sidebar|bd-header|prev-next|admonition-title|sig|descname|"
    r"sphx-glr-download|sphx-glr-script-out|output_area|input_area|"
    r"sphx-glr-thumbcontainer|rubric|viewcode-link|autosummary|wy-nav-side|wy-nav-top|"
    r"rst-footer-buttons|bd-sidebar-primary|bd-sidebar-secondary|bd-toc|footer-article-items)"
)
HEAD = {"h1", "h2", "h3", "h4", "h5", "h6"}
TOK = re.compile(r"\S+")
WORD_TOKEN = re.compile(r"[(\"'\[]?[A-Za-z][A-Za-z'\-]*[.,;:!?)\"'\]]*")
FUNCTION_WORDS = ("the", "of", "and", "to", "a", "is", "in", "for", "that", "are", "with", "this")
HTML_NAME = re.compile(r"\.html?(\.gz)?$")

MIN_WORDS = 12  # a kept text
MIN_PARA_WORDS = 6  # a paragraph that may join a unit
MIN_UNIT_WORDS = 60  # a unit is closed once it reaches this
MAX_UNIT_WORDS = 300  # a paragraph that would pass this starts a new unit
MAX_CHARS = 2000

log = logging.getLogger(__name__)


def clean(text: str) -> str:
    """Remove LaTeX, pilcrows and non-breaking spaces; collapse whitespace."""
    text = re.sub(r"\\\(.*?\\\)|\\\[.*?\\\]|\$\$.*?\$\$", " ", text, flags=re.S)  # inline/display
    text = re.sub(r"\\[a-zA-Z]+\*?(\{[^}]*\})?", " ", text)  # stray LaTeX commands
    text = text.replace("\u00b6", " ").replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip()


def prose_ok(text: str, minw: int = MIN_WORDS) -> bool:
    """Whether ``text`` reads as English prose.

    Needs ``minw`` tokens, >= 70% word-like tokens, >= 65% letters and at least two
    common English function words.
    """
    toks = TOK.findall(text)
    if len(toks) < minw:
        return False
    alpha = sum(1 for tok in toks if WORD_TOKEN.fullmatch(tok))
    if alpha / len(toks) < 0.7:
        return False
    letters = sum(c.isalpha() for c in text)
    if letters / max(1, len(text)) < 0.65:
        return False
    low = " " + text.lower() + " "
    return sum(low.count(f" {w} ") for w in FUNCTION_WORDS) >= 2


def cut(text: str) -> str:
    """Cut ``text`` to ``MAX_CHARS`` at the last word boundary."""
    return text[:MAX_CHARS].rsplit(" ", 1)[0] if len(text) > MAX_CHARS else text


def blocks(doc) -> Iterator[tuple[str, str | None]]:
    """Yield ``("H", None)`` at headings and ``("P", text)`` for paragraphs, in document order."""
    for el in doc.iter():
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in HEAD:
            yield "H", None
        elif (
            tag == "p"
            or (tag == "li" and not el.xpath(".//p|.//li|.//ul|.//ol"))
            or (tag == "dd" and not el.xpath(".//p|.//dl|.//ul|.//ol|.//div"))
        ):
            if el.xpath("ancestor::p"):
                continue
            yield "P", el.text_content()


def merge_paragraphs(paras: Iterable[str | None]) -> Iterator[list[str]]:
    """Group consecutive paragraphs into units of 60-300 words; ``None`` ends a unit."""
    buf: list[str] = []
    n = 0
    for text in paras:
        if text is None:
            if buf:
                yield buf
            buf, n = [], 0
            continue
        w = len(TOK.findall(text))
        if n and n + w > MAX_UNIT_WORDS:
            yield buf
            buf, n = [], 0
        buf.append(text)
        n += w
        if n >= MIN_UNIT_WORDS:
            yield buf
            buf, n = [], 0
    if buf:
        yield buf


def strip_boilerplate(doc) -> None:
    """Drop code, tables, math and navigation elements from ``doc`` in place."""
    for el in list(doc.iter()):
        if not isinstance(el.tag, str):
            continue
        classes = (el.get("class") or "").split()
        if (
            el.tag in DROP_TAGS
            or any(DROP_CLASS.fullmatch(c) for c in classes)
            or el.get("role") == "navigation"
        ) and el.getparent() is not None:
            el.drop_tree()


def keep_sections(raw: bytes, keep: list[tuple[str, str]]) -> bytes:
    """Cut ``raw`` to the spans from the first match of each START regex to the next END."""
    parts = [b'<html><head><meta charset="utf-8"></head><body>']
    for start, end in keep:
        m = re.search(start.encode(), raw)
        if m:
            e = re.compile(end.encode()).search(raw, m.end())
            parts.append(raw[m.start() : e.start() if e else len(raw)])
    return b"\n".join(parts + [b"</body></html>"])


def process(path: str, keep: list[tuple[str, str]] | None = None) -> list[str]:
    """Return the merged prose units (>= 12 words, cut to 2,000 chars) of one HTML file.

    With ``keep``, only the ``keep_sections`` spans of the file are read.
    """
    import lxml.html

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if keep:
        raw = keep_sections(raw, keep)
    try:
        doc = lxml.html.fromstring(raw)
    except Exception:  # empty or unparsable page: nothing to extract
        return []
    strip_boilerplate(doc)

    def paragraphs() -> Iterator[str | None]:
        for kind, raw_text in blocks(doc):
            text = clean(raw_text) if kind == "P" else None
            yield text if text is not None and prose_ok(text, minw=MIN_PARA_WORDS) else None

    units = []
    for buf in merge_paragraphs(paragraphs()):
        text = " ".join(buf)
        if len(TOK.findall(text)) >= MIN_WORDS:
            units.append(cut(text))
    return units


def html_files(root: str, exclude: list[str]) -> Iterator[str]:
    """Yield the HTML files under ``root`` (or ``root`` itself) in sorted walk order, skipping
    excluded paths."""
    if os.path.isfile(root):
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if not HTML_NAME.search(name):
                continue
            path = os.path.join(dirpath, name)
            if any(e in path for e in exclude + GLOBAL_EXCL):
                continue
            yield path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", metavar="OUT.txt", help="output file, one text per line")
    parser.add_argument("roots", metavar="ROOT", nargs="+", help="folders to walk")
    parser.add_argument(
        "--exclude",
        metavar="SUBSTR",
        nargs="+",
        action="extend",
        default=[],
        help="skip files whose path contains any of these substrings",
    )
    parser.add_argument(
        "--keep",
        metavar=("START", "END"),
        nargs=2,
        action="append",
        default=[],
        help="read only the spans from the first match of regex START to the next END",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    texts = (
        text
        for root in args.roots
        for path in html_files(root, args.exclude)
        for text in process(path, args.keep)
    )
    write_units(args.out, texts)
    return 0


def write_units(out: str, texts: Iterable[str], accept: Callable[[str], bool] = prose_ok) -> None:
    """Write each of ``texts`` that ``accept`` passes to ``out``, one a line, once
    (case-insensitively), and log how many and how many characters."""
    seen: set[str] = set()
    count = chars = 0
    with open(out, "w", encoding="utf-8") as f:
        for text in texts:
            key = text.lower()
            if not accept(text) or key in seen:
                continue
            seen.add(key)
            f.write(text + "\n")
            count += 1
            chars += len(text)
    log.info("%s %d %d", out, count, chars)


if __name__ == "__main__":
    sys.exit(main())
