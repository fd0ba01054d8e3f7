"""Search by text or vector, batch search, explain."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from app.api import schemas
from app.api.deps import AppState, Auth, State
from app.storage.vectors import SparseVector

router = APIRouter(prefix="/v1/collections/{name}", tags=["search"], dependencies=[Auth])


def _json(model: BaseModel) -> Response:
    """Serialise once, in Rust (the hot path skips FastAPI's re-validation of the answer)."""
    return Response(model.model_dump_json(), media_type="application/json")


async def _encode(
    state: AppState, name: str, req: schemas.SearchIn, where: str
) -> SparseVector | None:
    """Text queries go through the encoder's micro-batcher before the search pool."""
    if req.query is None:
        return None
    coll = state.registry.get(name)
    state.service.check_text_query(coll, req, where)
    encoder = coll.config.encoder
    batcher = state.encoders.loaded_batcher(encoder) or await state.write_pool.run(
        state.encoders.batcher, encoder
    )
    return await batcher.encode(req.query)


@router.post("/search", response_model=schemas.SearchOut)
async def search(name: str, req: schemas.SearchIn, state: State) -> Response:
    """Top-``k`` documents for a text ``query`` or a sparse ``vector``, optional ``filter``."""
    vec = await _encode(state, name, req, "search")
    return _json(await state.search_pool.run(state.service.search, name, req, vec))


@router.post("/search/batch", response_model=schemas.BatchSearchOut)
async def batch_search(name: str, req: schemas.BatchSearchIn, state: State) -> Response:
    """Several searches in one request (texts encoded in one batch)."""
    return _json(await state.search_pool.run(state.service.batch_search, name, req))


@router.post("/explain", response_model=schemas.ExplainOut)
async def explain(name: str, req: schemas.ExplainIn, state: State) -> Response:
    """Per hit (or per given id): the matched terms, their weights and contributions."""
    vec = await _encode(state, name, req, "explain")
    return _json(await state.search_pool.run(state.service.explain, name, req, vec))
