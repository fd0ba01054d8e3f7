"""Import roots: the only folders a background job may read a corpus from.

A job's ``source`` is a path relative to the first root, or an absolute path; either way its
real path (every link followed) must be a regular file or a folder under one of the roots.
Every refusal reads the same, whether the path exists or not, so that a client learns nothing
about the server's files; accepted sources are shown relative to their root, and errors from
reading them name the file that way too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.errors import InvalidInputError

MAX_SOURCE_CHARS = 4096


@dataclass(frozen=True)
class ImportSource:
    """An accepted source: its real ``path`` and how it is shown (relative to its root)."""

    path: Path
    display: str
    root: Path

    def redact(self, message: str) -> str:
        """``message`` with the server's absolute paths replaced by the display name."""
        return message.replace(str(self.path), self.display).replace(str(self.root), "<import>")


@dataclass(frozen=True)
class ImportRoots:
    """The resolved import roots, in order (a relative source is under the first)."""

    roots: tuple[Path, ...]

    def refuse(self, source: str) -> InvalidInputError:
        return InvalidInputError(
            f"source {source[:200]!r} is not a readable file or folder under the import "
            "root; put the corpus there (lsr serve --import-root, LSR_IMPORT_ROOTS) and give "
            "its path relative to the root"
        )

    def resolve(self, source: str) -> ImportSource:
        """The real path of ``source`` under a root, else the one refusal."""
        if not self.roots or "\x00" in source or len(source) > MAX_SOURCE_CHARS:
            raise self.refuse(source)
        given = Path(source)
        candidate = given if given.is_absolute() else self.roots[0] / given
        try:
            real = candidate.resolve(strict=True)
            usable = real.is_file() or real.is_dir()
        except (OSError, RuntimeError, ValueError):
            raise self.refuse(source) from None
        for root in self.roots:
            if usable and (real == root or root in real.parents):
                display = str(real.relative_to(root)) or "."
                return ImportSource(real, display, root)
        raise self.refuse(source)
