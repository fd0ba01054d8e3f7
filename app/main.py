"""The FastAPI app: ``create_app(settings)`` wires the registry, encoders, pools and routes."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.deps import AppState
from app.api.middleware import BodyLimitAndMetrics
from app.api.routes import collections, docs, documents, health, jobs, metrics, search
from app.errors import ServiceError
from app.metrics import Metrics, recall_gauges
from app.services.encoders import EncoderPool
from app.services.jobs import JobManager
from app.services.pool import WorkerPool
from app.services.registry import CollectionRegistry
from app.services.search import SearchService
from app.settings import Settings
from app.warmup import stop_children, warm_up

log = logging.getLogger(__name__)


def build_state(settings: Settings, metrics_: Metrics) -> AppState:
    registry = CollectionRegistry(settings)
    encoders = EncoderPool(settings.encoders)
    search_pool = WorkerPool("search", settings.threads, settings.max_pending)
    write_pool = WorkerPool("write", settings.threads, settings.max_pending)
    service = SearchService(
        settings, registry, encoders, search_pool=search_pool, write_pool=write_pool
    )
    return AppState(
        settings=settings,
        registry=registry,
        encoders=encoders,
        service=service,
        jobs=JobManager(settings, service),
        search_pool=search_pool,
        write_pool=write_pool,
        metrics=metrics_,
    )


def _error(status: int, code: str, message: str, details: list | None = None) -> JSONResponse:
    body: dict = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status)


def _inner_path(error: dict) -> list[str]:
    """The path inside a field that a validator names (``ctx["at"]``: "0.metadata.k")."""
    at = (error.get("ctx") or {}).get("at")
    return [p for p in str(at).split(".") if p] if at else []


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        response = _error(exc.status, exc.code, exc.message)
        if exc.status == 503:
            response.headers["Retry-After"] = "1"
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        details = [
            {
                "loc": [*e.get("loc", ()), *_inner_path(e)],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in errors
        ]
        if any(d["type"] == "json_invalid" for d in details):
            return _error(400, "malformed_json", "the request body is not valid JSON", details)
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return _error(422, "invalid_request", f"{where}: {first['msg']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _error(500, "internal_error", "internal error; see the server log")


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app; nothing is opened until the lifespan starts."""
    settings = settings or Settings()
    holder: dict[str, AppState] = {}

    def gauges() -> dict[str, list[tuple[dict[str, str], float]]]:
        state = holder.get("state")
        if state is None:
            return {}
        docs = []
        for name in state.registry.names():
            try:
                docs.append(({"collection": name}, float(len(state.registry.get(name).id_map))))
            except ServiceError:
                continue
        return {
            "lsr_collection_documents": docs,
            "lsr_pool_pending": [
                ({"pool": p.name}, float(p.pending)) for p in (state.search_pool, state.write_pool)
            ],
            "lsr_ready": [({}, 1.0 if state.ready else 0.0)],
            **recall_gauges(state.service),
        }

    metrics_ = Metrics(gauges)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = build_state(settings, metrics_)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        for root in settings.import_root_list:
            root.mkdir(parents=True, exist_ok=True)
        state.registry.open_all()
        state.service.pin_encoders()
        state.registry.start_maintenance()
        state.service.recall.start()
        holder["state"] = state
        app.state.lsr = state
        if settings.warmup:
            threading.Thread(target=warm_up, args=(state,), name="lsr-warmup", daemon=True).start()
        else:
            state.ready = True
        try:
            yield
        finally:
            stop_children(state)
            state.service.recall.stop()
            state.jobs.close()
            state.search_pool.shutdown()
            state.write_pool.shutdown()
            state.encoders.close()
            state.registry.close()

    app = FastAPI(
        title="lsr-engine",
        version="0.1.0",
        description="Learned sparse retrieval over a Seismic index: collections, search, jobs.",
        lifespan=lifespan,
        docs_url=None,  # self-hosted below: the default pages load from a CDN
        redoc_url=None,
    )
    _install_handlers(app)
    # the hot search routes first: routing tries routes in order
    for module in (search, documents, collections, health, jobs, metrics, docs):
        app.include_router(module.router)
    docs.mount_assets(app)
    app.add_middleware(
        BodyLimitAndMetrics,
        max_bytes=settings.max_request_bytes,
        metrics=metrics_,
        body_timeout_s=settings.body_timeout_s,
    )
    return app
