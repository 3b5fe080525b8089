"""The one gate through which stored objects are turned back into Python objects.

Unpickling runs code, so nothing else in jupyter_mlops calls ``pickle.loads``. Bytes reach
it only after two checks: their sha256 matches the digest the store recorded (nothing
changed the file), and that digest carries this user's signature (``signing``: the bytes
were pickled by this user's own jupyter_mlops, not planted in the store together with a
matching digest). Bytes that fail the second check load only with ``allow_pickle=True``.

A stored file is read once, into memory of this process's own: its sha256 is computed as
the chunks arrive (for a large file a helper thread hashes while the next chunk is read;
hashlib releases the GIL), and the bytes unpickled are exactly the bytes hashed, never
read from the file again. A large file stored with signed digests of its chunks
(``chunks``) is read and checked chunk by chunk by two threads, each chunk checked in
that same memory. A map of the file would let a writer change pages between the
check and the unpickling; a large buffer is an anonymous private mapping instead: no file
behind it, copied on write by a fork, its pages (huge ones where the kernel offers them)
faulted in by the read itself rather than cleared by Python first.

The file is a plain protocol-5 pickle (``pickle.load`` and MLflow read it as it is) that
may end, after its STOP, with an index of where the large array buffers lie inside it
(those numpy hands to the pickler as ``PickleBuffer``: such an object takes back any
buffer, so a plain ``bytes`` or ``bytearray`` attribute is never indexed and comes back as
its own type). The index is part of the hashed and signed bytes; after the checks the
loader hands those buffers to the unpickler as out-of-band buffers, slices of the checked
memory, so a 50 MB array is not copied a second time. A file without an index (written
by an older jupyter_mlops) loads as before.

Nothing is remembered between loads: a digest checked once and kept by (inode, mtime,
size) would let anyone who can write the file change it in place under the same key (a
write through a shared mapping need not move mtime, and timestamps are coarser than a
write), so every load hashes every byte it unpickles.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import pickle
import queue
import struct
import threading
from typing import Any, BinaryIO

from ..errors import IntegrityError, ModelSerializationError, UntrustedPickleError
from .chunks import Chunks, read_checked
from .signing import verify

SERIALIZER = "pickle"
PROTOCOL = 5
_CHUNK = 1 << 20
# Below this a helper thread and a mapping cost more than they save.
_OVERLAP_FROM = 16 << 20
# The index: (offset, length) of each buffer, their count, then this mark. A pickle ends
# with STOP ("."), so a file without an index never ends with the mark.
_INDEX_MARK = b"MLOPSIDX"
_ENTRY = struct.Struct("<QQ")
_TAIL = struct.Struct("<Q8s")
_BYTEARRAY8 = 0x96  # the opcode before a writable buffer pickled in-band, then its length
_HEADER = 1 + 8
_ALIGN = 64
_NEXT_BUFFER = b"\x97"


class _Collector:
    """The pickler's output file: keeps the pieces it is given, and where each writable
    buffer an object handed over as a ``PickleBuffer`` begins (the pickler writes one of
    64 KB or more as its own piece, right after the piece that ends with its opcode and
    length). Each such buffer is moved to a multiple of 64 bytes from the start, so the
    arrays loaded from slices of the file are aligned as arrays of their own are."""

    def __init__(self) -> None:
        self.pieces: list[Any] = []
        self.size = 0
        self.buffers: list[tuple[int, int]] = []

    def write(self, piece: Any) -> int:
        if isinstance(piece, pickle.PickleBuffer):
            piece = piece.raw()  # as flat bytes, whatever the array's order
            if not piece.readonly and self._after_header(piece.nbytes):
                self._align()
                self.buffers.append((self.size, piece.nbytes))
        with memoryview(piece) as view:
            length = view.nbytes
        self.pieces.append(piece)
        self.size += length
        return length

    def _after_header(self, length: int) -> bool:
        last = self.pieces[-1] if self.pieces else b""
        return (len(last) >= _HEADER and last[-_HEADER] == _BYTEARRAY8
                and last[-_HEADER + 1:] == length.to_bytes(8, "little"))

    def _align(self) -> None:
        """Put opcodes that change nothing before the last header, to align what follows."""
        gap = -self.size % _ALIGN
        if gap == 1:
            gap += _ALIGN  # the shortest pair of such opcodes is 2 bytes
        if gap:
            last = memoryview(self.pieces[-1])
            self.pieces[-1:] = [last[:-_HEADER], _padding(gap), last[-_HEADER:]]
            self.size += gap


def _padding(length: int) -> bytes:
    """``length`` bytes (2 or more) of opcodes that leave the unpickler as it was: push an
    int and pop it (3 bytes) for an odd length, push None and pop it (2 bytes) for the rest."""
    odd = b"K\x000" if length % 2 else b""
    return odd + b"N0" * ((length - len(odd)) // 2)


def dump(obj: Any, what: str = "Model") -> bytes:
    """Pickle ``obj``, followed by the index of its large buffers when it has any; an
    object that cannot be pickled is refused, naming its type."""
    out = _Collector()
    try:
        pickle.Pickler(out, protocol=PROTOCOL).dump(obj)
    except Exception as exc:  # noqa: BLE001 - pickling fails with many exception types
        raise ModelSerializationError(
            f"{what} of type {type(obj).__module__}.{type(obj).__qualname__} cannot be "
            f"serialized with pickle ({type(exc).__name__}: {exc}). Register an object that "
            "pickles (a fitted estimator, a Pipeline), not one holding locks, open files, "
            "lambdas or local functions. Nothing was stored."
        ) from None
    if out.buffers:
        out.pieces += [_ENTRY.pack(*entry) for entry in out.buffers]
        out.pieces.append(_TAIL.pack(len(out.buffers), _INDEX_MARK))
    return b"".join(out.pieces)


def _buffer_index(view: memoryview) -> tuple[int, list[tuple[int, int]]] | None:
    """Where the pickle of ``view`` ends and where its indexed buffers lie; None when it
    has no index, or one that does not describe the pickle before it."""
    if len(view) < _TAIL.size or view[-len(_INDEX_MARK):] != _INDEX_MARK:
        return None
    count = _TAIL.unpack(view[-_TAIL.size:])[0]
    end = len(view) - _TAIL.size - count * _ENTRY.size
    if count < 1 or end < 0:
        return None
    entries = list(_ENTRY.iter_unpack(view[end:len(view) - _TAIL.size]))
    done = 0
    for offset, length in entries:
        start = offset - _HEADER
        if (start < done or offset + length > end or view[start] != _BYTEARRAY8
                or view[start + 1:offset] != length.to_bytes(8, "little")):
            return None
        done = offset + length
    return end, entries


def _unpickle(data: bytes | bytearray | mmap.mmap) -> Any:
    """Unpickle checked bytes; the buffers their index names become out-of-band buffers
    (slices of ``data``, which they keep alive) instead of copies."""
    view = memoryview(data)
    index = _buffer_index(view)
    if index is None:
        return pickle.loads(view)  # noqa: S301 - hashed, and signed or opted in
    end, entries = index
    pieces, buffers, done = [], [], 0
    for offset, length in entries:
        pieces += (view[done:offset - _HEADER], _NEXT_BUFFER)
        buffers.append(view[offset:offset + length])
        done = offset + length
    pieces.append(view[done:end])
    return pickle.loads(b"".join(pieces), buffers=buffers)  # noqa: S301 - as above


def _private_buffer(size: int) -> bytearray | mmap.mmap:
    """Writable memory of this process only, for ``size`` bytes about to be read."""
    if size < _OVERLAP_FROM or not hasattr(mmap, "MAP_PRIVATE"):
        return bytearray(size)
    buffer = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        buffer.madvise(mmap.MADV_HUGEPAGE)  # 2 MB pages: 25 faults for 50 MB, not 12,000
    return buffer


def _read_hashed(handle: BinaryIO, size: int) -> tuple[bytearray | mmap.mmap, str, int]:
    """``size`` bytes of ``handle`` in a buffer of their own, their sha256 computed in the
    same pass as the read, and how many bytes there were (fewer if the file shrank)."""
    buffer = _private_buffer(size)
    hasher = hashlib.sha256()
    with memoryview(buffer) as view:
        if size < _OVERLAP_FROM:
            done = _fill(handle, view, 0, size)
            hasher.update(view[:done])
        else:
            done = _fill_hashing(handle, view, size, hasher)
    return buffer, hasher.hexdigest(), done


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


def load_verified(source: BinaryIO, expected_sha256: str, what: str, *,
                  signature: str | None, allow_pickle: bool = False,
                  size: int | None = None, chunks: Chunks | None = None) -> Any:
    """Unpickle the file ``source`` (read once) only if it hashes to ``expected_sha256``
    and that digest is signed by this user (or the caller opted in with ``allow_pickle``).
    A file whose length is not ``size`` is refused before it is read. With ``chunks`` (as
    the store recorded them) signed by this user for ``expected_sha256``, the file is
    checked chunk by chunk on two threads instead; chunks not signed by this user are
    tampering, unless ``allow_pickle`` trusts the store, which checks the whole file."""
    if not allow_pickle:
        check_signed(expected_sha256, signature, what)
    chunks = _trusted(chunks, expected_sha256, what, allow_pickle)
    length = os.fstat(source.fileno()).st_size
    if size is not None and length != size:
        raise _changed(what, f"its file holds {length} bytes, the store recorded {size}")
    if chunks is None:
        data, actual, done = _read_hashed(source, length)
        if done != length:
            raise _shrank(what, length, done)
        if actual != expected_sha256:
            raise _changed(what, f"its sha256 is {actual[:12]}…, the store recorded "
                                 f"{str(expected_sha256)[:12]}…")
        return _unpickle(data)
    if not chunks.covers(length):
        raise _changed(what, f"its file holds {length} bytes, more or fewer than the "
                             f"{chunks.count} chunks signed for {expected_sha256[:12]}…")
    data = _private_buffer(length)
    with memoryview(data) as view:
        wrong = read_checked(source, view, chunks)
    if wrong is not None:
        index, short = wrong
        if short:
            raise _shrank(what, length, index * chunks.size)
        raise _changed(what, f"its chunk {index + 1} of {chunks.count} (from byte "
                             f"{index * chunks.size}) does not match the digest signed for "
                             f"{expected_sha256[:12]}…")
    return _unpickle(data)


def _trusted(chunks: Chunks | None, sha256: str, what: str, allow_pickle: bool
             ) -> Chunks | None:
    """``chunks`` if this user signed them for ``sha256``; None if there are none, or if
    they are not signed but ``allow_pickle`` trusts the store."""
    if chunks is None:
        return None
    reason = chunks.verify(sha256)
    if reason is None:
        return chunks
    if allow_pickle:
        return None
    raise UntrustedPickleError(
        f"{what} was not loaded: its bytes carry your signature, but the digests of their "
        f"chunks recorded beside it do not ({reason}): the store was changed by someone "
        "else. Register the model again from its source."
    )


def _shrank(what: str, length: int, done: int) -> IntegrityError:
    return _changed(what, f"its file shrank from {length} to {done} bytes while it was read")


def _changed(what: str, how: str) -> IntegrityError:
    return IntegrityError(
        f"{what} was changed after it was stored: {how}. It was not loaded. Register the "
        "model again from its source."
    )


def check_signed(sha256: str, signature: str | None, what: str) -> None:
    """Refuse pickled bytes this user did not sign, before anything unpickles them."""
    reason = verify(sha256, signature)
    if reason is not None:
        raise UntrustedPickleError(
            f"{what} was not loaded: {reason}. Unpickling runs any code the file holds; if "
            "you trust where this store came from, pass allow_pickle=True, or vouch for it "
            "once with trust_model() (jupyter-mlops trust NAME/VERSION)."
        )
