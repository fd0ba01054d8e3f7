"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import State

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "still warming up"}})
async def readyz(state: State) -> JSONResponse:
    """True once collections are open and Numba kernels and encoders are warm."""
    body = {"ready": state.ready, **state.service.health()}
    if state.warmup_error:
        body["warmup_error"] = state.warmup_error
    return JSONResponse(body, status_code=200 if state.ready else 503)
