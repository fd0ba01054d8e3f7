"""Collections: create, list, describe, change the recall target or accept a changed encoder
model, stats, seal/merge, drop."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from app.api import convert, schemas
from app.api.deps import Auth, State

router = APIRouter(prefix="/v1/collections", tags=["collections"], dependencies=[Auth])


@router.post("", status_code=201, response_model=schemas.CollectionInfo)
async def create_collection(req: schemas.CollectionCreate, state: State) -> schemas.CollectionInfo:
    """Create a collection with its encoder (or ``"none"`` plus ``dim``) and index parameters."""
    spec = convert.collection_spec(req)
    info = await state.write_pool.run(state.service.create_collection, spec)
    return convert.collection_info(info)


@router.get("", response_model=schemas.CollectionList)
async def list_collections(state: State) -> schemas.CollectionList:
    return convert.collection_list(state.service.list_collections())


@router.get("/{name}", response_model=schemas.CollectionInfo)
async def describe_collection(name: str, state: State) -> schemas.CollectionInfo:
    return convert.collection_info(state.service.describe(name))


@router.patch("/{name}", response_model=schemas.CollectionInfo)
async def update_collection(
    name: str, req: schemas.CollectionPatch, state: State
) -> schemas.CollectionInfo:
    """Change the collection's ``target_recall`` (null: back to its ``query_params``), or
    accept the model now behind an encoder (``encoder_fingerprint``, or per field in
    ``fields``: the fingerprint GET shows as ``encoder_pins[].current``): texts are then
    encoded again; re-index the documents by text, whose stored vectors came from the old
    model."""
    change = convert.collection_update(req)
    info = await state.write_pool.run(state.service.update_collection, name, change)
    return convert.collection_info(info)


@router.get("/{name}/stats")
async def collection_stats(name: str, state: State) -> dict[str, Any]:
    """Documents, segments (rows, tombstones, indexed and calibrated or not), WAL size, and
    live recall (estimate, interval, samples, target, setting, moves)."""
    return state.service.stats(name)


@router.delete("/{name}", status_code=204)
async def drop_collection(name: str, state: State) -> Response:
    """Delete the collection and all its files."""
    await state.write_pool.run(state.service.drop_collection, name)
    return Response(status_code=204)


@router.post("/{name}/seal")
async def seal_collection(name: str, state: State) -> dict[str, Any]:
    """Seal the mutable segment now (normally done in the background at ``LSR_SEAL_ROWS``)."""
    return await state.write_pool.run(state.service.seal, name)


@router.post("/{name}/merge")
async def merge_collection(name: str, state: State) -> dict[str, Any]:
    """Merge every sealed segment into one, dropping tombstoned rows."""
    return await state.write_pool.run(state.service.merge, name)
