"""Ragged CSV rows, found before pandas reads them.

pandas fills a row with too few values with missing values, and takes one value too many
in the first row for an index column, which shifts every column by one: both would be
scored. :class:`RowWidths` counts the values of every row against the header and refuses
the first row that differs, naming its line, for a request body (:func:`check_rows`) and
for a batch file as it streams through :class:`CheckedReader`. It also refuses text that
is not UTF-8, which pandas would otherwise report as an encoding error deep in a chunk.

A block without a quote (nearly all numeric data) whose separators number exactly
(columns - 1) x lines passes after two vectorised counts: a row short of values would
have to be made up by a row with too many, which pandas' parser refuses by itself
("Expected 2 fields in line 3", translated by :func:`parser_error`). Other blocks, and the
first one (where pandas would take a long first row for an index), are counted row by row
with numpy; lines with quotes go through a small state machine that follows pandas'
rules: a quote opens a quoted value only at the start of a value, ``""`` inside one is a
quote, and a quoted value may span lines. Blank lines are skipped, as pandas skips them.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from .formats import BadRequest

_QUOTE = ord('"')
_LINE_END = re.compile(rb"\r\n|\r|\n")


class RowWidths:
    """Feed the bytes of a CSV text in order; the first ragged row raises BadRequest.

    Examples
    --------
    >>> check = RowWidths()
    >>> check.feed(b"a,b\\n1,2\\n3,4,5\\n")
    Traceback (most recent call last):
    ...
    jupyter_mlops.serving.formats.BadRequest: Line 3 has 3 values; the header names 2 columns.
    """

    def __init__(self, sep: str = ",", *, bom_ok: bool = False) -> None:
        self.sep = sep.encode()
        self.bom_ok = bom_ok
        self.width: int | None = None
        self.lines = 0  # physical lines already counted
        self._carry = b""
        self._started = False
        self._in_quote = False
        self._record_line = 0
        self._fields = 0
        self._at_start = True
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, block: bytes) -> None:
        if not self._started and block:
            self._started = True
            if block.startswith(codecs.BOM_UTF8) and self.bom_ok:
                block = block[len(codecs.BOM_UTF8):]
        self._check_text(block)
        data = self._carry + block
        # A block may end between "\r" and "\n": keep a trailing "\r" for the next one.
        cut = max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1)) + 1
        self._carry = data[cut:]
        if cut:
            self._count(data[:cut])

    def finish(self) -> None:
        """The end of the text: count the last line, refuse a quoted value never closed."""
        self._check_text(b"", final=True)
        if self._carry:
            carry, self._carry = self._carry, b""
            self._count(carry + b"\n")
        if self._in_quote:
            raise BadRequest(f"Line {self._record_line} opens a quoted value that is never "
                             "closed.")

    # -- text --------------------------------------------------------------------------

    def _check_text(self, block: bytes, final: bool = False) -> None:
        zero = block.find(b"\x00")
        try:
            self._decoder.decode(block if zero < 0 else block[:zero], final)
        except UnicodeDecodeError as exc:
            raise BadRequest(f"Line {self._line_at(block, exc.start)} is not UTF-8 text; "
                             "send (or save) the CSV as UTF-8.") from None
        if zero >= 0:
            raise BadRequest(f"Line {self._line_at(block, zero)} holds a NUL byte: the text "
                             "is not UTF-8 (UTF-16?); send (or save) the CSV as UTF-8.")

    def _line_at(self, block: bytes, position: int) -> int:
        head = self._carry + block[:position]
        return self.lines + len(_LINE_END.findall(head)) + 1

    # -- counting ----------------------------------------------------------------------

    def _count(self, data: bytes) -> None:
        """Count whole lines (``data`` ends with a line end)."""
        plain = not self._in_quote and _QUOTE not in data and (
            b"\r" not in data or data.count(b"\r") == data.count(b"\r\n"))
        if plain:
            self._count_plain(data)
        else:
            self._count_quoted(data)

    def _count_plain(self, data: bytes) -> None:
        import numpy as np

        array = np.frombuffer(data, dtype=np.uint8)
        if self.width is not None:
            lines = int(np.count_nonzero(array == 10))
            if int(np.count_nonzero(array == self.sep[0])) == (self.width - 1) * lines:
                self.lines += lines
                return
        ends = np.flatnonzero(array == 10)
        seps = np.flatnonzero(array == self.sep[0])
        counts = np.diff(np.searchsorted(seps, ends), prepend=0)
        starts = np.concatenate(([0], ends[:-1] + 1))

        def blank(index: int) -> bool:
            return not counts[index] and not data[starts[index]:ends[index]].strip()

        if self.width is None:
            header = next((i for i in range(len(ends)) if not blank(i)), None)
            if header is None:
                self.lines += len(ends)
                return
            self.width = int(counts[header]) + 1
        for index in np.flatnonzero(counts != self.width - 1):
            if not blank(index):
                self._refuse(self.lines + int(index) + 1, int(counts[index]) + 1)
        self.lines += len(ends)

    def _count_quoted(self, data: bytes) -> None:
        lines = _LINE_END.split(data)
        lines.pop()  # data ends with a line end: the last piece is empty
        sep = self.sep
        for line in lines:
            self.lines += 1
            if not self._in_quote:
                if not line.strip():
                    continue
                self._record_line, self._fields, self._at_start = self.lines, 1, True
            i, size = 0, len(line)
            while i <= size:
                if self._in_quote:
                    q = line.find(b'"', i)
                    if q < 0:
                        break  # the quoted value goes on over the line end
                    if q + 1 < size and line[q + 1] == _QUOTE:
                        i = q + 2  # "" is a quote inside a quoted value
                        continue
                    self._in_quote, i = False, q + 1
                    continue
                if self._at_start and i < size and line[i] == _QUOTE:
                    self._in_quote, self._at_start, i = True, False, i + 1
                    continue
                j = line.find(sep, i)
                if j < 0:
                    break
                self._fields, self._at_start, i = self._fields + 1, True, j + 1
            if self._in_quote:
                self._at_start = False
                continue
            if self.width is None:
                self.width = self._fields
            elif self._fields != self.width:
                self._refuse(self._record_line, self._fields)

    def _refuse(self, line: int, values: int) -> None:
        raise BadRequest(f"Line {line} has {values} value{'s' if values != 1 else ''}; the "
                         f"header names {self.width} column{'s' if self.width != 1 else ''}.")


_PANDAS_WIDTH = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def parser_error(exc: Exception) -> str:
    """pandas' parser error as one line, in the words of :class:`RowWidths` when it can."""
    text = str(exc).strip()
    match = _PANDAS_WIDTH.search(text)
    if match:
        width, line, values = (int(g) for g in match.groups())
        return f"Line {line} has {values} values; the header names {width} columns."
    return (text.splitlines()[0] if text else type(exc).__name__).rstrip(".") + "."


def check_rows(body: bytes, sep: str = ",") -> None:
    """Refuse a CSV body with a ragged row (BadRequest naming the line)."""
    check = RowWidths(sep)
    check.feed(body)
    check.finish()


class CheckedReader:
    """A binary file that checks the rows of what it hands to pandas, as pandas reads.

    The check runs ahead of the parser, so a ragged row is refused before any row after
    the last complete chunk is scored.
    """

    def __init__(self, stream: Any, sep: str = ",") -> None:
        self.stream = stream
        self.check = RowWidths(sep, bom_ok=True)
        self._done = False

    def read(self, size: int = -1) -> bytes:
        block = self.stream.read(size)
        if block:
            self.check.feed(block)
        elif not self._done:
            self._done = True
            self.check.finish()
        return block

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.stream.close()
