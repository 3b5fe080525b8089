"""Getting kept data back: the exact object behind a fingerprint, checked on the way out.

A reference names data the way a user remembers it: a fingerprint (or a unique prefix),
``RUN:name`` (a variable or a file path a run read, ``RUN`` an id or a prefix), or
``NAME@ALIAS:role`` / ``NAME/3:role`` (a registered version's data; role ``train`` when
left out). A DataFrame comes back from its Parquet chunks with its index and dtypes, an
array from its ``.npy``, a file as its bytes. The object's fingerprint is computed again and
compared with the one recorded, so data that no longer matches is refused with the
difference named (a chunk changed on disk by its sha256); that end-to-end check makes a
second pass over each chunk's sha256 redundant, so chunks are hashed only with
``verify=False`` (their sha256 then being the only check) or when one fails to decode.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ..errors import IntegrityError, NotFoundError, ValidationError, shorten
from .keptdata import KeptRef, changed_chunk, read_kept

_FINGERPRINT_RE = re.compile(r"^[0-9a-f]{6,32}\Z")


def resolve(store: Any, ref: str) -> KeptRef:
    """The dataset a reference names."""
    from . import storage

    if not isinstance(ref, str) or not ref.strip():
        raise ValidationError(
            f"A dataset is named by a fingerprint, RUN:name, RUN:path or NAME@ALIAS:role; "
            f"got {shorten(ref)}.")
    ref = ref.strip()
    if _FINGERPRINT_RE.fullmatch(ref):
        rows = store.query("SELECT fingerprint, kind FROM datasets WHERE fingerprint LIKE ?",
                           (ref + "%",))
        if len(rows) == 1:
            return KeptRef(*rows[0])
        if len(rows) > 1:
            raise ValidationError(f"Fingerprint prefix {ref!r} matches several datasets; give "
                                  "more characters.")
        if len(ref) == 32:
            raise NotFoundError(f"No dataset with fingerprint {ref!r} in this store.")
    head, sep, name = ref.partition(":")
    if not sep or not name:
        raise ValidationError(
            f"Dataset {ref!r} is not a fingerprint; name one as RUN:name, RUN:path or "
            "NAME@ALIAS:role (the part after the colon says which of the run's data).")
    if "@" in head or "/" in head:
        from ..registry.versions import get_model_version

        version = get_model_version(head, store=store)
        for dataset in version.datasets:
            if name in (dataset["role"], dataset["name"]):
                found = _lookup(store, dataset["fingerprint"])
                return KeptRef(found.fingerprint, found.kind, dataset["name"], version.run_id)
        roles = sorted({d["role"] for d in version.datasets}) or ["none"]
        raise NotFoundError(f"Model version {head} has no {name!r} data; it has: "
                            f"{', '.join(roles)}.")
    run_id = storage.resolve_run_id(store, head)
    candidates = [name]
    if name.startswith(("/", ".", "~")) or os.sep in name:
        candidates.append(_display(os.path.expanduser(name)))
    for candidate in candidates:
        rows = store.query(
            "SELECT rd.name, rd.role, d.fingerprint, d.kind FROM run_datasets rd "
            "JOIN datasets d USING (fingerprint) WHERE rd.run_id = ? AND (rd.name = ? "
            "OR rd.role = ?) ORDER BY rd.name = ? DESC, rd.role", (run_id, candidate, candidate,
                                                                  candidate))
        if rows:
            found_name, _, fingerprint, kind = rows[0]
            return KeptRef(fingerprint, kind, found_name, run_id)
    known = [n for (n,) in store.query("SELECT name FROM run_datasets WHERE run_id = ? "
                                        "ORDER BY name", (run_id,))]
    raise NotFoundError(f"Run {run_id[:8]} read no data named {name!r}; it read: "
                        f"{', '.join(known) or 'nothing'}.")


def _display(path: str) -> str:
    from .fileread import display_path

    return display_path(os.path.abspath(path))


def _lookup(store: Any, fingerprint: str) -> KeptRef:
    rows = store.query("SELECT fingerprint, kind FROM datasets WHERE fingerprint = ?",
                       (fingerprint,))
    if not rows:
        raise NotFoundError(f"No dataset with fingerprint {fingerprint!r} in this store.")
    return KeptRef(*rows[0])


def check_fingerprint(store: Any, found: KeptRef, value: Any) -> None:
    """Refuse ``value`` unless it has the fingerprint recorded, naming the difference."""
    from .datasets import fingerprint

    if found.kind == "file":
        return  # its sha256 was checked as it was read
    info = fingerprint(value)
    if info is not None and info["fingerprint"] == found.fingerprint:
        return
    changed_chunk(store, found)
    row = store.query("SELECT shape, columns, dtypes FROM datasets WHERE fingerprint = ?",
                      (found.fingerprint,))[0]
    shape, columns, dtypes = (None if v is None else json.loads(v) for v in row)
    if info is None:
        difference = f"it came back as a {type(value).__name__}"
    elif info["shape"] != shape:
        difference = f"its shape is {info['shape']}, recorded {shape}"
    elif info["columns"] != columns:
        difference = f"its columns are {info['columns']}, recorded {columns}"
    elif info["dtypes"] != dtypes:
        changed = [f"{c}: {a} (recorded {b})" for c, a, b in zip(
            columns or [], info["dtypes"], dtypes or []) if a != b]
        difference = "dtypes differ: " + "; ".join(changed or [str(info["dtypes"])])
    else:
        difference = "same shape, columns and dtypes, but values or index differ"
    raise IntegrityError(
        f"The data kept for {found.name or found.fingerprint[:12]} no longer matches its "
        f"fingerprint {found.fingerprint[:12]} ({difference}); it was not returned.")


def get_dataset(ref: str, *, to: str | os.PathLike[str] | None = None,
                verify: bool = True) -> Any:
    """The exact data a run or model version read: a DataFrame (dtypes and index kept), a
    Series, an array, or a file's bytes; with ``to=PATH`` written to PATH instead (a file
    as it was; a DataFrame as Parquet, or CSV for a ``.csv`` PATH; an array as ``.npy``)
    and PATH returned.

    Examples
    --------
    >>> import jupyter_mlops as mlops
    >>> train = mlops.get_dataset("churn@champion:train")        # doctest: +SKIP
    >>> mlops.get_dataset("3f2a9c01:data/train.csv", to="old.csv")  # doctest: +SKIP
    """
    from ..store.current import get_store

    store = get_store()
    found = resolve(store, ref)
    value = read_kept(store, found, check_chunks=not verify)
    if verify:
        check_fingerprint(store, found, value)
    if to is None:
        return value
    return write_to(value, found, Path(to))


def write_to(value: Any, found: KeptRef, target: Path) -> Path:
    """``value`` written to ``target`` through a temporary file renamed into place."""
    import tempfile

    target = target.expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            if found.kind == "file":
                out.write(value)
            elif found.kind == "ndarray":
                import numpy as np

                np.save(out, value, allow_pickle=False)
            elif target.suffix.lower() == ".csv":
                value.to_csv(out)
            else:
                frame = value.to_frame() if found.kind == "series" else value
                frame.to_parquet(out)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target
