"""What a server serves: a champion version, maybe a challenger, and how traffic is shared.

A :class:`Deployment` is immutable. Reloading builds a new one and the server swaps its
reference; a request that started on the old deployment finishes on it, so nothing in
flight is dropped. :meth:`Deployment.score` is plain Python (no HTTP): it parses a
body, routes it, predicts and returns the answer plus the records for the predictions log.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError, shorten
from .fastpath import loads as fast_loads
from .formats import (
    JSON_TYPE,
    BadRequest,
    InputSpec,
    dumps,
    jsonable,
    load_json,
    media_type,
    parse_json,
    parse_payload,
)
from .predictions import PredictionRecord

ROLES = ("champion", "challenger", "shadow")


class ModelFailed(BadRequest):
    """The model itself refused the inputs (raised ValueError or TypeError): HTTP 400."""


@dataclass(frozen=True)
class ServedModel:
    """One loaded version: the URI it was asked by, the registry entry and the object."""

    requested: str
    version: Any  # ModelVersion
    model: Any
    spec: InputSpec
    fast: Any = None  # a FastPath when the signature and a probe allow one

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def number(self) -> int:
        return self.version.version

    @property
    def label(self) -> str:
        return f"{self.version.name}/{self.version.version}"

    def predict(self, inputs: Any, *, fast: bool = False) -> Any:
        """The model's predictions; ``fast``: ``inputs`` is this version's fast-path array."""
        try:
            if fast:
                return self.fast.predict(self.model, inputs)
            return self.model.predict(inputs)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFailed(
                f"Model {self.label} could not score these inputs: {first[:200]}"
            ) from None

    def metadata(self) -> dict[str, Any]:
        v = self.version
        return {"uri": v.uri, "requested": self.requested, "name": v.name, "version": v.version,
                "aliases": list(v.aliases), "run_id": v.run_id, "class_name": v.class_name,
                "framework": v.framework, "sha256": v.sha256, "created": v.created,
                "signature": v.signature}


def load_served(uri: str, store: Any) -> ServedModel:
    """Resolve ``uri`` in the registry now and load (and verify) the version's bytes: the
    alias, the version's row and its bytes must all carry this user's signature."""
    from ..registry.versions import load_version

    from ..tracking.frameworks import predictor

    version, model = load_version(uri, store=store)
    model = predictor(model)  # a native Booster answers with labels, as its wrapper would
    if not callable(getattr(model, "predict", None)):
        raise ValidationError(
            f"Model {version.name}/{version.version} ({version.class_name}) has no predict "
            "method; only models with predict() can be served."
        )
    spec = InputSpec.from_signature(version.signature)
    return ServedModel(uri, version, model, spec, _fast_path(model, spec, version, store))


def _fast_path(model: Any, spec: InputSpec, version: Any, store: Any) -> Any:
    from .fastpath import FastPath

    if spec.kind != "dataframe":
        return None
    reference = None
    if getattr(version, "reference_sha256", None):
        from ..registry.versions import reference_sample

        try:
            reference = reference_sample(version.uri, store=store)
        except Exception:  # noqa: BLE001 - the probe's made-up rows remain
            reference = None
    return FastPath.probe(model, spec, reference)


def _outputs(served: ServedModel, raw: Any) -> tuple[str, int]:
    """``served``'s predictions for ``raw`` as strict JSON, and the number of rows."""
    values = jsonable(served.predict(served.spec.conform(raw)))
    return dumps(values), len(values) if isinstance(values, list) else 1


@dataclass(frozen=True)
class Scored:
    """A scored request: the JSON body to answer with and the records to log."""

    body: str
    answered_by: ServedModel
    records: list[PredictionRecord]
    n_rows: int


@dataclass(frozen=True)
class Deployment:
    """The champion, an optional challenger, and the routing between them.

    ``split`` is the share of requests the challenger answers; with ``shadow`` the
    challenger scores every request too but the champion always answers.
    """

    champion: ServedModel
    challenger: ServedModel | None = None
    split: float = 0.0
    shadow: bool = False
    loaded: float = field(default_factory=time.time)
    _random: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_routing(self.challenger is not None, self.split, self.shadow)

    @property
    def inline(self) -> bool:
        """Small requests may be scored on the event loop (``FastPath.inline``)."""
        fast = self.champion.fast
        return self.challenger is None and fast is not None and fast.inline

    @property
    def models(self) -> list[ServedModel]:
        return [self.champion] + ([self.challenger] if self.challenger is not None else [])

    def _draw(self) -> float:
        with self._lock:
            return self._random.random()

    def score(self, body: bytes, content_type: str | None, request_id: str) -> Scored:
        started = time.perf_counter()
        mime = media_type(content_type)
        fast = self.champion.fast if self.challenger is None else None
        if fast is not None and mime == JSON_TYPE and body.strip():
            payload = fast_loads(body)
            array = None if payload is None else fast.rows(payload, body)
            # The general way parses with json again: its refusals and numbers are json's.
            raw = parse_json(load_json(body), self.champion.spec) if array is None else None
        else:
            array, raw = None, parse_payload(body, mime, self.champion.spec)
        answering, role = self.champion, "champion"
        if self.challenger is not None and not self.shadow and self._draw() < self.split:
            answering, role = self.challenger, "challenger"
        if array is not None:
            values = jsonable(answering.predict(array, fast=True))
            outputs, n_rows = dumps(values), len(values) if isinstance(values, list) else 1
        else:
            outputs, n_rows = _outputs(answering, raw)
        now = time.time()
        latency = (time.perf_counter() - started) * 1000
        # The log keeps the body as received and the outputs as the answer's own JSON.
        records = [PredictionRecord(request_id, now, answering.name, answering.number, role,
                                    True, mime, body, outputs, n_rows, latency)]
        if self.shadow and self.challenger is not None:
            records.extend(self._shadow(raw, mime, body, request_id, now))
        return Scored('{"predictions":' + outputs + "}", answering, records, n_rows)

    def _shadow(self, raw: Any, mime: str, body: bytes, request_id: str,
                now: float) -> list[PredictionRecord]:
        started = time.perf_counter()
        try:
            outputs, n_rows = _outputs(self.challenger, raw)
        except BadRequest:
            return []  # the shadow's refusal never reaches the client
        latency = (time.perf_counter() - started) * 1000
        return [PredictionRecord(request_id, now, self.challenger.name, self.challenger.number,
                                 "shadow", False, mime, body, outputs, n_rows, latency)]

    def metadata(self) -> dict[str, Any]:
        data = {"champion": self.champion.metadata(), "loaded": self.loaded}
        if self.challenger is not None:
            data["challenger"] = self.challenger.metadata()
            data["routing"] = ({"mode": "shadow"} if self.shadow
                               else {"mode": "split", "split": self.split})
        else:
            data["routing"] = {"mode": "single"}
        return data


def check_routing(has_challenger: bool, split: float | None, shadow: bool) -> None:
    """Refuse ``--split`` or ``--shadow`` without a challenger, or a split outside [0, 1]."""
    if split is not None and (isinstance(split, bool) or not isinstance(split, (int, float))
                              or not 0 <= split <= 1):
        raise ValidationError(f"split is the challenger's share of traffic, between 0 and 1; "
                              f"got {shorten(split)}.")
    if not has_challenger and (shadow or split):
        raise ValidationError("--split and --shadow route traffic to a challenger; name one "
                              "with --challenger URI.")
    if shadow and split:
        raise ValidationError("Choose --split (the challenger answers a share) or --shadow (it "
                              "scores everything, the champion answers), not both.")
