"""A bounded thread pool for blocking work (encoding, Numba search, fsync): full -> 503."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from app.errors import OverloadedError

T = TypeVar("T")


class WorkerPool:
    """``await pool.run(fn, *args)`` runs ``fn`` on a worker thread; at most ``max_pending``
    calls are queued or running, the next one gets :class:`OverloadedError` at once."""

    def __init__(self, name: str, threads: int, max_pending: int) -> None:
        self.name = name
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"lsr-{name}")
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._pending >= self.max_pending:
                raise OverloadedError(
                    f"the {self.name} queue is full ({self.max_pending} requests); retry shortly"
                )
            self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            with self._lock:
                self._pending -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
