"""Search by text or vector, batch search, explain."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from app.api import schemas
from app.api.deps import Auth, State

router = APIRouter(prefix="/v1/collections/{name}", tags=["search"], dependencies=[Auth])


def _json(model: BaseModel) -> Response:
    """Serialise once, in Rust (the hot path skips FastAPI's re-validation of the answer)."""
    return Response(model.model_dump_json(), media_type="application/json")


@router.post("/search", response_model=schemas.SearchOut)
async def search(name: str, req: schemas.SearchIn, state: State) -> Response:
    """Top-``k`` documents for a text ``query`` or a sparse ``vector``, optional ``filter``."""
    vec = await state.service.encode_text(name, req, "search", state.write_pool)
    return _json(await state.search_pool.run(state.service.search, name, req, vec))


@router.post("/search/batch", response_model=schemas.BatchSearchOut)
async def batch_search(name: str, req: schemas.BatchSearchIn, state: State) -> Response:
    """Several searches in one request (texts encoded in one batch)."""
    return _json(await state.search_pool.run(state.service.batch_search, name, req))


@router.post("/explain", response_model=schemas.ExplainOut)
async def explain(name: str, req: schemas.ExplainIn, state: State) -> Response:
    """Per hit (or per given id): the matched terms, their weights and contributions."""
    vec = await state.service.encode_text(name, req, "explain", state.write_pool)
    return _json(await state.search_pool.run(state.service.explain, name, req, vec))
