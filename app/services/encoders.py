"""Encoders by name, loaded once and shared by every collection that uses them."""

from __future__ import annotations

import threading
from typing import Any

from app.errors import EncoderUnavailableError, InvalidInputError
from app.services.batcher import QueryBatcher

NO_ENCODER = "none"
# Encoder types whose parts come with an optional extra of the package.
TYPE_EXTRAS = {"csr": "csr", "dense": "csr"}
TRIAL_TEXT = "dependency check"


def encoder_type(encoder: Any) -> str | None:
    """The ``type`` of ``lsr_encoder.json`` (splade, csr, ...), when the encoder says."""
    config = getattr(encoder, "config", None)
    return getattr(config, "type", None)


def install_hint(kind: str | None) -> str:
    extra = TYPE_EXTRAS.get(kind or "")
    if extra is None:
        return ""
    return f"; install the '{extra}' extra: pip install 'lsr-engine[{extra}]'"


class EncoderPool:
    """Lazily loads ``encoders.load_encoder(name)``; ``"none"`` means vectors only."""

    def __init__(self, allowed: str = "*") -> None:
        self.allowed = allowed
        self._encoders: dict[str, Any] = {}
        self.unavailable: dict[str, str] = {}  # encoder name -> why it cannot run here
        self._token_maps: dict[str, dict[str, int]] = {}
        self._batchers: dict[str, QueryBatcher] = {}
        # encoder name -> fingerprint of its model: of the files when the model was loaded,
        # or when first asked before that (encoders.fingerprint)
        self._fingerprints: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Any:
        """The loaded encoder ``name`` (None for ``"none"``); an encoder that cannot be loaded
        or cannot run here raises :class:`EncoderUnavailableError` (503), every time."""
        if name == NO_ENCODER:
            return None
        enc = self._encoders.get(name)
        if enc is not None:
            return enc
        with self._lock:
            if name in self.unavailable:
                raise EncoderUnavailableError(self.unavailable[name])
            if name not in self._encoders:
                self._encoders[name] = self._load_and_try(name)
            return self._encoders[name]

    def _load_and_try(self, name: str) -> Any:
        """Load ``name`` and encode one short text both ways: optional parts (the CSR's dense
        model) are loaded lazily, so loading alone proves nothing."""
        from encoders import load_encoder
        from encoders.fingerprint import model_fingerprint

        enc = None
        try:
            enc = load_encoder(name)
            # the files just loaded (resolved again: a fetch or download is done by now)
            fingerprint = model_fingerprint(name)
            enc.encode_queries([TRIAL_TEXT])
            enc.encode_documents([TRIAL_TEXT])
        except Exception as exc:  # whatever the loader raises, this encoder cannot serve
            why = f"encoder {name[:200]!r} cannot run here: {str(exc)[:500]}"
            self.unavailable[name] = why + install_hint(encoder_type(enc))
            raise EncoderUnavailableError(self.unavailable[name]) from exc
        self._fingerprints[name] = fingerprint
        return enc

    def fingerprint(self, name: str) -> str | None:
        """The fingerprint of the model this process encodes with for ``name``: taken when it
        was loaded, or before that from its files now (never downloading); None for
        ``"none"``. A model changed on disk after loading is seen at the next start.
        Raises :class:`encoders.EncoderError` when the model cannot be found."""
        if name == NO_ENCODER:
            return None
        found = self._fingerprints.get(name)
        if found is None:
            from encoders.fingerprint import model_fingerprint

            found = self._fingerprints.setdefault(name, model_fingerprint(name))
        return found

    def check_usable(self, name: str) -> None:
        """At collection create: the encoder loads and runs, else a 422 naming what is missing."""
        try:
            self.get(name)
        except EncoderUnavailableError as exc:
            self.unavailable.pop(name, None)  # a later create may follow an install
            raise InvalidInputError(exc.message) from exc

    def check_allowed(self, name: str) -> None:
        """Only operator-approved encoders for new collections (``LSR_ENCODERS``): a client
        must not make the server read arbitrary folders or download models."""
        if name == NO_ENCODER:
            return
        if self.allowed.strip() == "*":
            return
        if self.allowed.strip() == "registered":
            from encoders.registry import MODELS

            allowed = set(MODELS)
        else:
            allowed = {a.strip() for a in self.allowed.split(",") if a.strip()}
        if name not in allowed:
            raise InvalidInputError(
                f"encoder {name[:200]!r} is not allowed here; use one of "
                f"{sorted(allowed) + [NO_ENCODER]} (operators: LSR_ENCODERS)"
            )

    def token_map(self, name: str) -> dict[str, int]:
        """token -> column for ``{token: weight}`` vectors (integer strings for ``none``)."""
        if name not in self._token_maps:
            enc = self.get(name)
            names = [] if enc is None else list(enc.feature_names)
            self._token_maps[name] = {tok: col for col, tok in enumerate(names)}
        return self._token_maps[name]

    def feature_name(self, name: str, column: int) -> str:
        enc = self.get(name)
        if enc is None:
            return str(column)
        names = enc.feature_names
        return names[column] if 0 <= column < len(names) else str(column)

    def loaded_batcher(self, name: str) -> QueryBatcher | None:
        return self._batchers.get(name)

    def batcher(self, name: str) -> QueryBatcher:
        """The query micro-batcher of encoder ``name`` (loads the encoder on first use)."""
        found = self._batchers.get(name)
        if found is not None:
            return found
        enc = self.get(name)
        with self._lock:
            if name not in self._batchers:
                self._batchers[name] = QueryBatcher(enc)
            return self._batchers[name]

    def close(self) -> None:
        for batcher in self._batchers.values():
            batcher.close()

    def loaded(self) -> list[str]:
        return sorted(self._encoders)
