"""Typed service errors; one handler in :mod:`app.main` turns them into JSON 4xx/5xx answers."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: ``status`` is the HTTP status, ``code`` a stable machine-readable name."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(ServiceError, ValueError):
    """The request is well-formed JSON but asks for something impossible."""

    status = 422
    code = "invalid_input"


class NotFoundError(ServiceError):
    status = 404
    code = "not_found"


class ConflictError(ServiceError):
    status = 409
    code = "conflict"


class EncoderChangedError(ConflictError):
    """The model behind a field's encoder is not the one its stored vectors came from:
    encoding text with it would mix two models' codes in one index."""

    code = "encoder_changed"


class UnauthorizedError(ServiceError):
    status = 401
    code = "unauthorized"


class OverloadedError(ServiceError):
    """Every worker is busy and the queue is full: retry later."""

    status = 503
    code = "overloaded"


class CollectionDamagedError(ServiceError):
    """A collection's files are damaged: it is quarantined until ``lsr repair``."""

    status = 503
    code = "collection_damaged"


class EncoderUnavailableError(ServiceError):
    """A collection's encoder cannot run on this install (a missing extra, a missing model)."""

    status = 503
    code = "encoder_unavailable"


class StorageError(ServiceError):
    """The data directory is damaged or unwritable (a server problem, not the client's)."""

    status = 500
    code = "storage_error"
