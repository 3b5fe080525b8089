"""What drift comparisons accept as data, and the predictions of a model on it."""

from __future__ import annotations

from typing import Any

from ..errors import ValidationError, shorten

PREDICTION_COLUMN = "prediction"


def as_frame(data: Any, what: str):
    from ..cluster import is_dask

    if is_dask(data):  # a Dask DataFrame or Series: prepared partition by partition
        frame = data.to_frame() if getattr(data, "ndim", 2) == 1 else data
        if frame.columns.has_duplicates:
            raise ValidationError(f"The {what} set has duplicate column names; rename them.")
        return frame
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, pd.Series):
        frame = data.to_frame(name=data.name if data.name is not None else "value")
    elif isinstance(data, np.ndarray) and data.ndim in (1, 2):
        frame = pd.DataFrame(data.reshape(len(data), -1) if data.ndim == 1 else data)
        frame.columns = ["value"] if data.ndim == 1 else [str(i) for i in range(data.shape[1])]
    elif isinstance(data, dict):
        frame = pd.DataFrame(data)
    else:
        raise ValidationError(
            f"The {what} set must be a pandas DataFrame (or Series, 2-D array, dict of "
            f"columns); got {type(data).__name__}."
        )
    if frame.columns.has_duplicates:
        dup = frame.columns[frame.columns.duplicated()].tolist()
        raise ValidationError(
            f"The {what} set has duplicate column names {shorten(dup)}; rename them first."
        )
    return frame


def predictions(estimator, frame, features: list, what: str):
    import numpy as np
    import pandas as pd

    try:
        predicted = estimator.predict(frame[features])
    except Exception as exc:  # the user's model: any failure is theirs to read
        raise ValidationError(
            f"model.predict failed on the {what} set: {type(exc).__name__}: "
            f"{shorten(str(exc), 200)}"
        ) from None
    predicted = np.asarray(predicted)
    if predicted.ndim != 1 or len(predicted) != len(frame):
        raise ValidationError(
            f"model.predict returned shape {predicted.shape} on the {what} set; expected one "
            f"value per row ({len(frame)})."
        )
    series = pd.Series(predicted, name=PREDICTION_COLUMN)
    if hasattr(estimator, "classes_"):  # a classifier: labels are categories
        series = series.astype(object)
    return series


def model_features(estimator, names: list[str], target: str | None) -> list[str]:
    features = getattr(estimator, "feature_names_in_", None)
    if features is None:
        return [n for n in names if n != target]
    return [str(f) for f in features]
