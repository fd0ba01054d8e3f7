"""Documents: bulk add, upsert, delete by ids, get by id."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import convert, schemas
from app.api.deps import Auth, State

router = APIRouter(
    prefix="/v1/collections/{name}/documents", tags=["documents"], dependencies=[Auth]
)


@router.post(
    "",
    status_code=201,
    response_model=schemas.WriteResult,
    responses={409: {"model": schemas.ErrorOut}},
)
async def add_documents(name: str, req: schemas.DocumentsIn, state: State) -> schemas.WriteResult:
    """Add new documents (text or vector, metadata); 409 if an id exists. Durable on 2xx."""
    docs = convert.documents(req)
    outcome = await state.write_pool.run(state.service.write_documents, name, docs, False)
    return convert.write_result(outcome)


@router.put("", response_model=schemas.WriteResult)
async def upsert_documents(
    name: str, req: schemas.DocumentsIn, state: State
) -> schemas.WriteResult:
    """Add or replace documents (delete + add). Durable on 2xx."""
    docs = convert.documents(req)
    outcome = await state.write_pool.run(state.service.write_documents, name, docs, True)
    return convert.write_result(outcome)


@router.delete("", response_model=schemas.DeleteResult)
async def delete_documents(name: str, req: schemas.DeleteIn, state: State) -> schemas.DeleteResult:
    """Delete documents by id; ids that do not exist are listed in ``not_found``."""
    outcome = await state.write_pool.run(state.service.delete_documents, name, req.ids)
    return convert.delete_result(outcome)


@router.get(
    "/{doc_id:path}",
    response_model=schemas.DocumentOut,
    responses={404: {"model": schemas.ErrorOut}},
)
async def get_document(name: str, doc_id: str, state: State) -> schemas.DocumentOut:
    """A document's stored vector and metadata."""
    return convert.document_out(state.service.get_document(name, doc_id))
