"""Batch scoring: a CSV or Parquet file in, the same rows with their predictions out.

The input is read in chunks (``chunk_size`` rows), each chunk checked against the
signature, scored and appended to the output, so memory stays bounded by one chunk
whatever the file's size. Columns the model does not take (ids, timestamps) are kept in
the output but not given to the model. The output is written beside its final name and
moved into place at the end: a failure never leaves half a file under that name.

What the server refuses with a 400, batch scoring refuses with a ValidationError naming
the file and the line or column: a ragged CSV row (checked as the file streams, see
``csvrows.py``), text that is not UTF-8, a number the signature's dtype cannot hold.

Parquet needs pyarrow, which jupyter_mlops does not depend on.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ValidationError, shorten
from .formats import BadRequest, InputSpec

DEFAULT_CHUNK_ROWS = 100_000
_CSV = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.xz", ".tsv")
_PARQUET = (".parquet", ".pq")


def file_format(path: str | os.PathLike[str], what: str) -> str:
    name = str(path).lower()
    if name.endswith(_CSV):
        return "csv"
    if name.endswith(_PARQUET):
        return "parquet"
    raise ValidationError(
        f"The {what} {shorten(str(path))} is neither CSV (.csv, .csv.gz, .tsv) nor Parquet "
        "(.parquet, .pq); name it with one of those extensions."
    )


def require_pyarrow() -> None:
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        raise ValidationError("Parquet files need pyarrow, which is not installed: "
                              "pip install pyarrow")


@dataclass(frozen=True)
class BatchResult:
    """What ``score_file`` did."""

    model: str
    input: str
    output: str
    rows: int
    chunks: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    def __repr__(self) -> str:
        return (f"<BatchResult {self.rows:,} rows scored with {self.model} in "
                f"{self.seconds:.2f} s ({self.rows_per_s:,.0f} rows/s) -> {self.output}>")


class Progress:
    """A one-line progress bar on stderr (only when it is a terminal, unless forced)."""

    def __init__(self, total: int | None, unit: str, enabled: bool | None = None,
                 stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled if enabled is not None else self.stream.isatty()
        self.total = total
        self.unit = unit
        self.started = time.perf_counter()
        self._last = 0.0

    def update(self, done: int, rows: int, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not final and now - self._last < 0.2:
            return
        self._last = now
        elapsed = max(now - self.started, 1e-9)
        rate = f"{rows / elapsed:,.0f} rows/s"
        if self.total:
            share = min(1.0, done / self.total)
            filled = int(share * 30)
            bar = "█" * filled + "░" * (30 - filled)
            text = f"\r  scoring {bar} {share:6.1%}  {rows:,} rows  {rate}"
        else:
            text = f"\r  scoring {rows:,} rows  {rate}"
        self.stream.write(text + ("\n" if final else ""))
        self.stream.flush()


def _kept_as_text(chunk: Any, spec: InputSpec) -> Any:
    """Columns the model does not take, holding integers no integer type can (a 20-digit
    account number): written as their exact digits, not refused, not wrapped."""
    import pandas as pd

    wide = {}
    for name in chunk.columns:
        series = chunk[name]
        if str(name) in spec.columns or series.dtype != object or \
                pd.api.types.infer_dtype(series, skipna=True) not in ("integer", "mixed-integer"):
            continue
        if any(isinstance(v, int) and not isinstance(v, bool) and not -2**63 <= v < 2**64
               for v in series):
            wide[name] = series.map(lambda v: str(v) if isinstance(v, int) else v)
    return chunk.assign(**wide) if wide else chunk


def _predict_chunk(served: Any, chunk: Any, column: str, keep_columns: bool) -> Any:
    import numpy as np
    import pandas as pd

    spec: InputSpec = served.spec
    if keep_columns and spec.kind == "dataframe":
        chunk = _kept_as_text(chunk, spec)
    if spec.kind == "dataframe":
        inputs = spec.conform(chunk, extra="drop")
    else:
        inputs = spec.conform(chunk.to_numpy())
    predictions = served.predict(inputs)
    if isinstance(predictions, pd.DataFrame):
        scored = predictions.add_prefix(f"{column}_").set_axis(chunk.index)
    else:
        values = np.asarray(predictions)
        if values.ndim == 2 and values.shape[1] > 1:
            scored = pd.DataFrame(values, index=chunk.index,
                                  columns=[f"{column}_{i}" for i in range(values.shape[1])])
        else:
            scored = pd.DataFrame({column: values.reshape(len(chunk))}, index=chunk.index)
    return pd.concat([chunk, scored], axis=1) if keep_columns else scored


def open_csv(path: Path, handle: Any) -> Any:
    """The decompressed bytes of a CSV file (``handle`` its raw bytes), rows checked as
    they are read (``csvrows.py``): a ragged row or text that is not UTF-8 is refused."""
    import importlib

    from .csvrows import CheckedReader

    name = str(path).lower()
    stream = handle
    modules = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma"}
    suffix = next((s for s in modules if name.endswith(s)), None)
    if suffix is not None:
        # The decompressor reads the caller's file, which the caller closes.
        stream = importlib.import_module(modules[suffix]).open(handle, "rb")
    elif name.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            raise ValidationError(".zst files need zstandard, which is not installed: "
                                  "pip install zstandard") from None
        stream = zstandard.ZstdDecompressor().stream_reader(handle)
    return CheckedReader(stream, "\t" if name.endswith(".tsv") else ",")


def read_csv_chunks(path: Path, handle: Any, *, chunk_size: int | None,
                    dtype: dict[str, Any] | None = None) -> Any:
    """``pd.read_csv`` of a checked CSV: every row has one value per header column.

    ``index_col=False``: pandas would otherwise take a first row with one value too many
    as carrying an index, and shift every column by one. Errors name the file and line.
    """
    import pandas as pd

    from .csvrows import parser_error

    reader = open_csv(path, handle)
    sep = "\t" if str(path).lower().endswith(".tsv") else ","
    try:
        if chunk_size is None:
            yield pd.read_csv(reader, sep=sep, index_col=False, dtype=dtype)
            return
        yield from pd.read_csv(reader, chunksize=chunk_size, sep=sep, index_col=False,
                               dtype=dtype)
    except BadRequest as exc:
        raise ValidationError(f"{path.name}: {exc}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            EOFError, OSError) as exc:
        raise ValidationError(f"Malformed CSV in {path.name}: {parser_error(exc)}") from None


def _parquet_chunks(path: Path, chunk_size: int):
    import pandas as pd
    import pyarrow.parquet as pq

    offset = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
        frame = batch.to_pandas()
        frame.index = pd.RangeIndex(offset, offset + len(frame))
        offset += len(frame)
        yield frame


class _CsvWriter:
    """pandas' ``to_csv``; formatting floats there is most of the time a batch takes."""

    def __init__(self, path: Path) -> None:
        self.handle = open(path, "w", newline="", encoding="utf-8")
        self.first = True

    def write(self, frame: Any) -> None:
        frame.to_csv(self.handle, header=self.first, index=False)
        self.first = False

    def close(self) -> None:
        self.handle.close()


class _ArrowWriter:
    """Chunks appended through a pyarrow writer, every chunk cast to the first one's schema.

    A chunk pyarrow cannot take (a column whose type changed since the first chunk, values
    no Arrow type holds) is a ValidationError naming the column and the rows, not a crash
    in the writer thread.
    """

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = path
        self.name = name or path.name
        self.writer = None
        self.schema = None

    def _open(self, schema: Any) -> Any:
        raise NotImplementedError

    def write(self, frame: Any) -> None:
        import pyarrow as pa

        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.writer is None:
                self.schema = table.schema
                self.writer = self._open(self.schema)
            elif table.schema != self.schema:
                table = table.cast(self.schema)
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
            raise ValidationError(self._explain(frame, exc)) from None
        self.writer.write_table(table)

    def _explain(self, frame: Any, exc: Exception) -> str:
        import pyarrow as pa

        column = None
        for name in frame.columns:
            try:
                values = pa.array(frame[name], from_pandas=True)
                if self.schema is not None and name in self.schema.names:
                    values.cast(self.schema.field(name).type)
            except (pa.ArrowException, OverflowError, TypeError, ValueError):
                column = name
                break
        rows = f"rows {frame.index[0]:,} to {frame.index[-1]:,}" if len(frame) else "a chunk"
        what = f"column {str(column)!r} of {rows}" if column is not None else rows
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (f"Cannot write {what} to {self.name}: {first[:200]}. Its values do not fit "
                "the column's type (or the type of the first chunk).")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class _ArrowCsvWriter(_ArrowWriter):
    """The same CSV through pyarrow when it is installed: several times faster."""

    def _open(self, schema: Any) -> Any:
        import pyarrow.csv as pacsv

        return pacsv.CSVWriter(self.path, schema,
                               write_options=pacsv.WriteOptions(quoting_style="needed"))


def _csv_writer(path: Path, name: str) -> Any:
    import importlib.util

    return _ArrowCsvWriter(path, name) if importlib.util.find_spec("pyarrow") \
        else _CsvWriter(path)


class _ParquetWriter(_ArrowWriter):
    def _open(self, schema: Any) -> Any:
        import pyarrow.parquet as pq

        return pq.ParquetWriter(self.path, schema)


class _Behind:
    """Writes in a thread of its own while the next chunk is read and scored.

    At most ``depth`` scored chunks wait, so memory stays bounded; the writer's error, if
    any, is raised in the caller at its next ``write`` or at ``close``.
    """

    def __init__(self, writer: Any, depth: int = 2) -> None:
        import queue
        import threading

        self.writer = writer
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="jupyter-mlops-batch-writer",
                                       daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            frame = self.queue.get()
            if frame is None:
                return
            if self.error is None:
                try:
                    self.writer.write(frame)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    self.error = exc

    def write(self, frame: Any) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(frame)

    def close(self) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        self.writer.close()
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def score_file(uri: str, input: str | os.PathLike[str], output: str | os.PathLike[str], *,
               chunk_size: int = DEFAULT_CHUNK_ROWS, prediction_column: str = "prediction",
               keep_columns: bool = True, progress: bool | None = None,
               store: Any = None, client: Any = None,
               blocksize: str | int = "64MiB") -> BatchResult:
    """Score every row of ``input`` (CSV or Parquet) with ``uri``; write ``output``.

    The output holds the input's columns (unless ``keep_columns=False``) and the
    predictions in ``prediction_column`` (``prediction_0``, ``prediction_1``, … for
    several outputs per row). Memory is bounded by ``chunk_size`` rows.

    With ``client=`` (a ``dask.distributed.Client`` or a scheduler address), or ``input``
    given as a Dask DataFrame, the workers read the file in blocks of ``blocksize`` bytes
    (Parquet: by row group) and score the partitions with the model sent to them once;
    the output, written here in partition order, holds the same rows and predictions
    (:mod:`.partitioned`).

    Examples
    --------
    >>> score_file("churn@champion", "customers.csv", "scored.parquet")   # doctest: +SKIP
    <BatchResult 1,000,000 rows scored with churn/3 in 2.10 s (476,190 rows/s) -> scored.parquet>
    """
    from ..store.current import get_store
    from .deployment import load_served

    from ..cluster import get_client, is_dask

    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValidationError(f"chunk_size is a number of rows >= 1; got {shorten(chunk_size)}.")
    if is_dask(input) or client is not None:
        return _score_on_dask(uri, input, Path(output), get_client(client), prediction_column,
                              keep_columns, store, blocksize)
    source, target = Path(input), Path(output)
    in_format, out_format = file_format(source, "input"), file_format(target, "output")
    if "parquet" in (in_format, out_format):
        require_pyarrow()
    if not source.is_file():
        raise ValidationError(f"No input file {shorten(str(source))}.")
    if source.resolve() == target.resolve():
        raise ValidationError("The output would overwrite the input; choose another -o path.")
    if target.suffix.lower() in (".gz", ".bz2", ".zst", ".xz"):
        raise ValidationError("Compressed output is not written; name the output .csv or "
                              ".parquet.")
    served = load_served(uri, store or get_store())
    started = time.perf_counter()
    partial = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = _Behind(_csv_writer(partial, target.name) if out_format == "csv"
                     else _ParquetWriter(partial, target.name))
    rows = chunks = 0
    bar = Progress(source.stat().st_size if in_format == "csv" else None, "bytes", progress)
    try:
        with open(source, "rb") as handle:
            if in_format == "csv":
                reader = read_csv_chunks(
                    source, handle, chunk_size=chunk_size,
                    dtype={c: str for c in served.spec.text_columns} or None)
                total_rows = None
            else:
                import pyarrow.parquet as pq

                total_rows = pq.ParquetFile(source).metadata.num_rows
                bar.total = total_rows
                reader = _parquet_chunks(source, chunk_size)
            for chunk in reader:
                if chunks == 0 and prediction_column in chunk.columns and keep_columns:
                    raise ValidationError(
                        f"The input already has a column {prediction_column!r}; name the "
                        "predictions another way with --prediction-column.")
                try:
                    scored = _predict_chunk(served, chunk, prediction_column, keep_columns)
                except BadRequest as exc:
                    raise ValidationError(f"{source.name}: {exc}") from None
                writer.write(scored)
                rows += len(chunk)
                chunks += 1
                bar.update(rows if total_rows else handle.tell(), rows)
        if rows == 0:
            raise ValidationError(f"{source.name} has no rows to score.")
        _commit(writer, partial, target)
    except BaseException:
        _discard(writer, partial)
        raise
    bar.update(bar.total or rows, rows, final=True)
    return BatchResult(served.label, str(source), str(target), rows, chunks,
                       time.perf_counter() - started)


def _score_on_dask(uri: str, input: Any, target: Path, client: Any, column: str,
                   keep_columns: bool, store: Any, blocksize: str | int) -> BatchResult:
    from ..cluster import is_dask
    from ..store.current import get_store
    from .formats import InputSpec
    from .partitioned import model_payload, read_input, score_partitions

    out_format = file_format(target, "output")
    require_pyarrow()
    if target.suffix.lower() in (".gz", ".bz2", ".zst", ".xz"):
        raise ValidationError("Compressed output is not written; name the output .csv or "
                              ".parquet.")
    payload = model_payload(uri, store or get_store())
    if is_dask(input):
        frame, label = input, "a Dask DataFrame"
        if getattr(frame, "ndim", 2) == 1:
            frame = frame.to_frame()
    else:
        source = Path(input)
        if not source.is_file():
            raise ValidationError(f"No input file {shorten(str(source))}.")
        if source.resolve() == target.resolve():
            raise ValidationError("The output would overwrite the input; choose another -o "
                                  "path.")
        spec = InputSpec.from_signature(payload["version"].signature)
        frame = read_input(source, file_format(source, "input"), spec, blocksize)
        label = str(source)
    started = time.perf_counter()
    partial = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = _Behind(_csv_writer(partial, target.name) if out_format == "csv"
                     else _ParquetWriter(partial, target.name))
    try:
        rows, parts = score_partitions(frame, payload, client, writer, column, keep_columns,
                                       _predict_chunk)
        if rows == 0:
            raise ValidationError(f"{label} has no rows to score.")
        _commit(writer, partial, target)
    except BaseException:
        _discard(writer, partial)
        raise
    return BatchResult(payload["label"], label, str(target), rows, parts,
                       time.perf_counter() - started)


def _commit(writer: Any, partial: Path, target: Path) -> None:
    """The scores are complete: close the writer and put the file under its name at once."""
    writer.close()
    os.replace(partial, target)


def _discard(writer: Any, partial: Path) -> None:
    """A failed or interrupted scoring leaves no partial output behind."""
    try:
        writer.close()
    except BaseException:  # noqa: BLE001 - the first error is the one to report
        pass
    partial.unlink(missing_ok=True)
