"""Signed sha256 digests of a large file's 4 MB chunks, so a load checks it on two cores.

A file's sha256 is one chain: one core computes it, and for a 50 MB model that is most of
a load. The digests of its chunks can be checked by two threads at once (``preadv`` and
hashlib release the GIL). They are computed when the bytes are stored, from the very bytes
whose sha256 is the file's content address, and signed with the user's key as a statement
binding them to that sha256, so a store writer can neither change them nor move them to
other bytes. A load that trusts them reads each chunk into memory of its own and checks it
there: every byte unpickled matched the signed digest of its chunk, and the whole-file
sha256 is not needed. Files stored without them (small ones, or by an older
jupyter_mlops) are checked whole, as before.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO

from .signing import sign_statement, verify_statement

CHUNK_SIZE = 4 << 20
# Below this a whole-file sha256 takes a few milliseconds; chunks would only add rows.
CHUNKED_FROM = 16 << 20
_DIGEST = 32
_THREADS = min(2, os.cpu_count() or 1)
_KIND = "chunk digests"


@dataclass(frozen=True)
class Chunks:
    """The sha256 of each ``size``-byte chunk of a file (the last may be shorter), as one
    hex string, and the stored signature binding them to the file's sha256."""

    size: int
    digests: str
    signature: str | None = None

    @property
    def count(self) -> int:
        return len(self.digests) // (2 * _DIGEST)

    def covers(self, length: int) -> bool:
        """Whether a file of ``length`` bytes has exactly these chunks."""
        return self.size > 0 and self.count == -(-length // self.size)

    def sign(self, sha256: str) -> str | None:
        return sign_statement(_KIND, [sha256, self.size, self.digests])

    def verify(self, sha256: str) -> str | None:
        """None when this user signed these digests for the file ``sha256``, else why not."""
        if (not isinstance(self.size, int) or not isinstance(self.digests, str)
                or len(self.digests) % (2 * _DIGEST)):
            return "they are not a list of digests jupyter_mlops writes"
        return verify_statement(_KIND, [sha256, self.size, self.digests], self.signature)


def digests(data: bytes) -> tuple[str, Chunks | None]:
    """The sha256 of ``data`` and, when it is large, the digests of its chunks: the two
    computed at once, on two threads."""
    if len(data) < CHUNKED_FROM:
        return hashlib.sha256(data).hexdigest(), None
    whole: list[str] = []
    helper = threading.Thread(target=lambda: whole.append(hashlib.sha256(data).hexdigest()),
                              name="jupyter_mlops-sha256", daemon=True)
    helper.start()
    chunks = chunk_digests(data)
    helper.join()
    return whole[0], chunks


def chunk_digests(data: bytes) -> Chunks | None:
    """The digests of the chunks of ``data`` (not yet signed); None when it is small."""
    if len(data) < CHUNKED_FROM:
        return None
    with memoryview(data) as view:
        return Chunks(CHUNK_SIZE, b"".join(
            hashlib.sha256(view[start:start + CHUNK_SIZE]).digest()
            for start in range(0, len(view), CHUNK_SIZE)).hex())


def stored(store: Any, sha256: str) -> Chunks | None:
    """The chunk digests ``store`` (a ``Store``, which signs them: ``write_signature``)
    records for ``sha256``, unchecked (None: none)."""
    rows = store.query("SELECT chunk_size, chunks, chunks_hmac FROM signatures "
                       "WHERE sha256 = ? AND chunks IS NOT NULL", (sha256,))
    return Chunks(*rows[0]) if rows else None


def read_checked(source: BinaryIO, view: memoryview, chunks: Chunks) -> tuple[int, bool] | None:
    """Read the file ``source`` into ``view`` (as long as the file the chunks cover), each
    chunk checked in ``view`` against its digest, by two threads that take the next chunk
    as they finish one. Returns None when every chunk matched, else the first chunk found
    wrong and whether it was cut short (the file shrank); that stops both threads."""
    expected = bytes.fromhex(chunks.digests)
    fd = source.fileno()
    next_chunk = itertools.count()  # next() on it is atomic under the GIL
    wrong: list[tuple[int, bool]] = []
    errors: list[BaseException] = []
    positioned = threading.Lock()  # for reads without preadv, which move the file offset

    def check() -> None:
        try:
            for index in next_chunk:
                start = index * chunks.size
                if start >= len(view) or wrong:
                    return
                chunk = view[start:start + chunks.size]
                if _read_at(source, fd, chunk, start, positioned) < len(chunk):
                    wrong.append((index, True))
                elif (hashlib.sha256(chunk).digest()
                      != expected[index * _DIGEST:(index + 1) * _DIGEST]):
                    wrong.append((index, False))
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            errors.append(exc)
            wrong.append((-1, False))

    helpers = [threading.Thread(target=check, name="jupyter_mlops-chunks", daemon=True)
               for _ in range(_THREADS - 1)]
    for helper in helpers:
        helper.start()
    check()
    for helper in helpers:
        helper.join()
    if errors:
        raise errors[0]
    return min(wrong) if wrong else None


def _read_at(source: BinaryIO, fd: int, view: memoryview, offset: int,
             positioned: threading.Lock) -> int:
    """Fill ``view`` from ``offset`` of the file; fewer bytes only at its end."""
    done = 0
    while done < len(view):
        if hasattr(os, "preadv"):
            count = os.preadv(fd, [view[done:]], offset + done)
        else:
            with positioned:
                source.seek(offset + done)
                count = source.readinto(view[done:])
        if not count:
            break
        done += count
    return done
