"""The collection registry: create / open / drop collections under the data dir, and the
background thread that seals mutable segments and merges small ones."""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
import uuid
from pathlib import Path

from app.errors import CollectionDamagedError, ConflictError, InvalidInputError, NotFoundError
from app.settings import Settings
from app.storage.collection import Collection, CollectionConfig, DamageError, MaintenancePolicy

log = logging.getLogger(__name__)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise InvalidInputError(
            f"invalid collection name {name[:80]!r}: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return name


class CollectionRegistry:
    """Owns every open :class:`Collection`; thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.data_dir) / "collections"
        self.policy = MaintenancePolicy(
            seal_rows=settings.seal_rows,
            flat_rows=settings.flat_segment_rows,
            max_segments=settings.max_segments,
            compact_deleted_fraction=settings.compact_deleted_fraction,
            calibrate=settings.calibrate_segments,
        )
        self._collections: dict[str, Collection] = {}
        self.damaged: dict[str, str] = {}  # quarantined collection -> what is damaged
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def open_all(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for child in sorted(self.root.iterdir()):
            if child.name.startswith("."):
                shutil.rmtree(child, ignore_errors=True)  # half-created or half-dropped
                continue
            if child.is_dir() and NAME_RE.fullmatch(child.name):
                self._open(child)

    def _open(self, folder: Path) -> None:
        """Open one collection; a damaged one is quarantined (its files untouched) and the
        others open as usual."""
        try:
            self._collections[folder.name] = Collection.open(folder, self.policy)
        except DamageError as exc:
            self.damaged[folder.name] = str(exc)
        except Exception as exc:  # unreadable in some other way: quarantined all the same
            self.damaged[folder.name] = f"{type(exc).__name__}: {str(exc)[:300]}"
        if folder.name in self.damaged:
            log.error("collection %s is quarantined: %s (lsr repair --data-dir %s %s)",
                      folder.name, self.damaged[folder.name], self.settings.data_dir,
                      folder.name)  # fmt: skip

    def create(self, config: CollectionConfig) -> Collection:
        check_name(config.name)
        with self._lock:
            path = self.root / config.name
            if config.name in self._collections or config.name in self.damaged or path.exists():
                raise ConflictError(f"collection {config.name!r} already exists")
            coll = Collection.create(path, config, self.policy)
            self._collections[config.name] = coll
            return coll

    def get(self, name: str) -> Collection:
        coll = self._collections.get(name)
        if coll is None:
            if name in self.damaged:
                raise CollectionDamagedError(
                    f"collection {name!r} is quarantined: {self.damaged[name]}; its files are "
                    f"kept as they are: run `lsr repair --data-dir DIR {name}` (--dry-run "
                    "first shows what it would recover and what is lost)"
                )
            check_name(name)
            raise NotFoundError(f"collection {name!r} does not exist")
        return coll

    def names(self) -> list[str]:
        return sorted(self._collections)

    def drop(self, name: str) -> None:
        with self._lock:
            if name in self.damaged:  # a quarantined collection can still be deleted whole
                trash = self.root / f".dropped-{name}-{uuid.uuid4().hex[:8]}"
                (self.root / name).rename(trash)
                del self.damaged[name]
                shutil.rmtree(trash, ignore_errors=True)
                return
            coll = self.get(name)
            with coll.maintenance_lock:
                coll.close()
                trash = self.root / f".dropped-{name}-{uuid.uuid4().hex[:8]}"
                coll.path.rename(trash)
                del self._collections[name]
        shutil.rmtree(trash, ignore_errors=True)

    # ---------------------------------------------------------- maintenance
    def start_maintenance(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="lsr-maintenance", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.settings.maintenance_interval_s)
            self._wake.clear()
            for name in self.names():
                coll = self._collections.get(name)
                if coll is None or coll.closed:
                    continue
                try:
                    coll.mark_wal()
                    self.maintain(coll)
                except Exception:  # keep the thread alive; the next round retries
                    log.exception("maintenance of %s failed", name)

    def maintain(self, coll: Collection) -> None:
        start = time.perf_counter()
        if coll.needs_seal() and coll.seal_if_needed():  # re-checked under the seal's lock
            log.info("%s: sealed a segment in %.2fs", coll.config.name, time.perf_counter() - start)
        while not self._stop.is_set() and not coll.closed and coll.merge_candidates():
            start = time.perf_counter()
            coll.merge()
            log.info("%s: merged segments in %.2fs", coll.config.name, time.perf_counter() - start)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for coll in list(self._collections.values()):
            coll.close()
