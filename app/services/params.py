"""Query-time knobs as the service takes them: a collection's defaults (``query_params`` at
create) and a request's overrides, both checked by ``index.QueryParams`` and handed to the
index as keyword arguments (those given; the index fills in the rest)."""

from __future__ import annotations

from typing import Any

from app.errors import InvalidInputError


def checked_query_params(raw: dict[str, Any], where: str = "query_params") -> dict[str, Any]:
    """The given knobs, after ``index.QueryParams`` has accepted them (a 422 names the bad or
    unknown one)."""
    from index import QueryParams

    given = {name: value for name, value in raw.items() if value is not None}
    try:
        QueryParams.from_dict(given)
    except ValueError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None
    return given
