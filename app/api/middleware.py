"""Pure ASGI middleware: request body limit (413), body timeout (408) and request metrics,
cheap per request."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from app.metrics import Metrics

Scope = dict[str, Any]


class BodyLimitAndMetrics:
    """Reads the body up front (refusing more than ``max_bytes`` with 413, and a body that
    stalls for ``body_timeout_s`` between chunks with 408), then records count and latency
    per route template."""

    def __init__(
        self, app: Any, max_bytes: int, metrics: Metrics, body_timeout_s: float = 30.0
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            try:
                body = await self._read_body(scope, receive)
            except TimeoutError:
                status[0] = 408
                await _error(
                    send,
                    408,
                    "request_timeout",
                    f"the request body did not arrive within {self.body_timeout_s:g} s "
                    "(LSR_BODY_TIMEOUT_S)",
                )
                return
            if body is None:
                status[0] = 413
                await _error(
                    send,
                    413,
                    "payload_too_large",
                    f"request body is larger than {self.max_bytes} bytes (LSR_MAX_REQUEST_BYTES)",
                )
                return
            sent = [False]

            async def replay() -> dict[str, Any]:
                if not sent[0]:
                    sent[0] = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], path, status[0], time.perf_counter() - start)

    async def _read_body(self, scope: Scope, receive: Any) -> bytes | None:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    if int(value) > self.max_bytes:
                        return None
                except ValueError:
                    pass
        chunks = []
        size = 0
        while True:
            message = await asyncio.wait_for(receive(), self.body_timeout_s)
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


async def _error(send: Any, status: int, code: str, message: str) -> None:
    """Answer with the service's error body and close the connection."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
