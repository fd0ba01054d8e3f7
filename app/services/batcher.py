"""Micro-batching of query encoding: concurrent text queries are encoded together.

One worker thread per encoder takes whatever queries are waiting (up to ``max_batch``),
encodes them in one call and resolves each caller's future. Under load this turns many
single-text forward passes into a few batched ones; alone, a query waits for nothing. Texts
are validated per request before they join a batch; should a batch still fail, each text is
encoded alone, so a failure is answered to its own request only.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any

from app.errors import InvalidInputError, OverloadedError
from app.storage.vectors import SparseVector, rows_from_csr

log = logging.getLogger(__name__)
# What an encoder raises for a text it cannot take (an encoders.EncoderError is a ValueError).
INPUT_ERRORS = (ValueError, TypeError, UnicodeError)


class QueryBatcher:
    def __init__(self, encoder: Any, max_batch: int = 32, max_pending: int = 256) -> None:
        self.encoder = encoder
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="lsr-encode", daemon=True)
        self._stopped = False
        self._thread.start()

    async def encode(self, text: str) -> SparseVector:
        """The query vector of ``text``; raises :class:`OverloadedError` when the queue is full."""
        if self._queue.qsize() >= self.max_pending:
            raise OverloadedError(f"{self.max_pending} queries wait for the encoder; retry shortly")
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._queue.put((text, loop, future))
        return await future

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._stopped = True
                    break
                batch.append(nxt)
            self._encode_batch(batch)
            if self._stopped:
                return

    def _encode_batch(self, batch: list) -> None:
        """Encode ``batch`` in one call; when that fails, each text alone, so that a text the
        encoder cannot take fails its own request and no other."""
        try:
            rows = rows_from_csr(self.encoder.encode_queries([t for t, _, _ in batch]))
        except Exception:  # noqa: BLE001 - which text failed is found below
            if len(batch) == 1:
                self._encode_alone(batch[0])
            else:
                for item in batch:
                    self._encode_alone(item)
            return
        for (_, loop, fut), row in zip(batch, rows, strict=True):
            loop.call_soon_threadsafe(_resolve, fut, row, None)

    def _encode_alone(self, item: tuple) -> None:
        text, loop, fut = item
        try:
            row = rows_from_csr(self.encoder.encode_queries([text]))[0]
        except INPUT_ERRORS as exc:
            error: Exception = InvalidInputError(
                f"query: the encoder cannot read this text ({type(exc).__name__}: {str(exc)[:200]})"
            )
            loop.call_soon_threadsafe(_resolve, fut, None, error)
        except Exception as exc:  # a server-side failure: the caller gets a 500, logged
            log.exception("query encoding failed")
            loop.call_soon_threadsafe(_resolve, fut, None, exc)
        else:
            loop.call_soon_threadsafe(_resolve, fut, row, None)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)


def _resolve(fut: asyncio.Future, value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)
