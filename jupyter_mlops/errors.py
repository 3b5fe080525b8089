"""One exception hierarchy, so callers can catch ``MLOpsError`` and users read one line.

Every message says what happened, the offending value and what to do next.
"""

from __future__ import annotations


def shorten(value: object, limit: int = 80) -> str:
    """``repr`` of a value cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def warn(message: str) -> None:
    """Warn in one line: the warnings module would add a path of ours and a source line
    that say nothing to the user. Shown each time, filtered and caught as any warning."""
    import warnings

    warnings.warn_explicit(message.split("\n", 1)[0], UserWarning, "jupyter_mlops", 0)


class MLOpsError(Exception):
    """Base class of every error jupyter_mlops raises on purpose."""


class ValidationError(MLOpsError, ValueError):
    """A name, parameter or metric value that cannot be stored as given."""


class NotFoundError(MLOpsError, LookupError):
    """A run, model, version, alias or artifact that is not in the store."""


class IntegrityError(MLOpsError):
    """Stored bytes that no longer match their recorded hash."""


class UntrustedPickleError(IntegrityError):
    """Pickled bytes that this user's key did not sign, loaded without allow_pickle=True."""


class UntrustedRecordError(UntrustedPickleError):
    """A registry row that decides what runs (a version's bytes, an alias, a replay script)
    that this user's key did not sign. An UntrustedPickleError too, so code that catches
    refused pickles catches these refusals of the rows pointing at them."""


class TamperedError(UntrustedRecordError):
    """Rows this user signed were changed in the store afterwards; never vouch for them."""


class ModelSerializationError(MLOpsError, TypeError):
    """A model object that cannot be serialized."""


class SyncError(MLOpsError):
    """An MLflow tracking server that refused, failed or did not answer during a sync or a
    pull; what was pushed before it is recorded, so the next call resumes."""


class StoreError(MLOpsError):
    """The store cannot be used as asked; nothing was written."""


class StoreLockedError(StoreError):
    """Another process held the write lock for longer than the busy timeout."""


class StoreReadOnlyError(StoreError):
    """The store was opened read-only, or its file cannot be written."""


class StoreFullError(StoreError):
    """The disk (or the store's page limit) is full."""


class StoreCorruptError(StoreError):
    """The store file is not a readable SQLite database."""


class SchemaVersionError(StoreError):
    """The store was written by a newer jupyter_mlops."""


class AccessDeniedError(MLOpsError, PermissionError):
    """A request the model server does not answer: a Host or Origin it does not serve, a
    missing or wrong token, or a content type a cross-site form could send."""


class JournalError(StoreError):
    """The predictions journal could not be written, so the request was not answered."""


class BadRequest(ValidationError):
    """Inputs the model cannot be asked to score as sent (HTTP 400)."""

    status = 400


class UnsupportedMediaType(BadRequest):
    """A body that is neither JSON nor CSV (HTTP 415)."""

    status = 415


class StoreOwnershipError(StoreError):
    """A store found by searching up the tree belongs to another user or others can write it."""


class StoreMissingError(StoreError):
    """The store's file was deleted or replaced while this process had it open."""
