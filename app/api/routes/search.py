"""Search by text or vector, batch search, explain."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from app.api import convert, schemas
from app.api.deps import Auth, State

router = APIRouter(prefix="/v1/collections/{name}", tags=["search"], dependencies=[Auth])


def _json(model: BaseModel) -> Response:
    """Serialise once, in Rust (the hot path skips FastAPI's re-validation of the answer)."""
    return Response(model.model_dump_json(), media_type="application/json")


@router.post("/search", response_model=schemas.SearchOut)
async def search(name: str, req: schemas.SearchIn, state: State) -> Response:
    """Top-``k`` documents for a text ``query`` or a sparse ``vector``, optional ``filter``."""
    result = await state.service.search(name, convert.search_request(req))
    return _json(convert.search_out(result))


@router.post("/search/batch", response_model=schemas.BatchSearchOut)
async def batch_search(name: str, req: schemas.BatchSearchIn, state: State) -> Response:
    """Several searches in one request (texts encoded in one batch)."""
    searches = convert.search_requests(req)
    result = await state.search_pool.run(state.service.batch_search, name, searches)
    return _json(convert.batch_search_out(result))


@router.post("/explain", response_model=schemas.ExplainOut)
async def explain(name: str, req: schemas.ExplainIn, state: State) -> Response:
    """Per hit (or per given id): the matched terms, their weights and contributions."""
    result = await state.service.explain(name, convert.explain_request(req))
    return _json(convert.explain_out(result))
