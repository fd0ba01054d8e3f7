"""Multi-field collections at the service's edge: the fields a collection is created with,
the fusion a collection or a request asks for, checked (a 422 names what is wrong), and the
default configuration of a collection that names no encoder."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from app.errors import InvalidInputError
from app.services.encoders import NO_ENCODER, EncoderPool
from app.services.fusion import FUSION_METHODS, RRF_K, SELECTED_FUSIONS, FusionSpec
from app.services.models import CollectionSpec, FieldSpec, FusionRequest, RerankRequest
from app.storage.fields import FIELD_NAME_RE, LEXICAL_ENCODER, FieldLayout
from app.storage.vectors import MAX_DIM

# ``config.encoder`` of a multi-field collection (the fields name their own encoders).
MULTI_FIELD = "fields"
# Distinct terms a live BM25 field can hold by default (its columns; one more for lengths).
DEFAULT_BM25_TERMS = (1 << 20) - 1
# Candidates each field returns to the fusion: at least this many, or k when larger.
FUSION_DEPTH = 100

# What a collection created with neither "encoder" nor "fields" gets: splade-tiny and BM25,
# fused linearly 0.3 / 0.7, the pair and fusion selected on SciFact's train queries that beat
# stemmed BM25 on all five shared test collections (README "Hybrid evaluation").
DEFAULT_FIELDS = {
    "splade": FieldSpec(encoder="splade-tiny"),
    "bm25": FieldSpec(encoder=LEXICAL_ENCODER),
}
_SELECTED = SELECTED_FUSIONS[("splade-tiny", "bm25")]
DEFAULT_FUSION = FusionRequest(
    method=_SELECTED.method, weights=dict(zip(DEFAULT_FIELDS, _SELECTED.weights, strict=True))
)


def field_layouts(
    spec: CollectionSpec, encoders: EncoderPool, check_params: Any
) -> tuple[dict[str, dict[str, Any]], int]:
    """The fields of a new collection as stored in its config (name -> layout dict, the
    columns side by side in the order given) and the collection's total ``dim``.
    ``check_params(index_params, query_params, where)`` checks one field's parameters."""
    given = spec.fields or {}
    if not given:
        raise InvalidInputError("fields: give at least one field")
    if spec.encoder is not None or spec.dim is not None:
        raise InvalidInputError('give "encoder" (and "dim") or "fields", not both')
    if spec.target_recall is not None:
        raise InvalidInputError(
            "target_recall is for single-encoder collections; on a multi-field collection "
            'give "recall" per request (each field meets it through its own calibration)'
        )
    out: dict[str, dict[str, Any]] = {}
    offset = 0
    for name, field in given.items():
        where = f"fields.{name[:40]}"
        if not FIELD_NAME_RE.fullmatch(name):
            raise InvalidInputError(
                f"{where}: a field name is 1-32 letters, digits, '_' or '-', starting with a "
                "letter or digit"
            )
        index_params = {**spec.index_params, **field.index_params}
        query_params = {**spec.query_params, **field.query_params}
        if field.encoder == LEXICAL_ENCODER:
            terms = DEFAULT_BM25_TERMS if field.dim is None else field.dim
            width = terms + 1
            k1 = 0.9 if field.k1 is None else field.k1
            b = 0.4 if field.b is None else field.b
            if not (math.isfinite(k1) and k1 >= 0 and math.isfinite(b) and 0 <= b <= 1):
                raise InvalidInputError(f"{where}: BM25 needs k1 >= 0 and 0 <= b <= 1")
            rerank = False
        else:
            if field.encoder == NO_ENCODER:
                raise InvalidInputError(f"{where}: a field needs an encoder (texts are encoded)")
            if field.k1 is not None or field.b is not None:
                raise InvalidInputError(f"{where}: k1 and b are for bm25 fields")
            encoders.check_allowed(field.encoder)
            encoders.check_usable(field.encoder)
            encoder = encoders.get(field.encoder)
            width = int(encoder.dim)
            if field.dim is not None and field.dim != width:
                raise InvalidInputError(f"{where}: dim {field.dim} is not the encoder's {width}")
            k1, b = 0.9, 0.4
            rerank = bool(getattr(encoder, "rerank_only", False))
        if rerank and (field.index_params or field.query_params):
            raise InvalidInputError(
                f"{where}: a re-rank field ({field.encoder}) has no index: no index_params or "
                "query_params"
            )
        check_params(index_params, query_params, where)
        layout = FieldLayout(
            name, field.encoder, offset, width, index_params, query_params, k1, b, rerank
        )
        out[name] = layout.to_dict()
        if not layout.lexical:  # the model its vectors will come from (app.services.pins)
            out[name]["encoder_fingerprint"] = encoders.fingerprint(field.encoder)
        offset += width
    if offset > MAX_DIM:
        raise InvalidInputError(f"fields: {offset} columns in all; the limit is {MAX_DIM}")
    if not searched_fields(out):
        raise InvalidInputError(
            "fields: a re-rank field only re-scores what other fields find; add a field to "
            'search (e.g. {"encoder": "bm25"} or a sparse model)'
        )
    if sum(bool(body.get("rerank")) for body in out.values()) > 1:
        raise InvalidInputError("fields: at most one re-rank field")
    return out, offset


def searched_fields(fields: dict[str, dict[str, Any]]) -> list[str]:
    """The fields a search runs and fuses (every field but a re-rank one), in order."""
    return [name for name, body in fields.items() if not body.get("rerank")]


def checked_fusion(
    raw: FusionRequest | None, names: Sequence[str], where: str = "fusion"
) -> dict[str, Any]:
    """A fusion as stored and applied: ``{"method", "weights": {field: w}, "rrf_k"}`` over
    ``names`` (the collection's fields); None: RRF with equal weights."""
    if raw is None:
        return {"method": "rrf", "weights": {n: 1.0 for n in names}, "rrf_k": RRF_K}
    if raw.method not in FUSION_METHODS:
        raise InvalidInputError(
            f"{where}.method: must be one of {list(FUSION_METHODS)}, got {str(raw.method)[:40]!r}"
        )
    rrf_k = RRF_K if raw.rrf_k is None else raw.rrf_k
    if isinstance(rrf_k, bool) or not isinstance(rrf_k, int) or rrf_k < 0:
        raise InvalidInputError(f"{where}.rrf_k: must be an integer >= 0, got {rrf_k!r}")
    if raw.weights is None:
        weights = {n: 1.0 for n in names}
    else:
        unknown = [w for w in raw.weights if w not in names]
        if unknown:
            raise InvalidInputError(
                f"{where}.weights: no field {unknown[0][:40]!r}; the fields are {list(names)}"
            )
        weights = {}
        for name in names:
            w = raw.weights.get(name, 0.0)
            if isinstance(w, bool) or not isinstance(w, int | float):
                raise InvalidInputError(f"{where}.weights.{name}: must be a number")
            if not math.isfinite(w) or w < 0:
                raise InvalidInputError(
                    f"{where}.weights.{name}: must be finite and >= 0, got {w!r}"
                )
            weights[name] = float(w)
        if not any(w > 0 for w in weights.values()):
            raise InvalidInputError(f"{where}.weights: at least one weight must be > 0")
    return {"method": raw.method, "weights": weights, "rrf_k": rrf_k}


def fusion_spec(fusion: dict[str, Any], names: Sequence[str]) -> FusionSpec:
    """The pure fusion function's spec for the runs of ``names``, in that order."""
    return FusionSpec(
        method=fusion["method"],
        weights=tuple(float(fusion["weights"].get(n, 0.0)) for n in names),
        rrf_k=int(fusion["rrf_k"]),
    )


def find_layout(layouts: Sequence[FieldLayout], name: str, collection: str) -> FieldLayout:
    """The field ``name`` of a collection's ``layouts``, or a 422 listing its fields."""
    for layout in layouts:
        if layout.name == name:
            return layout
    raise InvalidInputError(
        f"no field {str(name)[:40]!r} in collection {collection!r}; its fields are "
        f"{[f.name for f in layouts]}"
    )


def checked_rerank(
    spec: RerankRequest, layouts: Sequence[FieldLayout], max_k: int, where: str, collection: str
) -> FieldLayout:
    """The re-rank field ``spec`` names (None: the collection's one) among ``layouts``, with
    its ``depth`` (1..``max_k``) and ``weight`` (None or in [0, 1]) checked."""
    if spec.field is not None:
        layout = find_layout(layouts, spec.field, collection)
        if not layout.rerank:
            raise InvalidInputError(
                f"{where}.field: {spec.field!r} is searched, not a re-rank field (a field "
                'whose encoder is a dense model, e.g. "minilm-dense")'
            )
    else:
        found = [f for f in layouts if f.rerank]
        if not found:
            raise InvalidInputError(
                f"{where}: collection {collection!r} has no re-rank field; create it with one, "
                'e.g. "fields": {..., "dense": {"encoder": "minilm-dense"}}'
            )
        layout = found[0]
    depth = spec.depth
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise InvalidInputError(f"{where}.depth: must be an integer >= 1, got {depth!r}")
    if depth > max_k:
        raise InvalidInputError(f"{where}.depth: above the limit {max_k}")
    weight = spec.weight
    if weight is not None and (
        isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1
    ):  # not 0 <= NaN <= 1 either
        raise InvalidInputError(f"{where}.weight: must be a number in [0, 1], got {weight!r}")
    return layout
