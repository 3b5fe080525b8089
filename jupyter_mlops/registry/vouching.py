"""What this user vouched for in the registry, and whether the store still says it.

A pickle signature (``signing.sign``) says "I pickled these bytes"; it does not say which
version or alias they belong to. A store writer could point ``churn@champion`` or
``churn/3`` at any bytes the user ever signed (an old, bad model), swap a version's
reference sample for another signed sample, or edit the cell history replay runs. So the
rows that decide what runs are signed too, as statements with the same per-user key:

- ``model version``: name, version, the model's sha256 and size, the reference sample's
  sha256, and the input signature and library versions that serving and exports read;
- ``alias``: name, alias, version;
- ``replay script``: name, version, the sha256 of the script cut at registration, the
  folder it runs in, and the dataset and variable names its check looks up.

When a row does not verify, :func:`assess` tells a store made by an older jupyter_mlops or
by another user (nothing in it is yours: vouching with ``trust_model`` is the user's call)
from tampering (part of the version is yours and part is not: never vouch for that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import TamperedError, UntrustedRecordError, shorten
from ..store.signing import sign_statement, verify, verify_statement

MINE, UNSIGNED, OTHER = "yours", "unsigned", "other"
_NOT_MINE = {UNSIGNED: "no signature of yours",
             OTHER: "a signature that does not match your key"}


@dataclass(frozen=True)
class VersionRow:
    """The fields of a ``model_versions`` row that decide what runs, exactly as stored."""

    name: Any
    version: Any
    sha256: Any
    size: Any
    reference_sha256: Any
    signature: Any
    library_versions: Any
    cell: Any
    datasets: Any
    variable: Any
    hmac: Any
    replay_sha256: Any
    replay_hmac: Any

    @property
    def label(self) -> str:
        version = self.version if isinstance(self.version, int) else shorten(self.version)
        return f"{self.name}/{version}"

    def fields(self) -> list[Any]:
        return [self.name, self.version, self.sha256, self.size, self.reference_sha256,
                self.signature, self.library_versions]


def sign_version(row: VersionRow, *, vouched: bool = False) -> str | None:
    """The row's signature: made at registration, or by ``trust_model`` (``vouched``), a
    kind of its own so that later checks know a row was not registered here."""
    return sign_statement("vouched model version" if vouched else "model version",
                          row.fields())


def sign_alias(name: str, alias: str, version: int) -> str | None:
    return sign_statement("alias", [name, alias, version])


def _replay_fields(row: VersionRow, script_sha256: str, cwd: Any) -> list[Any]:
    return [row.name, row.version, script_sha256, cwd, row.datasets, row.variable]


def sign_replay(row: VersionRow, script_sha256: str, cwd: Any) -> str | None:
    return sign_statement("replay script", _replay_fields(row, script_sha256, cwd))


def _state(reason: str | None, signature: Any) -> str:
    if reason is None:
        return MINE
    return UNSIGNED if signature is None else OTHER


def digest_state(store: Any, sha256: Any) -> str:
    """Whether this user signed ``sha256`` as pickled bytes in ``store``."""
    signature = store.signature(sha256) if isinstance(sha256, str) else None
    return _state(verify(sha256, signature), signature)


def registered_here(row: VersionRow) -> bool:
    """Whether the row carries the signature this user made when registering it."""
    return verify_statement("model version", row.fields(), row.hmac) is None


def version_state(row: VersionRow) -> tuple[str, str | None]:
    reason = verify_statement("model version", row.fields(), row.hmac)
    if reason is not None and verify_statement("vouched model version", row.fields(),
                                               row.hmac) is None:
        reason = None
    return _state(reason, row.hmac), reason


def replay_state(row: VersionRow, script_sha256: str, cwd: Any) -> tuple[str, str | None]:
    reason = verify_statement("replay script", _replay_fields(row, script_sha256, cwd),
                              row.replay_hmac)
    return _state(reason, row.replay_hmac), reason


def alias_state(name: Any, alias: Any, version: Any, signature: Any) -> tuple[str, str | None]:
    reason = verify_statement("alias", [name, alias, version], signature)
    return _state(reason, signature), reason


@dataclass(frozen=True)
class Assessment:
    """Which parts of a version this user signed, and what that means.

    ``verdict`` is ``yours`` (the row verifies, signed when registered or vouched for
    since), ``legacy`` (its bytes are yours but its
    row was written by an older jupyter_mlops, unsigned), ``foreign`` (nothing in it is
    yours: another user's store, or one made before signing existed) or ``tampered``
    (part is yours and part is not; ``detail`` says which).
    """

    digests: dict[str, str]
    row: str
    replay: str | None
    verdict: str
    detail: str = ""
    registered: bool = False  # the row was signed when registered here, not vouched for


def assess(store: Any, row: VersionRow, replay: str | None = None) -> Assessment:
    """Classify ``row``; ``replay`` is the state of its replay statement when known."""
    digests = {"model bytes": digest_state(store, row.sha256)}
    if row.reference_sha256 is not None:
        digests["reference sample"] = digest_state(store, row.reference_sha256)
    bound, _ = version_state(row)
    states = [*digests.values(), bound] + ([replay] if replay is not None else [])
    detail = ""
    if bound == MINE:
        verdict = "yours"
        # Registering signs the row and the replay script together; vouching may not have
        # been able to cut the script.
        if replay not in (None, MINE) and registered_here(row):
            verdict, detail = "tampered", ("the cell history replay would run is not the one "
                                           "it was registered from")
    elif MINE not in states:
        verdict = "foreign"
    elif (bound == UNSIGNED and all(s == MINE for s in digests.values())
          and replay in (None, UNSIGNED)):
        verdict = "legacy"
        if _signed_version_before(store, row):
            verdict, detail = "tampered", ("its row carries no signature, yet it is numbered "
                                           "after a version you signed, so no older "
                                           "jupyter_mlops wrote it")
    else:
        verdict = "tampered"
        theirs = [f"its {what} {'carry' if what.endswith('bytes') else 'carries'} "
                  f"{_NOT_MINE[s]}" for what, s in digests.items() if s != MINE]
        if theirs:
            detail = f"{' and '.join(theirs)}, while the rest of it is signed by you"
        elif bound == UNSIGNED:
            detail = "the signature of its row was removed"
        else:
            detail = ("its row no longer says what you signed: it was pointed at other bytes, "
                      "or what serving and exports read from it was edited")
    return Assessment(digests, bound, replay, verdict, detail,
                      registered=bound == MINE and registered_here(row))


_ROW_FIELDS = ("name, version, sha256, size, reference_sha256, signature, library_versions, "
               "cell, datasets, variable, hmac, replay_sha256, replay_hmac")


def _signed_version_before(store: Any, row: VersionRow) -> bool:
    """Whether a version of the same name numbered below ``row`` carries your signature:
    every version registered since rows were signed is signed, so an unsigned row after
    one is not from an older jupyter_mlops."""
    if not isinstance(row.version, int):
        return False
    earlier = store.query(f"SELECT {_ROW_FIELDS} FROM model_versions WHERE name = ? AND "
                          "version < ? AND hmac IS NOT NULL", (row.name, row.version))
    return any(registered_here(VersionRow(*fields)) for fields in earlier)


def tampered(row: VersionRow, detail: str, done: str) -> TamperedError:
    return TamperedError(
        f"Model {row.label} was changed in the store after you registered it: {detail}. "
        f"That is tampering, not a store to vouch for; it was not {done}. Register the "
        "model again from its source."
    )


def untrusted_version(row: VersionRow, reason: str, done: str) -> UntrustedRecordError:
    return UntrustedRecordError(
        f"Model {row.label} was not {done}: its registry entry {reason} (registered by an "
        "older jupyter_mlops or by another user, or written into the store by other means). "
        f"If you trust this store, vouch for it once with trust_model({row.label!r}) "
        f"(jupyter-mlops trust {row.label})."
    )


def require_version(store: Any, row: VersionRow, done: str = "loaded") -> None:
    """Refuse a version whose row this user did not sign, saying whether it was tampered
    with (never to be vouched for) or just unsigned."""
    state, reason = version_state(row)
    if state == MINE:
        return
    verdict = assess(store, row)
    if verdict.verdict == "tampered":
        raise tampered(row, verdict.detail, done)
    raise untrusted_version(row, reason or "", done)


def _moved_alias(name: str, alias: str, version: Any, state: str, verdict: Assessment,
                 done: str) -> TamperedError | None:
    """Tampering with an alias: a signature not yours on an alias to a version that is
    (yours or from your older store), or no signature on an alias to a version registered
    since aliases are signed (no older jupyter_mlops can have set it)."""
    if state == OTHER and verdict.verdict != "foreign":
        how = "it carries a signature that does not match your key"
    elif state == UNSIGNED and verdict.registered:
        how = ("it carries no signature, yet it points at a version registered since aliases "
               "are signed")
    else:
        return None
    return TamperedError(
        f"Alias {name}@{alias} -> version {shorten(version)} was moved in the store by "
        f"someone else ({how}): that is tampering. It was not {done}; point it where you "
        f"mean with set_alias({name!r}, VERSION, {alias!r})."
    )


def require_alias(store: Any, name: str, alias: str, version: Any, signature: Any,
                  row: VersionRow) -> None:
    """Refuse to follow ``name@alias`` unless this user signed where it points."""
    state, reason = alias_state(name, alias, version, signature)
    if state == MINE:
        return
    verdict = assess(store, row)
    if verdict.verdict == "tampered":
        raise tampered(row, verdict.detail, "followed")
    moved = _moved_alias(name, alias, version, state, verdict, "followed")
    if moved is not None:
        raise moved
    raise UntrustedRecordError(
        f"Alias {name}@{alias} -> version {shorten(version)} was not followed: {reason} (set "
        "by an older jupyter_mlops or by another user, or written into the store by other "
        f"means). If that version is the one you mean, set it again with set_alias({name!r}, "
        f"{shorten(version)}, {alias!r}), or vouch for it with "
        f"trust_model('{name}@{alias}')."
    )


def require_replay(store: Any, row: VersionRow, script_sha256: str, cwd: Any) -> None:
    """Refuse to run a replay script this user did not sign when registering the version."""
    state, reason = replay_state(row, script_sha256, cwd)
    if state == MINE:
        return
    verdict = assess(store, row, replay=state)
    if verdict.verdict == "tampered":
        raise tampered(row, verdict.detail, "replayed")
    raise UntrustedRecordError(
        f"The replay script of {row.label} was not run: {reason} (the version was registered "
        "by an older jupyter_mlops or by another user, or its cell history was written into "
        f"the store by other means). Read it first (replay({row.label!r}) prints it); if you "
        f"trust it, vouch for it once with trust_model({row.label!r})."
    )


@dataclass(frozen=True)
class TrustPlan:
    """What ``trust_model`` signs, and the lines that show the user which parts are new."""

    digests: list[str]
    row: bool
    replay: bool
    alias: bool
    lines: list[str]


def plan_trust(store: Any, row: VersionRow, *, replay: tuple[str, Any, int] | None,
               alias: tuple[str, Any] | None) -> TrustPlan:
    """What vouching for ``row`` (and ``alias``: name and stored signature) would sign.

    ``replay`` is the script's sha256, its folder and its number of executions. Raises
    TamperedError when part of the version is yours and part is not.
    """
    replay_now = replay_state(row, replay[0], replay[1])[0] if replay else None
    verdict = assess(store, row, replay=replay_now)
    if verdict.verdict == "tampered":
        raise tampered(row, verdict.detail, "signed")
    alias_now = None
    if alias is not None:
        alias_now = alias_state(row.name, alias[0], row.version, alias[1])[0]
        moved = _moved_alias(row.name, alias[0], row.version, alias_now, verdict, "signed")
        if moved is not None:
            raise moved
    shas = {"model bytes": row.sha256, "reference sample": row.reference_sha256}
    lines, digests = [], []
    for what, state in verdict.digests.items():
        sha = shas[what]
        if state == MINE:
            lines.append(f"  {what} {sha[:12]}…: already signed by you")
        elif verdict.row == MINE:
            lines.append(f"  {what} {sha[:12]}…: signed again (your signed row names it)")
            digests.append(sha)
        else:
            lines.append(f"  {what} {sha[:12]}…: NEW to your key, signed now")
            digests.append(sha)
    if verdict.row != MINE:
        lines.append("  the version's row (its bytes, input signature and library versions): "
                     "signed now")
    if replay is not None and replay_now != MINE:
        lines.append(f"  replay script ({replay[2]} cell executions, sha256 {replay[0][:12]}…): "
                     "signed now")
    if alias is not None and alias_now != MINE:
        lines.append(f"  alias @{alias[0]} -> version {row.version}: signed now")
    return TrustPlan(digests, verdict.row != MINE, replay is not None and replay_now != MINE,
                     alias is not None and alias_now != MINE, lines)
