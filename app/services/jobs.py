"""Background indexing jobs: read a corpus file on the server, encode, write in batches.

One job runs at a time (a single worker thread, others queue); each reports progress and
can be cancelled between batches. Every batch is an ordinary durable upsert, so a cancelled
or crashed job leaves whole batches behind, never half a document. Jobs live in memory.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields

from app.errors import ConflictError, InvalidInputError, NotFoundError, OverloadedError
from app.jobs.indexing.vocab import Vocabulary, vectors_to_csr
from app.services.encoders import NO_ENCODER
from app.services.imports import ImportRoots, ImportSource
from app.services.models import JobRequest, JobStatus
from app.services.search import SearchService
from app.settings import Settings
from app.storage.batch import DocumentBatch

log = logging.getLogger(__name__)
MAX_QUEUED_JOBS = 16


@dataclass
class Job:
    """A job as it runs: what it was asked (``request``), its live state and progress, and
    the event that cancels it between batches."""

    id: str
    collection: str
    source: str
    request: JobRequest
    state: str = "queued"
    done: int = 0
    total: int | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def status(self) -> JobStatus:
        """A snapshot of the job's state and progress."""
        return JobStatus(**{f.name: getattr(self, f.name) for f in fields(JobStatus)})


class JobManager:
    """Runs jobs one at a time on a worker thread; keeps every job's state in memory."""

    def __init__(self, settings: Settings, service: SearchService) -> None:
        self.settings = settings
        self.service = service
        self.roots = ImportRoots(tuple(settings.import_root_list))
        self._jobs: dict[str, Job] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lsr-job")

    def submit(self, name: str, req: JobRequest) -> JobStatus:
        """Check the source (under an import root, a corpus this collection can take) and
        queue the job."""
        from app.jobs.errors import CorpusError
        from app.jobs.sources import open_corpus

        coll = self.service.registry.get(name)
        source = self.roots.resolve(req.source)
        try:
            corpus = open_corpus(source.path)
        except CorpusError as exc:
            raise InvalidInputError(source.redact(str(exc))) from exc
        if coll.config.fields is not None and corpus.has_vectors:
            raise InvalidInputError(
                f"collection {name!r} has several fields, each encoding the texts: give a "
                "corpus of texts, not of vectors"
            )
        if coll.config.encoder == NO_ENCODER and not corpus.has_vectors:
            raise InvalidInputError(
                f"collection {name!r} has no encoder: give a file of vectors (JSONL lines with "
                "a 'vector', a big-ann .csr file, or Parquet with indices/values columns)"
            )
        if not corpus.has_vectors:  # texts: each field's model must be its pinned one
            for layout in coll.layouts:
                self.service.inputs.pins.check(coll, layout)
        active = sum(j.state in ("queued", "running") for j in self._jobs.values())
        if active >= MAX_QUEUED_JOBS:
            raise OverloadedError(f"{active} jobs are queued or running; wait for some to finish")
        job = Job(uuid.uuid4().hex[:16], name, source.display, req)
        self._jobs[job.id] = job
        self._executor.submit(self._run, job, corpus, source)
        return job.status()

    def get(self, job_id: str) -> JobStatus:
        return self._job(job_id).status()

    def _job(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"job {job_id[:64]!r} not found")
        return job

    def list(self) -> list[JobStatus]:
        """Every job since start-up, oldest first."""
        return [j.status() for j in self._jobs.values()]

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a queued job now, a running one after its current batch."""
        job = self._job(job_id)
        if job.state not in ("queued", "running"):
            raise ConflictError(f"job {job_id!r} is already {job.state}")
        job.cancel.set()
        if job.state == "queued":
            job.state = "cancelled"
            job.finished_at = time.time()
        return job.status()

    def _run(self, job: Job, corpus: object, source: ImportSource) -> None:
        if job.cancel.is_set():
            return
        job.state = "running"
        try:
            try:
                job.total = corpus.count()  # type: ignore[attr-defined]
            except Exception:  # a count is a nicety; the job goes on without it
                job.total = None
            if job.request.limit is not None and job.total is not None:
                job.total = min(job.total, job.request.limit)
            vocab = self._vocabulary(job.collection) if corpus.has_vectors else None  # type: ignore[attr-defined]
            batch: list = []
            for doc in corpus:  # type: ignore[attr-defined]
                if job.cancel.is_set():
                    break
                if job.request.limit is not None and job.done + len(batch) >= job.request.limit:
                    break
                batch.append(doc)
                if len(batch) >= job.request.batch_size:
                    self._write(job, batch, vocab)
                    batch = []
            if batch and not job.cancel.is_set():
                self._write(job, batch, vocab)
            job.state = "cancelled" if job.cancel.is_set() else "done"
        except Exception as exc:
            log.exception("job %s failed", job.id)
            job.state = "failed"
            job.error = source.redact(str(exc))[:1000]
        finally:
            job.finished_at = time.time()

    def _vocabulary(self, name: str) -> Vocabulary:
        """How token keys of given vectors map to the collection's columns: its saved
        vocabulary, else its encoder's word pieces, else column numbers as strings."""
        coll = self.service.registry.get(name)
        if coll.vocabulary is not None:
            return Vocabulary("collection", coll.vocabulary)
        if coll.config.encoder != NO_ENCODER:
            return Vocabulary.of_encoder(self.service.encoders.get(coll.config.encoder))
        return Vocabulary.ids()

    def _write(self, job: Job, batch: list, vocab: Vocabulary | None) -> None:
        """Encode the texts (or take the given vectors) of ``batch`` and upsert them."""
        coll = self.service.registry.get(job.collection)
        # the last duplicate id of a batch wins, as it would in consecutive upserts
        unique = list({d.doc_id: d for d in batch}.values())
        ids = [d.doc_id for d in unique]
        limit = self.settings.max_text_length
        if coll.config.fields is not None:  # every field encodes the texts
            texts = [d.text[:limit] for d in unique]
            coll.write(
                self.service.fields.encode_texts(coll, ids, texts), upsert=job.request.upsert
            )
            job.done += len(batch)
            if coll.needs_seal():
                self.service.registry.wake()
            return
        if vocab is not None:
            matrix = vectors_to_csr(ids, [d.vector for d in unique], vocab, coll.config.dim)
        else:
            enc = self.service.inputs.encoder_for_text(coll, "job")
            matrix = enc.encode_documents([d.text[:limit] for d in unique])
        coll.write(DocumentBatch.of(ids, matrix), upsert=job.request.upsert)
        job.done += len(batch)
        if coll.needs_seal():
            self.service.registry.wake()

    def close(self) -> None:
        for job in self._jobs.values():
            job.cancel.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
