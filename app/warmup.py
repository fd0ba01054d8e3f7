"""Start-up warm-up: load the encoders in use and compile (or load from Numba's cache) the
search kernel the open segments run, so that the first request is as fast as the rest;
``/readyz`` turns true when that is done.

Only what serves requests waits. Numba's compiler is Python and holds the GIL, so kernels are
compiled in a child process (``python -m app.warmup``) that fills Numba's on-disk cache while
this process loads the encoders on the other core; the server then loads the kernels from the
cache. The kernels that build an index are needed only when a segment is sealed: a second
child compiles them after the service is ready. Each step is logged with its time; a
collection whose encoder cannot run here is reported (``/readyz``) and the others go on.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.errors import ServiceError

log = logging.getLogger(__name__)


def warm_kernels() -> None:
    """Build, calibrate and search a tiny index (the build and calibration kernels, and the
    search kernels for segments sealed later): after ``/readyz``, in the background."""
    from index import SeismicIndex, exact_search

    rng = np.random.default_rng(0)
    docs = sp.random_array((300, 64), density=0.1, format="csr", dtype=np.float32, rng=rng)
    docs.data[:] = np.abs(docs.data) + 0.01
    idx = SeismicIndex.build(docs, n_postings=50)
    row = docs[[0]]
    idx.search(row, k=5)
    idx.search_vector(row.indices, row.data, k=5, allowed=np.ones(300, bool))
    exact_search(docs, row, k=5)
    # What a seal runs next (calibration: pseudo-queries, batches, exact mode) and what live
    # recall and explain run on a segment (exact mode, certification, explanation).
    idx.calibrate(n_queries=40, n_timed=8, query_cuts=(1, 2), heap_factors=(1.0, 0.8))
    idx.search_vector(row.indices, row.data, k=5, mode="exact")
    idx.explain(row.indices, row.data, k=5)


def warm_encoder(state: Any, name: str) -> None:
    """Load the collection's encoder and run a few query shapes through it."""
    coll = state.registry.get(name)
    for layout in coll.layouts:  # one, or each field of a multi-field collection
        if layout.lexical:  # a live BM25 field: the analyser (stemmer) only
            from encoders.bm25 import BM25Settings, analyse

            analyse(["warm up"], BM25Settings())
            continue
        enc = state.encoders.get(layout.encoder)
        if enc is not None:
            # A few batch shapes: TorchScript (the CPU query body) settles after ~2 calls.
            for texts in (["warm up"], ["warm up", "a longer warm up query"], ["warm up"] * 4):
                enc.encode_queries(texts)
            state.encoders.batcher(layout.encoder)
            state.encoders.token_map(layout.encoder)


def warm_segments(state: Any, name: str) -> None:
    """One search on each indexed segment: the kernel a request runs (one signature: the
    index passes "no mask" as an empty mask), and the segment's pages."""
    for seg in state.registry.get(name).view.segments:
        indexes = [seg.index] if seg.index is not None else []
        indexes += list(getattr(seg, "indexes", {}).values())  # one per field
        if not indexes or not seg.n_rows:
            continue
        row = next((r for r in range(min(seg.n_rows, 100)) if seg.vector(r).indices.size), None)
        if row is not None:  # writable copies: a request's arrays (Numba types read-only
            vec = seg.vector(row)  # arrays apart, and would compile a second signature)
            for index in indexes:  # a field index drops the other fields' columns itself
                index.search_vector(np.array(vec.indices), np.array(vec.values), k=10)


def _warm_each(state: Any, names: list[str], what: str, warm: Any) -> None:
    """``warm(state, name)`` for each collection, logged; a failure stops only its own."""
    for i, name in enumerate(names, start=1):
        step = time.perf_counter()
        try:
            warm(state, name)
        except ServiceError as exc:  # e.g. its encoder cannot run here: the others go on
            log.warning("warm-up: collection %s unavailable: %s", name, exc.message)
            continue
        except Exception:
            log.exception("warm-up of collection %s (%s) failed", name, what)
            continue
        log.info(
            "warm-up: %s of %s ready (%d/%d, %.1fs)",
            what,
            name,
            i,
            len(names),
            time.perf_counter() - step,
        )


def first_index(state: Any, names: list[str]) -> Path | None:
    """The folder of some indexed segment, to compile the search kernel against."""
    for name in names:
        for seg in state.registry.get(name).view.segments:
            if seg.index is not None and seg.n_rows and getattr(seg, "path", None):
                return Path(seg.path) / "index"
            for field_name in getattr(seg, "indexes", {}):
                if seg.n_rows and getattr(seg, "path", None):
                    return Path(seg.path) / f"index-{field_name}"
    return None


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the server dies (Linux), even by kill -9."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def compile_in_child(state: Any, *args: str) -> subprocess.Popen:
    """``python -m app.warmup ARGS``: compiles kernels into Numba's on-disk cache. The child
    is kept in ``state.extra`` so that shutting the service down ends it."""
    child = subprocess.Popen(
        [sys.executable, "-m", "app.warmup", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    state.extra.setdefault("warmup_children", []).append(child)
    return child


def stop_children(state: Any) -> None:
    """End warm-up children still compiling (the service is shutting down)."""
    for child in state.extra.get("warmup_children", []):
        if child.poll() is None:
            child.terminate()


def _finish(child: subprocess.Popen, what: str, start: float) -> None:
    _, err = child.communicate()
    if child.returncode < 0:  # ended by a signal: the service is shutting down
        log.info("warm-up: compiling %s stopped", what)
    elif child.returncode:
        log.warning(
            "warm-up: compiling %s in a child failed (%s); this process compiles it "
            "when it is first needed",
            what,
            err.decode(errors="replace")[-300:],
        )
    else:
        log.info("warm-up: %s compiled in %.1fs", what, time.perf_counter() - start)


def warm_up(state: Any) -> None:
    """Search kernel (a child) and encoders (here) side by side, then ``ready``, then the
    build kernels in another child."""
    start = time.perf_counter()
    names = state.registry.names()
    log.info("warm-up: %d collection(s)", len(names))
    index_dir = first_index(state, names)
    child = compile_in_child(state, "search", str(index_dir)) if index_dir else None
    _warm_each(state, names, "encoder", warm_encoder)
    if child is not None:
        _finish(child, "the search kernel", start)
    _warm_each(state, names, "search kernel", warm_segments)
    state.ready = True
    log.info("warm-up done in %.1fs: ready", time.perf_counter() - start)
    step = time.perf_counter()
    _finish(compile_in_child(state, "build"), "the index build kernels (background)", step)


def main(argv: list[str]) -> int:
    """``python -m app.warmup search INDEX_DIR`` or ``build``: fill Numba's cache."""
    if argv[:1] == ["search"] and len(argv) == 2:
        from index import SeismicIndex

        index = SeismicIndex.load(argv[1])
        index.search_vector(np.array([0], np.int32), np.array([1.0], np.float32), k=10)
        return 0
    if argv == ["build"]:
        warm_kernels()
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
