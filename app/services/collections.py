"""Collection management of the search service (a mixin of
:class:`app.services.search.SearchService`): create (one encoder, several fields, or the
default configuration), change the recall target or accept a changed encoder model,
describe, list, seal, merge, drop, health and stats."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace
from typing import Any

from app.errors import InvalidInputError, NotFoundError
from app.services.fieldspec import (
    DEFAULT_FIELDS,
    DEFAULT_FUSION,
    MULTI_FIELD,
    checked_fusion,
    checked_rerank,
    field_layouts,
    searched_fields,
)
from app.services.models import (
    CollectionListing,
    CollectionSpec,
    CollectionSummary,
    CollectionUpdate,
    DamagedCollection,
)
from app.services.params import checked_query_params, checked_recall
from app.services.recall import CollectionRecall
from app.storage.collection import Collection, CollectionConfig
from app.storage.fields import LEXICAL_ENCODER, FieldLayout

log = logging.getLogger(__name__)


class CollectionAdmin:
    """Collection methods of :class:`app.services.search.SearchService` (its state: the
    settings, registry, encoders and recall monitor)."""

    def create_collection(self, req: CollectionSpec) -> CollectionSummary:
        """A new, empty collection; its encoders must be allowed and runnable here. With
        neither ``encoder`` nor ``fields``: the default fields and fusion."""
        if req.encoder is None and req.fields is None:
            if req.dim is not None:
                raise InvalidInputError('"dim" goes with an "encoder" (e.g. "none")')
            req = replace(req, fields=dict(DEFAULT_FIELDS), fusion=req.fusion or DEFAULT_FUSION)
        if req.fields is not None:
            return self._create_fields(req)
        if req.fusion is not None or req.rerank is not None:
            raise InvalidInputError(
                '"fusion" and "rerank" are for collections with several "fields"'
            )
        if req.encoder == LEXICAL_ENCODER:  # unfitted, it cannot encode: the live field can
            raise InvalidInputError(
                "BM25 needs corpus statistics that a collection keeps live as a field: create "
                'it with "fields": {"bm25": {"encoder": "bm25"}} (and other fields beside it)'
            )
        self.encoders.check_allowed(req.encoder)
        self.encoders.check_usable(req.encoder)
        enc = self.encoders.get(req.encoder)
        if getattr(enc, "rerank_only", False):
            raise InvalidInputError(
                f"{req.encoder} is a dense model for re-ranking: use it as a field beside one "
                f'to search, e.g. "fields": {{"bm25": {{"encoder": "bm25"}}, "dense": '
                f'{{"encoder": "{req.encoder}"}}}}'
            )
        if enc is None:
            if req.dim is None:
                raise InvalidInputError('a collection with encoder "none" needs "dim"')
            dim = req.dim
        else:
            if req.dim is not None and req.dim != enc.dim:
                raise InvalidInputError(f"dim {req.dim} does not match encoder dim {enc.dim}")
            dim = int(enc.dim)
        self._check_params(req.index_params, req.query_params)
        config = CollectionConfig(
            name=req.name,
            encoder=req.encoder,
            dim=dim,
            index_params=dict(req.index_params),
            query_params=dict(req.query_params),
            created_at=time.time(),
            target_recall=checked_recall(req.target_recall, "target_recall"),
            encoder_fingerprint=self.encoders.fingerprint(req.encoder),
        )
        return self._info(self.registry.create(config))

    def _create_fields(self, req: CollectionSpec) -> CollectionSummary:
        fields, dim = field_layouts(req, self.encoders, self._check_field_params)
        self._check_params(req.index_params, req.query_params)
        rerank = None
        if req.rerank is not None:  # the default re-rank of searches that give none
            layouts = [FieldLayout.from_dict(n, body) for n, body in fields.items()]
            field = checked_rerank(req.rerank, layouts, self.settings.max_k, "rerank", req.name)
            rerank = {"field": field.name, "depth": req.rerank.depth, "weight": req.rerank.weight}
        config = CollectionConfig(
            name=req.name,
            encoder=MULTI_FIELD,
            dim=dim,
            index_params=dict(req.index_params),
            query_params=dict(req.query_params),
            created_at=time.time(),
            fields=fields,
            fusion=checked_fusion(req.fusion, searched_fields(fields)),
            rerank=rerank,
        )
        return self._info(self.registry.create(config))

    @classmethod
    def _check_field_params(
        cls, index_params: dict[str, Any], query_params: dict[str, Any], where: str
    ) -> None:
        try:
            cls._check_params(index_params, query_params)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}.{exc.message}") from exc

    def update_collection(self, name: str, req: CollectionUpdate) -> CollectionSummary:
        """Change a collection's recall target (None clears it; its live estimate and
        controller start afresh), and/or accept the models now behind its encoders
        (:meth:`app.services.pins.EncoderPins.accept`)."""
        coll = self.registry.get(name)
        multi = coll.config.fields is not None
        if multi and req.target_recall is not None:
            raise InvalidInputError(
                "target_recall is for single-encoder collections; on a multi-field collection "
                'give "recall" per request'
            )
        target = checked_recall(req.target_recall, "target_recall")
        if (req.encoder_fingerprint is not None) if multi else bool(req.field_fingerprints):
            raise InvalidInputError(
                'encoder_fingerprint: on a multi-field collection give it per field ("fields":'
                ' {"NAME": {"encoder_fingerprint": ...}}), on a single-encoder one at the top'
                " level"
            )
        pins = dict(req.field_fingerprints)
        if req.encoder_fingerprint is not None:
            pins[""] = req.encoder_fingerprint  # the one field of a single-encoder collection
        self.inputs.pins.accept(coll, pins)
        if req.sets_target_recall:
            coll.set_target_recall(target)
        return self._info(coll)

    @staticmethod
    def _check_params(index_params: dict[str, Any], query_params: dict[str, Any]) -> None:
        from index import BuildParams

        try:
            BuildParams(**index_params)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"index_params: {exc}") from exc
        checked_query_params(query_params)

    def _info(self, coll: Collection) -> CollectionSummary:
        return CollectionSummary(coll.config, len(coll.id_map), self.inputs.pins.status(coll))

    def pin_encoders(self) -> None:
        """At start-up: pin the open collections created before encoder pins existed, and
        log those whose encoder's model changed."""
        for name in self.registry.names():
            try:
                self.inputs.pins.pin_unpinned(self.registry.get(name))
            except OSError:  # config.json not writable: pinned at first use, if ever
                log.exception("%s: encoder pins not written", name)

    def describe(self, name: str) -> CollectionSummary:
        return self._info(self.registry.get(name))

    def list_collections(self) -> CollectionListing:
        """Every open collection (by name), and the quarantined ones with their damage."""
        out = []
        for name in self.registry.names():
            try:
                out.append(self._info(self.registry.get(name)))
            except NotFoundError:
                continue
        damaged = [DamagedCollection(n, d) for n, d in sorted(self.registry.damaged.items())]
        return CollectionListing(out, damaged)

    def seal(self, name: str) -> dict[str, Any]:
        """Seal the mutable segment now (normally done in the background)."""
        coll = self.registry.get(name)
        return {"sealed": coll.seal(), **coll.stats()}

    def merge(self, name: str) -> dict[str, Any]:
        """Merge every sealed segment into one, dropping tombstoned rows."""
        coll = self.registry.get(name)
        segments = coll.sealed_segments()
        return {"merged": coll.merge(segments) if segments else False, **coll.stats()}

    def drop_collection(self, name: str) -> None:
        self.registry.drop(name)
        self.recall.forget(name)

    def health(self) -> dict[str, Any]:
        """Collections open, and those that cannot serve: their encoder cannot run here."""
        unavailable = {}
        for name in self.registry.names():
            for layout in self.registry.get(name).layouts:
                if layout.encoder in self.encoders.unavailable:
                    unavailable[name] = self.encoders.unavailable[layout.encoder]
        return {
            "collections": len(self.registry.names()),
            "collections_unavailable": unavailable,
            "collections_damaged": dict(self.registry.damaged),
        }

    def stats(self, name: str) -> dict[str, Any]:
        """Documents, segments (rows, tombstones, indexed and calibrated or not), WAL size,
        and live recall: the estimate, its interval, the target and the setting searches
        run (with its moves), and the sampler's counters."""
        coll = self.registry.get(name)
        live = self._recall_state(coll)
        live.own_plan(coll.view, coll.config.query_params)  # starts the controller when due
        return {
            "name": name,
            "encoder": coll.config.encoder,
            "dim": coll.config.dim,
            "query_params": coll.config.query_params,
            **(
                {"fields": coll.config.fields, "fusion": coll.config.fusion}
                if coll.config.fields is not None
                else {}
            ),
            **coll.stats(),
            "encoder_pins": [asdict(pin) for pin in self.inputs.pins.status(coll)],
            "recall": {**live.snapshot(), "sampler": self.recall.snapshot()},
        }

    def _recall_state(self, coll: Collection) -> CollectionRecall:
        config = coll.config
        return self.recall.state(config.name, config.created_at, config.target_recall)
