"""Extract prose paragraphs from PDF manuals, one text per line.

Used on PDFs of unpacked Debian documentation packages (``fetch.sh``); the text comes from
poppler's ``pdftotext -raw`` (content-stream order, UTF-8, one page per form feed). Same output
conventions and filters as ``html2paras.py``, whose functions it reuses.

Rules, in order:

- Pages with 3 or more dot-leader lines (tables of contents, lists of figures) are dropped.
  Lines that recur (digits ignored) on at least 20% of the pages, and at least 3, are running
  headers/footers and are dropped without ending a paragraph. Everything from a standalone
  ``References`` / ``Bibliography`` heading in the last 20% of the pages to the end of the
  document is dropped.
- Ligatures are expanded, control and private-use glyphs (bullets) and footnote marks glued
  to punctuation (``details.1``) removed. A line is *prose* when it has >= 4 tokens, >= 60%
  word-like tokens, >= 60% letters among its non-space characters, at most one maths symbol
  per 8 tokens and at most 25% one-letter tokens other than a/I; a line of 1-3 word-like
  tokens is a *tail* that may only continue a paragraph whose last line has no full stop.
  Numbered headings (``3.1.2 Mass flux``) and all other lines (equations, equation numbers,
  code, table cells, headings, page numbers) are *debris*: they end the paragraph and the
  unit, except that a lower-case line within 6 lines after debris resumes the sentence.
- Consecutive prose lines form a paragraph; a line-end hyphen before a lower-case word is
  removed when the joined word occurs elsewhere in the document, else kept. A blank line
  ends a paragraph unless the paragraph lacks final punctuation and the next line starts in
  lower case (a page or figure break inside a sentence); a bullet starts a new paragraph.
  A line ending in . ! or ? shorter than 70% of a full line (90th percentile) ends the
  paragraph. A paragraph of fewer than 15 words without final punctuation is a heading and
  ends the unit; otherwise an unfinished last sentence is cut back to the last . ! ? or :
  (nothing left: the paragraph is dropped),
  leading brackets/punctuation are dropped, and paragraphs over 300 words are split at
  sentence ends.
- Paragraphs that pass ``html2paras.prose_ok`` with 6 words and ``english`` (more English
  than French function words, <= 10% one-letter symbols) are merged into 60-300-word
  units with ``html2paras.merge_paragraphs``; a unit is kept with >= 12 words, cut to 2,000
  characters, must pass ``prose_ok`` and ``english`` and is written once per output file
  (deduplicated case-insensitively).

usage: pdf2paras.py OUT.txt PDF [PDF...]
"""

import argparse
import logging
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

try:
    from . import html2paras as hp
except ImportError:  # run as a script
    import html2paras as hp

FRENCH_WORDS = {"le", "la", "les", "des", "du", "est", "et", "dans", "pour", "une", "sont", "qui"}
LIGATURES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl"}
PRIVATE_USE = re.compile(r"[\x80-\x9f\ue000-\uf8ff\u2022\u25e6\u25aa\u2219]")
BULLET = re.compile(r"^\s*[\x80-\x9f\ue000-\uf8ff\u2022\u25e6\u25aa\u2219\u2013-]\s+")
FOOTNOTE_MARK = re.compile(r"(?<=[.,;:)\u201d\u2019\"])\d{1,2}(?=\s|$)")
DOT_LEADER = re.compile(r"(\. ?){5,}")
MATH_CHARS = re.compile(r"[=+<>^\u2200-\u22ff\u0370-\u03ff\u2190-\u21ff\u00b1\u00d7\u00f7]")
BIBLIO = re.compile(r"(references|bibliography)", re.I)
END_PUNCT = tuple('.:;!?)"\u201d\u2019')
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
NUMBERED_HEADING = re.compile(r"(\d+(\.\d+)*\.?|[A-Z](\.\d+)+|Chapter \d+|Appendix [A-Z])\s+[A-Z]")
HYPHEN_END = re.compile(r"[A-Za-z]-$")

HEADER_SHARE = 0.2  # a line on this share of the pages is a running header/footer
MAX_HEADING_WORDS = 15
SHORT_LINE = 0.7  # a line shorter than this share of a full line may end a paragraph
BIBLIO_FROM = 0.8  # a bibliography heading counts only in the last 20% of the pages
MAX_INLINE_DEBRIS = 6  # debris lines a sentence may resume after


def pdf_pages(path: str) -> list[str]:
    """Return the text of each page of ``path`` (``pdftotext``, reading order)."""
    out = subprocess.run(
        ["pdftotext", "-q", "-raw", "-enc", "UTF-8", path, "-"], capture_output=True, check=True
    ).stdout.decode("utf-8", "replace")
    for lig, rep in LIGATURES.items():
        out = out.replace(lig, rep)
    return out.split("\f")


def header_lines(pages: list[str]) -> set[str]:
    """Lines (digits normalised) that recur on many pages: running headers and footers."""
    counts: Counter[str] = Counter()
    for page in pages:
        counts.update({norm(line) for line in page.splitlines() if line.strip()})
    need = max(3, HEADER_SHARE * len(pages))
    return {line for line, n in counts.items() if n >= need}


def norm(line: str) -> str:
    return re.sub(r"\d+", "#", line.strip())


def line_kind(line: str) -> str:
    """Classify a stripped line: ``"prose"``, ``"tail"`` or ``"debris"``."""
    toks = line.split()
    if NUMBERED_HEADING.match(line) and not line.endswith("."):
        return "debris"
    words = sum(1 for tok in toks if hp.WORD_TOKEN.fullmatch(tok))
    if len(toks) < 4:
        return "tail" if words == len(toks) else "debris"
    singles = sum(1 for tok in toks if len(tok) == 1 and tok not in "aAI&")
    chars = "".join(toks)
    letters = sum(c.isalpha() and c.isascii() for c in chars)
    if (
        words / len(toks) < 0.6
        or letters / len(chars) < 0.6
        or len(MATH_CHARS.findall(line)) > len(toks) / 8
        or singles > len(toks) / 4
    ):
        return "debris"
    return "prose"


def english(text: str) -> bool:
    """Whether ``text`` has more English than French function words, and few lone symbols."""
    low = text.lower().split()
    eng = sum(1 for w in low if w in hp.FUNCTION_WORDS)
    fra = sum(1 for w in low if w in FRENCH_WORDS)
    singles = sum(1 for w in low if len(w) == 1 and w.isalpha() and w not in "ai")
    return eng > fra and singles <= len(low) / 10


def join_lines(lines: list[str], vocab: set[str]) -> str:
    """Join the lines of a paragraph, undoing line-end hyphenation where it is one."""
    text = ""
    for line in lines:
        if text and HYPHEN_END.search(text) and line[:1].islower():
            head = re.search(r"[A-Za-z]+-$", text).group()[:-1]
            tail = re.match(r"[A-Za-z]*", line).group()
            text = text[:-1] + line if (head + tail).lower() in vocab else text + line
        else:
            text = f"{text} {line}" if text else line
    return text


def split_long(text: str) -> list[str]:
    """Split a paragraph over ``MAX_UNIT_WORDS`` words at sentence ends."""
    if len(hp.TOK.findall(text)) <= hp.MAX_UNIT_WORDS:
        return [text]
    parts: list[str] = []
    buf: list[str] = []
    n = 0
    for sent in SENTENCE_END.split(text):
        w = len(hp.TOK.findall(sent))
        if buf and n + w > hp.MAX_UNIT_WORDS:
            parts.append(" ".join(buf))
            buf, n = [], 0
        buf.append(sent)
        n += w
    if buf:
        parts.append(" ".join(buf))
    return parts


def page_lines(pages: list[str]) -> Iterator[str]:
    """Yield the kept lines of a document ("" for a blank line), in reading order."""
    headers = header_lines(pages)
    for i, page in enumerate(pages):
        lines = page.splitlines()
        if sum(1 for line in lines if DOT_LEADER.search(line)) >= 3:
            continue
        for raw in lines:
            line = raw.strip()
            if line and norm(line) in headers:
                continue
            if BIBLIO.fullmatch(line) and i >= BIBLIO_FROM * len(pages):
                return
            yield line
        yield ""


def paragraphs(pages: list[str]) -> Iterator[str | None]:
    """Yield prose paragraphs of a document; ``None`` where a unit must end."""
    lines = list(page_lines(pages))
    lengths = sorted(len(line) for line in lines if line_kind(line) == "prose")
    full = lengths[int(0.9 * len(lengths))] if lengths else 0  # a full line's length
    vocab = {w.lower() for line in lines for w in re.findall(r"[A-Za-z]{3,}", line)}
    buf: list[str] = []
    blank = False
    debris = 0  # debris lines since the last prose line

    def flush() -> Iterator[str | None]:
        if not buf:
            return
        text = hp.clean(FOOTNOTE_MARK.sub("", join_lines(buf, vocab)))
        text = re.sub(r"^[)\]},.;:]+\s*", "", text)  # left over from a dropped formula
        buf.clear()
        nwords = len(hp.TOK.findall(text))
        if not text.endswith(END_PUNCT) and nwords < MAX_HEADING_WORDS:
            yield None  # a heading
            return
        if not text.endswith(END_PUNCT):  # the sentence went on in a dropped formula
            text = text[: max(text.rfind(p + " ") for p in ".!?:") + 1]
        if hp.prose_ok(text, minw=hp.MIN_PARA_WORDS) and english(text):
            yield from split_long(text)
        else:
            yield None

    for line in lines:
        if not line:
            blank = True
            continue
        bullet = bool(BULLET.match(line))
        line = PRIVATE_USE.sub(" ", BULLET.sub("", line)).strip()
        kind = line_kind(line) if line else "debris"
        # after equation debris, a lower-case line close by continues the sentence
        resumes = bool(buf) and 0 < debris <= MAX_INLINE_DEBRIS and line[:1].islower()
        open_end = bool(buf) and not buf[-1].endswith((".", "!", "?"))
        if kind == "debris" or (
            kind == "tail" and (not open_end or (blank or debris) and not resumes)
        ):
            debris += 1
            blank = False
            continue
        if debris and not resumes:
            yield from flush()
            yield None
        else:
            continued = bool(buf) and not buf[-1].endswith(END_PUNCT) and line[:1].islower()
            if bullet or (blank and not continued and not resumes):
                yield from flush()
        buf.append(line)
        debris = 0
        if line.endswith((".", "!", "?")) and len(line) < SHORT_LINE * full:
            yield from flush()  # a short last line ends the paragraph
        blank = False
    yield from flush()


def process(path: str) -> list[str]:
    """Return the merged prose units (>= 12 words, cut to 2,000 chars) of one PDF."""
    units = []
    for buf in hp.merge_paragraphs(paragraphs(pdf_pages(path))):
        text = " ".join(buf)
        if len(hp.TOK.findall(text)) >= hp.MIN_WORDS:
            units.append(hp.cut(text))
    return units


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", metavar="OUT.txt", help="output file, one text per line")
    parser.add_argument("pdfs", metavar="PDF", nargs="+", help="PDF files, in order")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    texts = (text for path in args.pdfs for text in process(path))
    hp.write_units(args.out, texts, lambda text: hp.prose_ok(text) and english(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
