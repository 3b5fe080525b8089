"""The one gate through which stored objects are turned back into Python objects.

Unpickling runs code, so nothing else in jupyter_mlops calls ``pickle.loads``. Bytes reach
it only after two checks: their sha256 matches the digest the store recorded (nothing
changed the file), and that digest carries this user's signature (``signing``: the bytes
were pickled by this user's own jupyter_mlops, not planted in the store together with a
matching digest). Bytes that fail the second check load only with ``allow_pickle=True``.

A model file is read once: its sha256 is computed chunk by chunk as the chunks arrive (a
helper thread hashes while the next chunk is read; hashlib releases the GIL), into one
private buffer that is unpickled after the digest matched. The bytes unpickled are exactly
the bytes hashed: nothing is read from the file again (a memory map would let a writer
change pages between the check and the unpickling).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import queue
import threading
from typing import Any, BinaryIO

from ..errors import IntegrityError, ModelSerializationError, UntrustedPickleError
from .signing import verify

SERIALIZER = "pickle"
PROTOCOL = 5
_CHUNK = 4 << 20
# Below this a helper thread costs more than it saves.
_OVERLAP_FROM = 16 << 20


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


def _read_hashed(handle: BinaryIO, size: int) -> tuple[bytearray, str]:
    """Up to ``size`` bytes of ``handle`` in a buffer of their own, and their sha256,
    computed in the same pass as the read."""
    buffer = bytearray(size)
    hasher = hashlib.sha256()
    with memoryview(buffer) as view:
        if size < _OVERLAP_FROM:
            done = _fill(handle, view, 0, size)
            hasher.update(view[:done])
        else:
            done = _fill_hashing(handle, view, size, hasher)
    if done < size:  # the file shrank since fstat: keep only what was read and hashed
        del buffer[done:]
    return buffer, hasher.hexdigest()


def _fill(handle: BinaryIO, view: memoryview, start: int, stop: int) -> int:
    done = start
    while done < stop:
        count = handle.readinto(view[done:stop])
        if not count:
            break
        done += count
    return done


def _fill_hashing(handle: BinaryIO, view: memoryview, size: int, hasher: Any) -> int:
    chunks: queue.SimpleQueue = queue.SimpleQueue()

    def consume() -> None:
        while (chunk := chunks.get()) is not None:
            hasher.update(chunk)

    thread = threading.Thread(target=consume, name="jupyter_mlops-sha256", daemon=True)
    thread.start()
    done = 0
    try:
        while done < size:
            end = _fill(handle, view, done, min(done + _CHUNK, size))
            if end == done:
                break
            chunks.put(view[done:end])
            done = end
    finally:
        chunks.put(None)
        thread.join()
    return done


def load_verified(source: bytes | bytearray | BinaryIO, expected_sha256: str, what: str, *,
                  signature: str | None, allow_pickle: bool = False,
                  size: int | None = None) -> Any:
    """Unpickle ``source`` (bytes, or an open binary file read once) only if it hashes to
    ``expected_sha256`` and that digest is signed by this user (or the caller opted in with
    ``allow_pickle``). A file whose length is not ``size`` is refused before it is read."""
    if not allow_pickle:
        check_signed(expected_sha256, signature, what)
    if isinstance(source, (bytes, bytearray)):
        data, actual = source, hashlib.sha256(source).hexdigest()
    else:
        length = os.fstat(source.fileno()).st_size
        if size is not None and length != size:
            raise IntegrityError(
                f"{what} was changed after it was stored: its file holds {length} bytes, the "
                f"store recorded {size}. It was not loaded. Register the model again from its "
                "source."
            )
        data, actual = _read_hashed(source, length)
    if actual != expected_sha256:
        raise IntegrityError(
            f"{what} was changed after it was stored: its sha256 is {actual[:12]}…, the "
            f"store recorded {str(expected_sha256)[:12]}…. It was not loaded. Register the "
            "model again from its source."
        )
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
