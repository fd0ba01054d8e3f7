"""Background indexing jobs from a corpus file on the server."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import convert, schemas
from app.api.deps import Auth, State

router = APIRouter(tags=["jobs"], dependencies=[Auth])


@router.post("/v1/collections/{name}/jobs", status_code=202, response_model=schemas.JobOut)
async def start_job(name: str, req: schemas.JobIn, state: State) -> schemas.JobOut:
    """Index a JSONL / Parquet file or a BEIR folder that is on the server, in the background."""
    job = convert.job_request(req)
    status = await state.write_pool.run(state.jobs.submit, name, job)
    return convert.job_out(status)


@router.get("/v1/jobs", response_model=schemas.JobList)
async def list_jobs(state: State) -> schemas.JobList:
    return convert.job_list(state.jobs.list())


@router.get("/v1/jobs/{job_id}", response_model=schemas.JobOut)
async def get_job(job_id: str, state: State) -> schemas.JobOut:
    """State and progress (``done`` of ``total`` documents)."""
    return convert.job_out(state.jobs.get(job_id))


@router.delete("/v1/jobs/{job_id}", response_model=schemas.JobOut)
async def cancel_job(job_id: str, state: State) -> schemas.JobOut:
    """Cancel a queued or running job (it stops after the current batch)."""
    return convert.job_out(state.jobs.cancel(job_id))
