"""Encoder pins: each field of a collection records the fingerprint of the model its stored
vectors came from (:mod:`encoders.fingerprint`), and text is encoded only by that model.

When the model behind an encoder's name changes (re-pulled, overwritten in place, new
settings in its ``lsr_encoder.json``), new codes would be scored against old ones and
rankings would degrade silently. Instead, every operation that encodes text for a field
(writes by text, searches and explanations by text, indexing jobs of texts) answers 409
``encoder_changed``; reads, deletes and searches by vector go on. Fields without model files
have nothing to pin: ``"none"`` (client vectors) and live BM25 (its statistics live in the
collection). The way out: put the pinned model back, or accept the new one with ``PATCH
/v1/collections/{name}`` and re-index the documents by text.

A collection created before pins existed is pinned to the model found when it is first
opened (or first used, when its model is missing then), with a log line saying so.
"""

from __future__ import annotations

import json
import logging

from app.errors import EncoderChangedError, EncoderUnavailableError, InvalidInputError
from app.services.encoders import NO_ENCODER, EncoderPool
from app.services.models import EncoderPin
from app.storage.collection import Collection
from app.storage.fields import FieldLayout

log = logging.getLogger(__name__)


def has_model(layout: FieldLayout) -> bool:
    """Whether a field's codes come from model files (not client vectors, not live BM25)."""
    return layout.encoder != NO_ENCODER and not layout.lexical


def _field_words(coll: Collection, layout: FieldLayout) -> str:
    if coll.config.fields is None:
        return f"collection {coll.config.name!r}"
    return f"collection {coll.config.name!r}, field {layout.name!r}"


def accept_body(coll: Collection, layout: FieldLayout, fingerprint: str) -> str:
    """The PATCH body that pins ``fingerprint`` for the field."""
    pin = {"encoder_fingerprint": fingerprint}
    body = pin if coll.config.fields is None else {"fields": {layout.name: pin}}
    return json.dumps(body)


class EncoderPins:
    """Pins checked against the models of :class:`EncoderPool`."""

    def __init__(self, encoders: EncoderPool) -> None:
        self.encoders = encoders

    def current(self, layout: FieldLayout) -> str | None:
        """The fingerprint of the model this server encodes the field with (503 when the
        model cannot be found)."""
        from encoders import EncoderError

        try:
            return self.encoders.fingerprint(layout.encoder)
        except EncoderError as exc:
            raise EncoderUnavailableError(
                f"encoder {layout.encoder[:200]!r} cannot be fingerprinted here: {exc}"
            ) from exc

    def check(self, coll: Collection, layout: FieldLayout) -> None:
        """Before a field encodes text: its model must be the pinned one (an unpinned field
        is pinned now). Call it once the encoder is loaded, so that the fingerprint is the
        loaded model's."""
        if not has_model(layout):
            return
        current = self.current(layout)
        pinned = coll.config.pinned_fingerprint(layout.name)
        if pinned is None and current is not None:
            self._pin(coll, {layout.name: current}, "at first use")
        elif pinned != current:
            raise EncoderChangedError(
                f"{_field_words(coll, layout)}: the model behind encoder "
                f"{layout.encoder[:200]!r} changed since its documents were encoded (pinned "
                f"{pinned}, now {current}); encoding text with it would mix two models' codes "
                "in one index. Searches by vector, reads and deletes still work. Put the "
                "pinned model back and restart, or accept the new model and re-index every "
                f"document by text: PATCH /v1/collections/{coll.config.name} "
                f"{accept_body(coll, layout, current or '')}"
            )

    def pin_unpinned(self, coll: Collection) -> None:
        """At open: pin the fields that have none yet (collections created before pins) and
        log the fields whose model is no longer the pinned one."""
        from encoders import EncoderError

        pins = {}
        for layout in filter(has_model, coll.layouts):
            pinned = coll.config.pinned_fingerprint(layout.name)
            try:
                current = self.encoders.fingerprint(layout.encoder)
            except EncoderError as exc:
                log.warning(
                    "%s: encoder %r not found here (%s); its pin is set or checked at first use",
                    _field_words(coll, layout),
                    layout.encoder,
                    exc,
                )
                continue
            if pinned is None and current is not None:
                pins[layout.name] = current
            elif pinned != current:
                log.warning(
                    "%s: the model behind encoder %r changed (pinned %s, now %s): writes and "
                    "searches by text answer 409 until it is resolved",
                    _field_words(coll, layout),
                    layout.encoder,
                    pinned,
                    current,
                )
        if pins:
            self._pin(coll, pins, "on first open")

    def status(self, coll: Collection) -> list[EncoderPin]:
        """Each field with a model: pinned and current fingerprints, and whether they match."""
        from encoders import EncoderError

        out = []
        for layout in filter(has_model, coll.layouts):
            pinned = coll.config.pinned_fingerprint(layout.name)
            try:
                current = self.encoders.fingerprint(layout.encoder)
            except EncoderError:
                current = None
            matches = None if pinned is None or current is None else pinned == current
            name = layout.name if coll.config.fields is not None else None
            out.append(EncoderPin(name, layout.encoder, pinned, current, matches))
        return out

    def accept(self, coll: Collection, wanted: dict[str, str]) -> None:
        """Re-pin fields (``""``: a single-encoder collection's) to the model now behind their
        encoder; each given fingerprint must be that model's, so a client accepts exactly
        the model it looked at."""
        layouts = {layout.name: layout for layout in coll.layouts}
        for name, fingerprint in wanted.items():
            layout = layouts.get(name)
            if layout is None:
                raise InvalidInputError(
                    f"fields.{name[:40]}: no such field in collection {coll.config.name!r}; "
                    f"its fields are {list(layouts)}"
                )
            if not has_model(layout):
                raise InvalidInputError(
                    f"{_field_words(coll, layout)}: encoder {layout.encoder!r} has no model "
                    "files, so nothing is pinned"
                )
            enc = self.encoders.get(layout.encoder)  # loaded: its fingerprint is current
            if int(enc.dim) != layout.width:
                raise InvalidInputError(
                    f"{_field_words(coll, layout)}: the model behind encoder "
                    f"{layout.encoder[:200]!r} has {enc.dim} columns, the collection's field "
                    f"{layout.width}; a model of another width needs a new collection"
                )
            current = self.current(layout)
            if fingerprint != current:
                raise EncoderChangedError(
                    f"{_field_words(coll, layout)}: the model behind encoder "
                    f"{layout.encoder[:200]!r} is {current}, not {fingerprint[:80]}; send the "
                    "fingerprint of the model you accept (GET /v1/collections/"
                    f"{coll.config.name} shows it as encoder_pins[].current)"
                )
        if wanted:
            self._pin(coll, wanted, "accepted by a client")

    @staticmethod
    def _pin(coll: Collection, pins: dict[str, str], why: str) -> None:
        coll.set_encoder_fingerprints(pins)
        for name, fingerprint in pins.items():
            log.info("%s%s: encoder pinned to %s (%s)", coll.config.name,
                     f", field {name}" if name else "", fingerprint, why)  # fmt: skip
