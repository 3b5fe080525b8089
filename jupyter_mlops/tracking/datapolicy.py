"""The store's data policy: which bytes behind a fingerprint are kept, and how many.

Kept by default, so that the rows a model was trained on can be had back months later, but
capped so that a laptop does not fill up: a dataset larger than 256 MiB (in memory, or on
disk for a file) and anything past 2 GiB of kept data in the store are fingerprinted only,
with a one-line note. The policy is stored in the store (table ``data_settings``), so every
kernel and script writing to it follows the same one.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..errors import ValidationError, shorten

MiB = 2**20
GiB = 2**30


@dataclass(frozen=True)
class DataPolicy:
    """``keep``: keep the bytes of data runs read; ``max_dataset_bytes`` and
    ``max_store_bytes``: the caps above; ``track_files``: record the files a tracked cell
    reads; ``folders``: where such files may be, besides the working directory."""

    keep: bool = True
    max_dataset_bytes: int = 256 * MiB
    max_store_bytes: int = 2 * GiB
    track_files: bool = True
    folders: tuple[str, ...] = ()

    def describe(self) -> str:
        kept = "kept" if self.keep else "fingerprinted only"
        files = "recorded" if self.track_files else "not recorded"
        where = ", ".join(("the working directory", *self.folders))
        return (f"Data is {kept} (up to {_size(self.max_dataset_bytes)} a dataset, "
                f"{_size(self.max_store_bytes)} in all); files a tracked cell reads under "
                f"{where} are {files}.")


_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": MiB, "mb": MiB,
          "mib": MiB, "g": GiB, "gb": GiB, "gib": GiB, "t": 2**40, "tb": 2**40, "tib": 2**40}


def parse_size(value: int | float | str, name: str) -> int:
    """Bytes from ``1_000_000``, ``"256MB"`` or ``"2 GiB"`` (binary units either way)."""
    if isinstance(value, bool):
        raise ValidationError(f"{name} is a size such as 256MB; got {value!r}.")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
        if found is None or found.group(2).lower() not in _UNITS:
            raise ValidationError(
                f"{name} is a size such as 256MB or 2GB; got {shorten(value)}.")
        number, unit = float(found.group(1)), found.group(2).lower()
    if number < 0:
        raise ValidationError(f"{name} cannot be negative; got {value!r}.")
    return int(number * _UNITS[unit])


def _size(count: int) -> str:
    for unit, step in (("GiB", GiB), ("MiB", MiB), ("KiB", 2**10)):
        if count >= step:
            return f"{count / step:g} {unit}"
    return f"{count} bytes"


def data_policy(store: Any) -> DataPolicy:
    """The policy ``store`` holds (the default where it holds none)."""
    stored = dict(store.query("SELECT key, value FROM data_settings"))
    policy = DataPolicy()
    known = {f.name for f in fields(DataPolicy)}
    values = {k: json.loads(v) for k, v in stored.items() if k in known}
    if "folders" in values:
        values["folders"] = tuple(values["folders"])
    return replace(policy, **values)


def set_data_policy(
    keep: bool | None = None,
    *,
    max_dataset_bytes: int | str | None = None,
    max_store_bytes: int | str | None = None,
    track_files: bool | None = None,
    folders: list[str] | tuple[str, ...] | None = None,
    reset: bool = False,
) -> DataPolicy:
    """Change the current store's data policy; arguments left out keep their value.

    Examples
    --------
    >>> import jupyter_mlops as mlops
    >>> mlops.set_data_policy(max_dataset_bytes="1GB")            # doctest: +SKIP
    >>> mlops.set_data_policy(keep=False)  # fingerprints only      # doctest: +SKIP
    """
    import os

    from ..store.current import get_store

    store = get_store()
    policy = DataPolicy() if reset else data_policy(store)
    changes: dict[str, Any] = {}
    for name, value in (("keep", keep), ("track_files", track_files)):
        if value is not None:
            if not isinstance(value, bool):
                raise ValidationError(f"{name} is True or False; got {shorten(value)}.")
            changes[name] = value
    for name, value in (("max_dataset_bytes", max_dataset_bytes),
                        ("max_store_bytes", max_store_bytes)):
        if value is not None:
            changes[name] = parse_size(value, name)
    if folders is not None:
        if isinstance(folders, (str, os.PathLike)):
            folders = [folders]
        changes["folders"] = tuple(os.path.abspath(os.fspath(f)) for f in folders)
    policy = replace(policy, **changes)
    with store.write() as conn:
        if reset:
            conn.execute("DELETE FROM data_settings")
        conn.executemany(
            "INSERT OR REPLACE INTO data_settings (key, value) VALUES (?, ?)",
            [(k, json.dumps(list(v) if isinstance(v, tuple) else v, allow_nan=False))
             for k, v in asdict(policy).items() if reset or k in changes])
    return policy


def get_data_policy() -> DataPolicy:
    """The current store's data policy."""
    from ..store.current import get_store

    return data_policy(get_store())
