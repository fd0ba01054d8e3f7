"""Shared dependencies: the app state (registry, service, pools), settings, auth."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from app.errors import UnauthorizedError
from app.metrics import Metrics
from app.services.encoders import EncoderPool
from app.services.jobs import JobManager
from app.services.pool import WorkerPool
from app.services.registry import CollectionRegistry
from app.services.search import SearchService
from app.settings import Settings


@dataclass
class AppState:
    """Everything built in the lifespan; reached by routes through :func:`get_state`."""

    settings: Settings
    registry: CollectionRegistry
    encoders: EncoderPool
    service: SearchService
    jobs: JobManager
    search_pool: WorkerPool
    write_pool: WorkerPool
    metrics: Metrics
    ready: bool = False
    warmup_error: str | None = None
    extra: dict = field(default_factory=dict)


async def get_state(request: Request) -> AppState:
    return request.app.state.lsr


# async dependencies: FastAPI would run plain ``def`` ones on a thread, one hop each
State = Annotated[AppState, Depends(get_state)]


async def require_api_key(request: Request, state: State) -> None:
    """When ``LSR_API_KEYS`` is set, every protected route needs ``Authorization: Bearer KEY``."""
    keys = state.settings.api_key_list
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError("missing 'Authorization: Bearer <api key>' header")
    if not any(hmac.compare_digest(token.strip().encode(), k.encode()) for k in keys):
        raise UnauthorizedError("invalid API key")


Auth = Depends(require_api_key)
