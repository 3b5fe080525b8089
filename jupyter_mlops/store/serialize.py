"""The one gate through which stored objects are turned back into Python objects.

Unpickling runs code, so nothing else in jupyter_mlops calls ``pickle.loads``. Bytes reach
it only after two checks: their sha256 matches the digest the store recorded (nothing
changed the file), and that digest carries this user's signature (``signing``: the bytes
were pickled by this user's own jupyter_mlops, not planted in the store together with a
matching digest). Bytes that fail the second check load only with ``allow_pickle=True``.
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Any

from ..errors import IntegrityError, ModelSerializationError, UntrustedPickleError
from .signing import verify

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


def load_verified(data: bytes, expected_sha256: str, what: str, *,
                  signature: str | None, allow_pickle: bool = False) -> Any:
    """Unpickle ``data`` only if it hashes to ``expected_sha256`` and that digest is signed
    by this user (or the caller opted in with ``allow_pickle``)."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise IntegrityError(
            f"{what} was changed after it was stored: its sha256 is {actual[:12]}…, the "
            f"store recorded {expected_sha256[:12]}…. It was not loaded. Register the model "
            "again from its source."
        )
    if not allow_pickle:
        check_signed(expected_sha256, signature, what)
    return pickle.loads(data)  # noqa: S301 - hashed, and signed by this user or opted in


def check_signed(sha256: str, signature: str | None, what: str) -> None:
    """Refuse pickled bytes this user did not sign, before anything unpickles them."""
    reason = verify(sha256, signature)
    if reason is not None:
        raise UntrustedPickleError(
            f"{what} was not loaded: {reason}. Unpickling runs any code the file holds; if "
            "you trust where this store came from, pass allow_pickle=True, or vouch for it "
            "once with trust_model() (jupyter-mlops trust NAME/VERSION)."
        )
