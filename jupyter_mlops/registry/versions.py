"""The model registry: numbered, immutable versions with their lineage, and movable aliases.

A version is the sha256 of the model's bytes plus where they came from: the run, the cell
execution that produced it, the data it was trained on (fingerprints, and a bounded
reference sample for drift and monitoring) and its input signature. Registering the same
bytes under the same name again returns the existing version.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFoundError, UntrustedRecordError, ValidationError, shorten
from ..store import Store, chunks
from ..store.serialize import SERIALIZER, check_signed, dump, load_verified
from ..store.signing import KeyUnavailable, user_key, verify
from ..store.sqlite import write_signature
from ..tracking import storage
from ..tracking.capture import flush_capture, user_namespace
from ..tracking.datasets import data_kind, fingerprint, sample_rows
from ..tracking.user import current_user
from ..validation import check_name
from .chain import chain_model, is_chain
from .origin import Origin, default_run, find_origin, refuse_unfitted, variable_of
from .vouching import (
    VersionRow,
    assess,
    plan_trust,
    registered_here,
    require_alias,
    require_version,
    sign_alias,
    sign_replay,
    sign_version,
    tampered,
)

MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,200}\Z")
ALIAS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}\Z")
URI_RE = re.compile(r"^(?:models:/)?(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/@]+))?\Z")


@dataclass(frozen=True)
class ModelVersion:
    """One registered version. ``uri`` (``models:/name/3``) loads it with ``load_model``."""

    name: str
    version: int
    created: float
    sha256: str
    size: int
    serializer: str
    framework: str | None
    class_name: str | None
    run_id: str | None
    cell: int | None
    variable: str | None
    signature: dict[str, Any] | None
    datasets: list[dict[str, Any]]
    reference_rows: int | None
    aliases: list[str] = field(default_factory=list)
    reference_sha256: str | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def __repr__(self) -> str:
        aliases = f" @{', @'.join(self.aliases)}" if self.aliases else ""
        run = f" from run {self.run_id[:8]}" if self.run_id else ""
        return f"<ModelVersion {self.name}/{self.version}{aliases} {self.class_name}{run}>"

    def _repr_html_(self) -> str:
        from ..dashboards.registry import version_html

        return version_html(self, lineage(self.uri))


def check_model_name(name: object) -> str:
    """The one rule for model names, in the registry, the REST API and serving."""
    if isinstance(name, str) and MODEL_NAME_RE.match(name):
        check_name("Model name", name)  # the rule of every name: no '..' segment
        return name
    try:
        check_name("Model name", name)
        why = ""
    except ValidationError as exc:
        why = f" {exc}"
    raise ValidationError(
        f"Model names may hold letters, digits, '_', '.' and '-' (1 to 200 of them); got "
        f"{shorten(name)}.{why}"
    )


def check_alias(alias: object) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise ValidationError(
            f"An alias starts with a letter or '_' and holds letters, digits, '_', '.', '-' "
            f"(so it cannot be mistaken for a version number); got {shorten(alias)}."
        )
    return alias


def parse_model_uri(uri: str) -> tuple[str, int | None, str | None]:
    """``name``, ``name/3``, ``name@alias``, ``models:/name/3`` or ``models:/name@alias``."""
    match = URI_RE.match(uri.strip()) if isinstance(uri, str) else None
    if match is None:
        raise ValidationError(
            f"A model is named name@alias, name/VERSION, models:/name/VERSION or "
            f"models:/name@alias; got {shorten(uri)}."
        )
    version = match.group("version")
    return (check_model_name(match.group("name")), int(version) if version else None,
            match.group("alias"))


# -- reading ---------------------------------------------------------------------------

_VERSION_COLUMNS = ("name, version, created, sha256, size, serializer, framework, class_name, "
                    "run_id, cell, variable, signature, datasets, reference_rows, "
                    "reference_sha256")


def _version_from_row(store: Store, row: tuple) -> ModelVersion:
    aliases = [a for (a,) in store.query(
        "SELECT alias FROM aliases WHERE name = ? AND version = ? ORDER BY alias",
        (row[0], row[1]))]
    return ModelVersion(
        name=row[0], version=row[1], created=row[2], sha256=row[3], size=row[4],
        serializer=row[5], framework=row[6], class_name=row[7], run_id=row[8], cell=row[9],
        variable=row[10], signature=json.loads(row[11]) if row[11] else None,
        datasets=json.loads(row[12]), reference_rows=row[13], aliases=aliases,
        reference_sha256=row[14],
    )


def _store(store: Store | None) -> Store:
    from ..store.current import get_store

    return store or get_store()


# The raw fields the signed statements cover, read in the same query as the version.
_ROW_COLUMNS = _VERSION_COLUMNS + ", library_versions, hmac, replay_sha256, replay_hmac"


def _row_of(row: tuple) -> VersionRow:
    return VersionRow(name=row[0], version=row[1], sha256=row[3], size=row[4],
                      reference_sha256=row[14], signature=row[11], library_versions=row[15],
                      cell=row[9], datasets=row[12], variable=row[10], hmac=row[16],
                      replay_sha256=row[17], replay_hmac=row[18])


def _find(store: Store, uri: str, *, check_alias: bool
          ) -> tuple[ModelVersion, VersionRow, Any]:
    """The version a URI names, its signed fields, and its alias row's signature."""
    name, version, alias = parse_model_uri(uri)
    if not store.query("SELECT 1 FROM models WHERE name = ?", (name,)):
        known = [n for (n,) in store.query("SELECT name FROM models ORDER BY name")]
        raise NotFoundError(
            f"No model named {name!r}. Registered models: "
            f"{', '.join(known) if known else 'none yet (register one with register_model)'}."
        )
    alias_signature = None
    if alias is not None:
        rows = store.query("SELECT version, hmac FROM aliases WHERE name = ? AND alias = ?",
                           (name, alias))
        if not rows:
            known = [f"@{a} -> {v}" for a, v in store.query(
                "SELECT alias, version FROM aliases WHERE name = ? ORDER BY alias", (name,))]
            raise NotFoundError(
                f"Model {name!r} has no alias {alias!r}. Its aliases: "
                f"{', '.join(known) if known else 'none (set one with set_alias)'}."
            )
        version, alias_signature = rows[0]
    if version is None:
        version = store.query("SELECT max(version) FROM model_versions WHERE name = ?",
                              (name,))[0][0]
    rows = store.query(f"SELECT {_ROW_COLUMNS} FROM model_versions "
                       "WHERE name = ? AND version = ?", (name, version))
    if not rows:
        known = [str(v) for (v,) in store.query(
            "SELECT version FROM model_versions WHERE name = ? ORDER BY version", (name,))]
        raise NotFoundError(
            f"Model {name!r} has no version {shorten(version)}. Its versions: "
            f"{', '.join(known)}."
        )
    found, row = _version_from_row(store, rows[0]), _row_of(rows[0])
    if alias is not None and check_alias:
        require_alias(store, name, alias, version, alias_signature, row)
    return found, row, alias_signature


def get_model_version(uri: str, *, store: Store | None = None) -> ModelVersion:
    """The version a URI names; a bare name means its latest version.

    An alias is followed only when this user signed where it points (``set_alias`` and
    ``register_model(alias=...)`` sign it): a store writer cannot move ``name@champion``.
    """
    return _find(_store(store), uri, check_alias=True)[0]


def checked_version(uri: str, *, store: Store | None = None, done: str = "loaded",
                    pickle: str | None = None, allow_pickle: bool = False
                    ) -> tuple[ModelVersion, VersionRow]:
    """The version a URI names, refused unless this user signed its alias and its row.

    ``pickle`` names the bytes about to be unpickled (``"model"`` or ``"reference"``):
    their own signature is checked first, and a version with some of its bytes signed by
    this user and some not is refused as tampering (never with advice to vouch for it).
    ``allow_pickle`` trusts the store as a whole and checks nothing.
    """
    return _checked(_store(store), uri, done, pickle, allow_pickle)[:2]


def _checked(store: Store, uri: str, done: str, pickle: str | None, allow_pickle: bool
             ) -> tuple[ModelVersion, VersionRow, str | None]:
    """``checked_version``, plus the stored signature of the pickle it checked."""
    version, row, _ = _find(store, uri, check_alias=not allow_pickle)
    digest = {"model": version.sha256, "reference": version.reference_sha256}.get(pickle)
    hmac = store.signature(digest) if digest is not None else None
    if allow_pickle:
        return version, row, hmac
    if digest is not None and verify(digest, hmac) is not None:
        verdict = assess(store, row)
        if verdict.verdict == "tampered":
            raise tampered(row, verdict.detail, done)
        what = "Model" if pickle == "model" else "Reference sample of"
        check_signed(digest, hmac, f"{what} {version.name}/{version.version}")
    require_version(store, row, done)
    return version, row, hmac


def _open_artifact(store: Store, version: ModelVersion, sha256: str):
    try:
        return store.artifacts.open(sha256)
    except NotFoundError:
        raise NotFoundError(
            f"Model {version.name}/{version.version} is registered but its file "
            f"{sha256[:12]}… is missing from {store.artifacts.root}; it cannot be "
            "loaded. Register it again from its source."
        ) from None


def load_version(uri: str, *, store: Store | None = None,
                 allow_pickle: bool = False) -> tuple[ModelVersion, Any]:
    """The version a URI names and its model object, resolved and checked once (what
    ``load_model`` does, for callers that need the version's metadata too)."""
    store = _store(store)
    version, _, hmac = _checked(store, uri, "loaded", "model", allow_pickle)
    with _open_artifact(store, version, version.sha256) as handle:
        model = load_verified(handle, version.sha256, f"Model {version.name}/{version.version}",
                              signature=hmac, allow_pickle=allow_pickle,
                              size=version.size, chunks=chunks.stored(store, version.sha256))
    return version, model


def load_model(uri: str, *, store: Store | None = None, allow_pickle: bool = False) -> Any:
    """The model object of a registered version.

    Its bytes must match the sha256 recorded at registration, and that digest must carry
    this user's signature (made with the key in ``~/.jupyter_mlops/key``) before anything
    is unpickled; so must the version's row and the alias it was named by, so a store
    writer cannot point a name at other bytes the user once signed. A model from someone
    else's store needs ``allow_pickle=True`` (only for stores you trust: unpickling runs
    code) or ``trust_model`` once.

    Examples
    --------
    >>> model = load_model("cancer@champion")          # doctest: +SKIP
    >>> model = load_model("models:/cancer/3")         # doctest: +SKIP
    """
    return load_version(uri, store=store, allow_pickle=allow_pickle)[1]


def reference_sample(uri: str, *, store: Store | None = None, allow_pickle: bool = False) -> Any:
    """The bounded sample of training inputs kept with a version (None when there is none)."""
    store = _store(store)
    version, _, hmac = _checked(store, uri, "loaded", "reference", allow_pickle)
    if version.reference_sha256 is None:
        return None
    with _open_artifact(store, version, version.reference_sha256) as handle:
        return load_verified(handle, version.reference_sha256,
                             f"Reference sample of {version.name}/{version.version}",
                             signature=hmac, allow_pickle=allow_pickle,
                             chunks=chunks.stored(store, version.reference_sha256))


def _replay_of(store: Store, version: ModelVersion) -> tuple[str, Any, int] | None:
    """The replay script's sha256, folder and number of executions (None: no history)."""
    from .script import script_for, script_sha256, session_cwd

    if version.cell is None:
        return None
    try:
        source, kept = script_for(store, version)
    except (NotFoundError, ValidationError):
        return None
    return script_sha256(source), session_cwd(store, kept[-1].session_id), len(kept)


def trust_model(uri: str, *, store: Store | None = None) -> ModelVersion:
    """Vouch for a version that is not signed by you (from a colleague's store, or one
    made by an older jupyter_mlops), so ``load_model`` loads it without ``allow_pickle``.

    Only for stores you trust. It prints what it signs: which bytes are new to your key,
    and the version's row, replay script and alias. Bytes are checked against their
    recorded sha256 and never unpickled here. A version that is partly yours and partly
    not (bytes you signed, beside a swapped reference sample or a moved alias) is
    tampering: it is refused and nothing is signed.
    """
    store = _store(store)
    try:
        user_key(create=True)
    except KeyUnavailable as exc:
        raise UntrustedRecordError(f"Nothing was signed: {exc}.") from None
    version, row, alias_signature = _find(store, uri, check_alias=False)
    alias = parse_model_uri(uri)[2]
    # The bytes as they are now, checked against their content address; the digests of
    # their chunks are signed from these very bytes.
    pieces = {sha: chunks.chunk_digests(store.artifacts.read_verified(sha))
              for sha in (version.sha256, version.reference_sha256) if sha is not None}
    replay = _replay_of(store, version)
    plan = plan_trust(store, row, replay=replay,
                      alias=(alias, alias_signature) if alias is not None else None)
    if not (plan.digests or plan.row or plan.replay or plan.alias):
        print(f"{version.uri} is already signed by you; nothing was signed.")
        return version
    with store.write() as conn:
        for digest in plan.digests:
            write_signature(conn, digest, pieces[digest])
        if plan.row:
            conn.execute("UPDATE model_versions SET hmac = ? WHERE name = ? AND version = ?",
                         (sign_version(row, vouched=True), row.name, row.version))
        if plan.replay:
            conn.execute("UPDATE model_versions SET replay_sha256 = ?, replay_hmac = ? "
                         "WHERE name = ? AND version = ?",
                         (replay[0], sign_replay(row, replay[0], replay[1]), row.name,
                          row.version))
        if plan.alias:
            conn.execute("UPDATE aliases SET hmac = ? WHERE name = ? AND alias = ?",
                         (sign_alias(row.name, alias, row.version), row.name, alias))
    print("\n".join([f"Signed with your key, for {version.uri}:", *plan.lines]))
    return version


def list_models(*, store: Store | None = None):
    """Registered models as a DataFrame: name, latest version, aliases, created, updated."""
    import pandas as pd

    store = _store(store)
    rows = store.query(
        "SELECT m.name, max(v.version), count(v.version), m.created, max(v.created) "
        "FROM models m LEFT JOIN model_versions v USING (name) GROUP BY m.name ORDER BY m.name")
    aliases: dict[str, list[str]] = {}
    for name, alias, version in store.query(
            "SELECT name, alias, version FROM aliases ORDER BY name, alias"):
        aliases.setdefault(name, []).append(f"@{alias}={version}")
    frame = pd.DataFrame(rows, columns=["name", "latest_version", "versions", "created",
                                        "updated"])
    frame["aliases"] = [", ".join(aliases.get(n, [])) for n in frame["name"]]
    for column in ("created", "updated"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    from ..dashboards.frames import TextFrame
    return TextFrame(frame)


def model_versions(name: str, *, store: Store | None = None):
    """The versions of one model, newest first, as a DataFrame."""
    import pandas as pd

    store = _store(store)
    get_model_version(check_model_name(name), store=store)  # a clear error when unknown
    versions = [_version_from_row(store, row) for row in store.query(
        f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE name = ? ORDER BY version DESC",
        (name,))]
    frame = pd.DataFrame({
        "version": [v.version for v in versions],
        "aliases": [", ".join(v.aliases) for v in versions],
        "created": pd.to_datetime([v.created for v in versions], unit="s", utc=True),
        "class_name": [v.class_name for v in versions],
        "run_id": [v.run_id for v in versions],
        "sha256": [v.sha256 for v in versions],
        "size": [v.size for v in versions],
        "reference_rows": [v.reference_rows for v in versions],
    })
    from ..dashboards.frames import TextFrame
    return TextFrame(frame)


def lineage(uri: str, *, store: Store | None = None) -> dict[str, Any]:
    """Version → run → cell executions → datasets, as plain data."""

    flush_capture()
    store = _store(store)
    version = get_model_version(uri, store=store)
    run = storage.get_run(store, version.run_id) if version.run_id else None
    cells = storage.cells(store, "id = ?", (version.cell,)) if version.cell else []
    if run is not None:
        seen = {c.id for c in cells}
        cells += [c for c in run.cells if c.id not in seen]
    from .training_quality import training_quality

    return {"version": version, "run": run, "cells": cells, "datasets": version.datasets,
            "quality": training_quality(store, version.datasets)}


# -- writing ---------------------------------------------------------------------------

def signature_of(data: Any) -> dict[str, Any] | None:
    """Column names and dtypes of a DataFrame, or shape and dtype of an array."""
    kind = data_kind(data)
    if kind == "dataframe":
        return {"kind": "dataframe",
                "columns": [{"name": str(c), "dtype": str(t)} for c, t in data.dtypes.items()]}
    if kind == "series":
        return {"kind": "dataframe", "columns": [{"name": str(data.name), "dtype": str(data.dtype)}]}
    if kind == "ndarray":
        return {"kind": "ndarray", "dtype": str(data.dtype), "shape": [-1, *data.shape[1:]]}
    return None


def _signature_from_model(model: Any) -> dict[str, Any] | None:
    from ..tracking.frameworks import family_of

    family = family_of(model)
    declared = family.signature(model) if family is not None else None
    if declared is not None:
        return declared
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return {"kind": "dataframe", "columns": [{"name": str(n), "dtype": None} for n in names]}
    count = getattr(model, "n_features_in_", None)
    if isinstance(count, int):
        return {"kind": "ndarray", "dtype": None, "shape": [-1, count]}
    return None


def _library_versions(model: Any) -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    top = type(model).__module__.split(".")[0]
    for module in {top, "sklearn", "numpy", "pandas"}:
        loaded = sys.modules.get(module)
        if loaded is not None and getattr(loaded, "__version__", None):
            versions[module] = loaded.__version__
    return versions


def _find_in_namespace(fingerprint_value: str, name: str) -> Any:
    """The live object in the notebook whose content has this fingerprint, if any."""
    namespace = user_namespace()
    candidates = [namespace.get(name)] + [v for k, v in namespace.items() if k != name]
    for value in candidates:
        if value is not None and data_kind(value) is not None:
            info = fingerprint(value)
            if info and info["fingerprint"] == fingerprint_value:
                return value
    return None


def _run_model_artifacts(store: Store, run_id: str) -> list[tuple[str, str]]:
    return store.query("SELECT name, sha256 FROM artifacts WHERE run_id = ? AND kind = 'model' "
                       "ORDER BY id", (run_id,))


def register_model(
    model: Any,
    name: str,
    run_id: str | None = None,
    alias: str | None = None,
    *,
    reference: Any = None,
    variable: str | None = None,
    store: Store | None = None,
    allow_pickle: bool = False,
) -> ModelVersion:
    """Register ``model`` (or, when it is None, the model saved by a run) as a new version.

    A tuple of fitted scikit-learn objects, ``(dv, lr)``, is registered as one pipeline that
    predicts through them in order.

    Examples
    --------
    >>> version = register_model(model, "cancer", alias="candidate")   # doctest: +SKIP
    >>> version.uri
    'models:/cancer/1'
    """
    return register(model, name, run_id, alias, reference=reference, variable=variable,
                    store=store, allow_pickle=allow_pickle)


def register(model: Any, name: str, run_id: str | None = None, alias: str | None = None, *,
             reference: Any = None, variable: str | None = None, store: Store | None = None,
             allow_pickle: bool = False, signature: dict[str, Any] | None = None,
             notes: dict[str, str] | None = None) -> ModelVersion:
    """``register_model``, for callers that know more than the object says: the input
    ``signature`` its source declares (used when no reference sample is given) and
    ``notes`` kept with a new version (an import's origin), in the same transaction."""
    store = _store(store)
    check_model_name(name)
    if alias is not None:
        check_alias(alias)
    flush_capture()  # the cell executions the lineage points at
    if run_id is not None:
        run_id = storage.resolve_run_id(store, run_id)

    origin = None
    if model is None:
        if run_id is None:
            run_id, note = default_run(store)
            print(note)
        saved = _run_model_artifacts(store, run_id)
        if variable is not None:
            saved = [s for s in saved if s[0] == f"model/{variable}.pkl"]
        if len(saved) != 1:
            names = [s[0].removeprefix("model/").removesuffix(".pkl")
                     for s in _run_model_artifacts(store, run_id)]
            raise ValidationError(
                f"Run {run_id[:8]} saved {len(names)} models ({', '.join(names) or 'none'}); "
                "say which with variable=NAME (--var NAME), or register several as one "
                "pipeline that predicts through them in order: --var "
                f"{','.join(names) or 'A,B'}."
            )
        artifact_name, sha = saved[0]
        variable = artifact_name.removeprefix("model/").removesuffix(".pkl")
        model, size = _load_pickled(store, sha, f"Model {variable!r} of run {run_id[:8]}",
                                    allow_pickle)
        data, digest = None, sha  # already stored, under the digest just checked
    elif is_chain(model):
        model, variable, origin = chain_model(store, model, variable, run_id)
        data = dump(model)
    else:
        variable = variable or variable_of(model)
        origin = find_origin(store, model, variable) if run_id is None else None
        refuse_unfitted(model, f"Model {variable!r}" if variable else "The model", origin)
        data = dump(model)
    pieces = None
    if data is not None:
        (digest, pieces), size = chunks.digests(data), len(data)
    run_id, cell, variable = _lineage(store, digest, run_id, variable, origin)

    datasets = []
    if run_id is not None:
        datasets = [{"name": n, "role": r, "fingerprint": f} for n, r, f in store.query(
            "SELECT name, role, fingerprint FROM run_datasets WHERE run_id = ? "
            "ORDER BY role, name", (run_id,))]
    if reference is None:
        reference = _training_data(store, run_id, datasets, allow_pickle)
    elif data_kind(reference) is None:
        raise ValidationError(
            f"reference must be a DataFrame or an array of training inputs; got "
            f"{type(reference).__name__}."
        )
    else:
        info = fingerprint(reference)
        if not any(d["fingerprint"] == info["fingerprint"] for d in datasets):
            datasets.append({"name": "reference", "role": "reference",
                             "fingerprint": info["fingerprint"]})
    if reference is not None:
        from ..tracking.frameworks import plain_data

        reference = plain_data(reference)  # a DMatrix or lgb.Dataset: its rows
    if reference is not None:
        signature = signature_of(reference)
    elif signature is None:
        signature = _signature_from_model(model)
    reference_sha = reference_count = None
    if reference is not None:
        sample = sample_rows(reference)
        reference_sha, _ = store.artifacts.put_bytes(dump(sample, "Reference sample"))
        reference_count = sample.shape[0] if data_kind(sample) == "sparse" else len(sample)

    if data is not None:
        store.artifacts.put_bytes(data, digest)
    module = type(model).__module__
    now = time.time()
    with store.write() as conn:
        write_signature(conn, digest, pieces)
        if reference_sha is not None:
            write_signature(conn, reference_sha)
        conn.execute("INSERT OR IGNORE INTO models (name, created) VALUES (?, ?)", (name, now))
        existing = conn.execute("SELECT version FROM model_versions WHERE name = ? AND sha256 = ?",
                                (name, digest)).fetchone()
        if existing:
            version = existing[0]
            if cell is not None:
                _add_lineage(conn, store, name, version, (run_id, cell, variable, datasets))
        else:
            version = conn.execute("SELECT coalesce(max(version), 0) + 1 FROM model_versions "
                                   "WHERE name = ?", (name,)).fetchone()[0]
            values = (name, version, now, digest, size, SERIALIZER, module.split(".")[0],
                      f"{module}.{type(model).__qualname__}", run_id, cell, variable,
                      json.dumps(signature, allow_nan=False) if signature else None,
                      json.dumps(datasets, allow_nan=False),
                      reference_count, reference_sha)
            library_versions = json.dumps(_library_versions(model), allow_nan=False)
            row = _row_of(values + (library_versions, None, None, None))
            # Signed now, in the same transaction: the row, and the replay script cut from
            # the history as it stands (the same cut replay makes and checks later).
            replay = _replay_of(store, _version_from_row(store, values))
            conn.execute(
                f"INSERT INTO model_versions ({_VERSION_COLUMNS}, python_version, "
                "library_versions, hmac, replay_sha256, replay_hmac, user) VALUES (?, ?, ?, ?, "
                "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values + (sys.version.split()[0], library_versions, sign_version(row),
                          replay[0] if replay else None,
                          sign_replay(row, replay[0], replay[1]) if replay else None,
                          current_user()),
            )
            for key, value in (notes or {}).items():
                conn.execute("INSERT INTO version_notes (name, version, key, value, updated) "
                             "VALUES (?, ?, ?, ?, ?)", (name, version, key, value, now))
        if alias is not None:
            _set_alias(conn, name, version, alias)
    if reference is not None:
        from ..tracking.keeping import keep_training

        keep_training(store, reference, f"the training data of {name}/{version}",
                      {d["fingerprint"] for d in datasets})
    from .training_quality import check_training_quality

    check_training_quality(store, datasets, reference)
    return get_model_version(f"{name}/{version}", store=store)


def _lineage(store: Store, digest: str, run_id: str | None, variable: str | None,
             origin: Origin | None) -> tuple[str | None, int | None, str | None]:
    """The run, the cell execution and the variable a new version is registered with.

    A run named by the caller wins; else the execution that made the object (see
    ``origin``) and its run; an execution with no run of its own defers to a run that saved
    these very bytes, whose cell rebuilds them as well; else the active run.
    """
    if run_id is None and origin is not None and origin.run_id is not None:
        return origin.run_id, origin.cell, variable
    if run_id is None:
        found = store.query(
            "SELECT a.run_id, a.name FROM artifacts a JOIN runs r USING (run_id) "
            "WHERE a.sha256 = ? AND a.kind = 'model' ORDER BY r.start_time DESC LIMIT 1",
            (digest,))
        if found:
            run_id = found[0][0]
            variable = variable or found[0][1].removeprefix("model/").removesuffix(".pkl")
        elif origin is not None:
            return None, origin.cell, variable
        else:
            from ..tracking.runs import active_run

            active = active_run()
            run_id = active.run_id if active is not None else None
    cell = None
    if run_id is not None:
        rows = store.query("SELECT id FROM cells WHERE run_id = ? ORDER BY id DESC LIMIT 1",
                           (run_id,))
        cell = rows[0][0] if rows else None
    if cell is None and variable:
        fallback = find_origin(store, None, variable)
        cell = fallback.cell if fallback is not None else None
    return run_id, cell, variable


def _add_lineage(conn, store: Store, name: str, version: int, lineage: tuple) -> None:
    """Give a version registered here without lineage (from a script, or made where the
    history could not be read) the lineage a registration of the same bytes found: its
    row and replay script are signed again, as when registered."""
    (current,) = conn.execute(f"SELECT {_ROW_COLUMNS} FROM model_versions "
                              "WHERE name = ? AND version = ?", (name, version)).fetchall()
    if current[9] is not None or not registered_here(_row_of(current)):
        return  # it has lineage, or it is not this user's to rewrite
    run_id, cell, variable, datasets = lineage
    values = list(current[:15])
    values[8], values[9] = current[8] or run_id, cell
    values[10] = current[10] or variable
    if not json.loads(current[12]):
        values[12] = json.dumps(datasets, allow_nan=False)
    row = _row_of((*values, current[15], None, None, None))
    replay = _replay_of(store, _version_from_row(store, tuple(values)))
    conn.execute(
        "UPDATE model_versions SET run_id = ?, cell = ?, variable = ?, datasets = ?, hmac = ?, "
        "replay_sha256 = ?, replay_hmac = ? WHERE name = ? AND version = ?",
        (values[8], cell, values[10], values[12], sign_version(row),
         replay[0] if replay else None,
         sign_replay(row, replay[0], replay[1]) if replay else None, name, version))


def _training_data(store: Store, run_id: str | None, datasets: list[dict[str, Any]],
                   allow_pickle: bool) -> Any:
    """The run's ``train`` data: the live object in the notebook, else its stored sample."""
    for dataset in datasets:
        if dataset["role"] != "train":
            continue
        live = _find_in_namespace(dataset["fingerprint"], dataset["name"])
        if live is not None:
            return live
        rows = store.query("SELECT sha256 FROM artifacts WHERE run_id = ? AND name = ?",
                           (run_id, f"datasets/{dataset['name']}.sample.pkl"))
        if rows:
            return _load_pickled(store, rows[0][0], f"Sample of dataset {dataset['name']!r}",
                                 allow_pickle)[0]
    return None


def _load_pickled(store: Store, sha256: str, what: str, allow_pickle: bool) -> tuple[Any, int]:
    """A pickled artifact of a run, read and hashed once, and its size in bytes."""
    with store.artifacts.open(sha256) as handle:
        size = os.fstat(handle.fileno()).st_size
        return load_verified(handle, sha256, what, signature=store.signature(sha256),
                             allow_pickle=allow_pickle, size=size,
                             chunks=chunks.stored(store, sha256)), size


def _set_alias(conn, name: str, version: int, alias: str) -> None:
    conn.execute(
        "INSERT INTO aliases (name, alias, version, updated, hmac) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version, "
        "updated = excluded.updated, hmac = excluded.hmac",
        (name, alias, version, time.time(), sign_alias(name, alias, version)),
    )


def set_alias(name: str, version: int, alias: str, *, store: Store | None = None) -> ModelVersion:
    """Point ``name@alias`` at ``version`` (moving it if it pointed elsewhere)."""
    store = _store(store)
    check_alias(alias)
    target = get_model_version(f"{check_model_name(name)}/{int(version)}", store=store)
    with store.write() as conn:
        _set_alias(conn, name, target.version, alias)
    return get_model_version(f"{name}/{target.version}", store=store)


def delete_alias(name: str, alias: str, *, store: Store | None = None) -> None:
    """Remove ``name@alias``; the version itself stays."""
    store = _store(store)
    # Found without checking its signature: removing an alias never runs anything.
    _find(store, f"{check_model_name(name)}@{check_alias(alias)}", check_alias=False)
    with store.write() as conn:
        conn.execute("DELETE FROM aliases WHERE name = ? AND alias = ?", (name, alias))
