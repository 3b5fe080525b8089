"""Reference profiles: the reference set prepared once, kept, and reused by later reports.

A profile holds, per column, exactly what the tests read from the reference: the sorted
finite values of a numeric column, the distinct values and counts of any other column,
and how many rows and missing values there were. Histograms and bins are binary searches
in the sorted values at report time, so nothing else is needed. A report against a
profile skips reading, converting and sorting the reference, about half of its work.

``max_values`` keeps evenly spaced order statistics instead of every value (a quantile
sketch): smaller, and the statistics become estimates; the report says so per column.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError, shorten
from ..store import jsoncodec
from .kinds import Side, StoredSide, prepare_reference

# 2: the header through the one JSON codec. 1 (still read): a category key that is a float
# written as {"float": repr(key)}, any other non-JSON key as {"text": str(key)}.
PROFILE_FORMAT = 2
READ_FORMATS = (1, 2)


@dataclass
class DriftProfile:
    """A prepared reference set. Pass it as ``reference=`` to :func:`drift_report`.

    Examples
    --------
    >>> profile = drift_profile(train_df)                        # doctest: +SKIP
    >>> digest = profile.save()                                  # doctest: +SKIP
    >>> drift_report(load_drift_profile(digest), new_df).drifted        # doctest: +SKIP
    False
    """

    columns: dict[str, StoredSide]
    n_rows: int
    fingerprint: dict[str, Any] | None = None
    prediction: str | None = None
    target: str | None = None
    sampled: dict[str, int] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        fp = (self.fingerprint or {}).get("fingerprint", "")
        return (f"<DriftProfile {self.n_rows} rows × {len(self.columns)} columns"
                + (f" of data {fp[:12]}" if fp else "") + ">")

    def to_bytes(self) -> bytes:
        """An ``.npz`` file (no pickles): arrays per column plus a JSON header."""
        import numpy as np

        arrays: dict[str, Any] = {}
        entries = []
        for i, (name, stored) in enumerate(self.columns.items()):
            side = stored.side
            entry = {"name": name, "storage": stored.storage, "dtype": stored.dtype,
                     "n_rows": side.n_rows, "n_missing": side.n_missing,
                     "integer": side.integer}
            if side.values is not None:
                arrays[f"values_{i}"] = np.ascontiguousarray(side.values, dtype=np.float64)
            elif side.keys is not None:
                entry["keys"] = list(side.keys)
                arrays[f"counts_{i}"] = np.asarray(side.counts, dtype=np.int64)
            entries.append(entry)
        header = {"format": PROFILE_FORMAT, "n_rows": self.n_rows, "columns": entries,
                  "fingerprint": self.fingerprint, "prediction": self.prediction,
                  "target": self.target, "sampled": self.sampled}
        arrays["header"] = np.frombuffer(
            jsoncodec.dumps(header).encode("utf-8"), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> DriftProfile:
        import numpy as np

        try:
            archive = np.load(io.BytesIO(data), allow_pickle=False)
            header = jsoncodec.loads(archive["header"].tobytes().decode("utf-8"))
        except (ValueError, KeyError, OSError) as exc:
            raise ValidationError(f"These bytes are not a drift profile ({exc}).") from None
        if header.get("format") not in READ_FORMATS:
            raise ValidationError(
                f"Drift profile format {header.get('format')!r} is not one this jupyter_mlops "
                f"reads ({', '.join(map(str, READ_FORMATS))}); upgrade with pip install -U "
                "jupyter-mlops."
            )
        read_key = _format_1_key if header["format"] == 1 else None
        columns = {}
        for i, entry in enumerate(header["columns"]):
            values = keys = counts = None
            if f"values_{i}" in archive.files:
                values = archive[f"values_{i}"]
            elif "keys" in entry:
                keys = np.empty(len(entry["keys"]), dtype=object)
                keys[:] = [read_key(k) for k in entry["keys"]] if read_key else entry["keys"]
                counts = archive[f"counts_{i}"]
            side = Side(n_rows=entry["n_rows"], n_missing=entry["n_missing"], values=values,
                        keys=keys, counts=counts, integer=entry["integer"],
                        sampled_from=header.get("sampled", {}).get(entry["name"]))
            columns[entry["name"]] = StoredSide(entry["storage"], entry["dtype"], side)
        return cls(columns=columns, n_rows=header["n_rows"], fingerprint=header["fingerprint"],
                   prediction=header["prediction"], target=header["target"],
                   sampled=header.get("sampled", {}))

    def save(self, store=None) -> str:
        """Store the profile as an artifact; returns its sha256 (give it to load_drift_profile)."""
        from ..store.current import get_store

        digest, _size = (store or get_store()).artifacts.put_bytes(self.to_bytes())
        return digest


def _format_1_key(key: Any) -> Any:
    if isinstance(key, dict):
        return float(key["float"]) if "float" in key else key["text"]
    return key


def load_drift_profile(sha256: str, store=None) -> DriftProfile:
    """The profile stored under ``sha256`` (checked against its hash).

    Examples
    --------
    >>> profile = load_drift_profile(report.reference_profile)      # doctest: +SKIP
    """
    from ..store.current import get_store

    return DriftProfile.from_bytes((store or get_store()).artifacts.read_verified(sha256))


def build_profile(frame, columns: list, names: dict, *, fingerprint=None,
                  max_values: int | None = None, prediction: str | None = None,
                  target: str | None = None, extra: dict | None = None) -> DriftProfile:
    """Prepare ``columns`` of ``frame`` (plus ``extra`` Series, e.g. predictions)."""
    import numpy as np

    prepared: dict[str, StoredSide] = {}
    sampled: dict[str, int] = {}
    sources = [(names[c], frame[c]) for c in columns] + list((extra or {}).items())
    for name, series in sources:
        stored = prepare_reference(name, series)
        values = stored.side.values
        if max_values is not None and values is not None and values.size > max_values:
            picks = np.round(np.linspace(0, values.size - 1, max_values)).astype(np.intp)
            sampled[name] = int(values.size)
            side = stored.side
            stored = StoredSide(stored.storage, stored.dtype, Side(
                n_rows=max_values + side.n_missing, n_missing=side.n_missing,
                values=values[picks].copy(), integer=side.integer,
                sampled_from=int(values.size)))
        prepared[name] = stored
    return DriftProfile(columns=prepared, n_rows=len(frame), fingerprint=fingerprint,
                        prediction=prediction, target=target, sampled=sampled)


def check_max_values(max_values: Any) -> int | None:
    if max_values is None:
        return None
    if isinstance(max_values, bool) or not isinstance(max_values, int) or max_values < 2:
        raise ValidationError(
            f"max_values must be an integer of at least 2, or None to keep every value; got "
            f"{shorten(max_values)}."
        )
    return max_values


def drift_profile(reference: Any, columns: list[str] | None = None, *, model: Any = None,
                  target: str | None = None, max_values: int | None = None) -> DriftProfile:
    """Prepare a reference set once (sorted values, value counts) for later reports.

    Parameters
    ----------
    reference : pandas.DataFrame
        The reference (training) data.
    columns : list of str, optional
        Only these columns.
    model : fitted estimator, optional
        Its predictions on the reference are kept, for prediction drift.
    max_values : int, optional
        Keep at most this many evenly spaced order statistics per numeric column (exact
        when None, the default).

    Examples
    --------
    >>> profile = drift_profile(train_df)                  # doctest: +SKIP
    >>> drift_report(profile, new_df).n_drifted             # doctest: +SKIP
    0
    """
    from ..tracking.datasets import fingerprint
    from .inputs import PREDICTION_COLUMN, as_frame, model_features, predictions

    max_values = check_max_values(max_values)
    frame = as_frame(reference, "reference")
    if len(frame) == 0:
        raise ValidationError("The reference set has no rows; there is nothing to profile.")
    names = {c: str(c) for c in frame.columns}
    if columns is None:
        chosen = list(frame.columns)
    else:
        by_name = {str(c): c for c in frame.columns}
        missing = [str(c) for c in columns if str(c) not in by_name]
        if missing:
            raise ValidationError(f"Columns not in the reference set: {shorten(missing)}.")
        chosen = [by_name[str(c)] for c in columns]
    extra = {}
    if model is not None:
        if not callable(getattr(model, "predict", None)):
            raise ValidationError(
                f"model must be a fitted estimator with predict(); got {type(model).__name__}."
            )
        features = model_features(model, list(names.values()), target)
        by_name = {str(c): c for c in frame.columns}
        extra[PREDICTION_COLUMN] = predictions(model, frame, [by_name[f] for f in features],
                                                "reference")
    return build_profile(frame, chosen, names, fingerprint=fingerprint(frame),
                         max_values=max_values,
                         prediction=PREDICTION_COLUMN if extra else None,
                         target=None if target is None else str(target), extra=extra)
