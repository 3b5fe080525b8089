"""The one gate through which stored objects are turned back into Python objects.

Unpickling runs code, so nothing else in jupyter_mlops calls ``pickle.loads``: bytes reach
it only after their sha256 matched the digest the store recorded when they were written.
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Any

from .errors import IntegrityError, ModelSerializationError

SERIALIZER = "pickle"
PROTOCOL = 5


def dump(obj: Any, what: str = "Model") -> bytes:
    """Pickle ``obj``; an object that cannot be pickled is refused, naming its type."""
    try:
        return pickle.dumps(obj, protocol=PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - pickling fails with many exception types
        raise ModelSerializationError(
            f"{what} of type {type(obj).__module__}.{type(obj).__qualname__} cannot be "
            f"serialized with pickle ({type(exc).__name__}: {exc}). Register an object that "
            "pickles (a fitted estimator, a Pipeline), not one holding locks, open files, "
            "lambdas or local functions. Nothing was stored."
        ) from None


def load_verified(data: bytes, expected_sha256: str, what: str) -> Any:
    """Unpickle ``data`` only if it hashes to ``expected_sha256``."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise IntegrityError(
            f"{what} was changed after it was stored: its sha256 is {actual[:12]}…, the "
            f"store recorded {expected_sha256[:12]}…. It was not loaded. Register the model "
            "again from its source."
        )
    return pickle.loads(data)  # noqa: S301 - the bytes match the digest written by us
