"""Export a registered version as an MLflow model folder, without needing MLflow installed.

The folder holds what ``mlflow.pyfunc.load_model`` reads: ``MLmodel`` with the
``python_function`` flavour and MLflow's own flavour for the model's framework (``sklearn``,
``xgboost``, ``lightgbm``, ``catboost``, ``keras``, ``statsmodels``, ``pytorch``; each
family says what it writes), the model file in that flavour's format, its signature,
``requirements.txt``, ``python_env.yaml`` and ``conda.yaml``.

The requirements are the distributions the model's modules come from, at the versions
recorded for the kernel session that made it (``registry.requirements``); a version with
no such record falls back to the versions its own row keeps (scikit-learn, numpy, pandas).

Those environment files are read by installers, so nothing from the store is copied into
them as it stands: the version's row and the session's environment must carry this user's
signature, and every version string is parsed as PEP 440 and written in its normalized
form, every package name checked against PEP 508. Anything else is refused before a file
is written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ValidationError, shorten
from ..store import Store
from .requirements import model_requirements

# PEP 508's rule for a distribution name.
_PACKAGE_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])\Z", re.IGNORECASE)

_MLFLOW_TYPES = {"float64": "double", "float32": "float", "int64": "long", "int32": "integer",
                 "bool": "boolean", "object": "string", "string": "string", "str": "string",
                 "datetime64[ns]": "datetime", "int16": "integer", "int8": "integer",
                 "uint8": "integer", "float16": "float"}


def _signature(signature: dict[str, Any] | None) -> dict[str, str] | None:
    if not signature:
        return None
    if signature["kind"] == "dataframe":
        columns = []
        for column in signature["columns"]:
            if column.get("dtype") is None:
                return None
            kind = _MLFLOW_TYPES.get(column["dtype"])
            if kind is None:
                return None
            columns.append({"type": kind, "name": column["name"], "required": True})
        return {"inputs": json.dumps(columns, allow_nan=False), "outputs": None, "params": None}
    if signature.get("dtype") is None:
        return None
    spec = [{"type": "tensor", "tensor-spec": {"dtype": signature["dtype"],
                                                "shape": signature["shape"]}}]
    return {"inputs": json.dumps(spec, allow_nan=False), "outputs": None, "params": None}


def pep440(value: object, what: str) -> str:
    """``value`` as a normalized PEP 440 version (only ``[0-9a-z.+!-]``), or refused."""
    from packaging.version import InvalidVersion, Version

    if not isinstance(value, str) or value != value.strip():
        raise ValidationError(f"The {what} recorded for this version is not a PEP 440 "
                              f"version: {shorten(value)}. Nothing was exported.")
    try:
        return str(Version(value))
    except InvalidVersion:
        raise ValidationError(f"The {what} recorded for this version is not a PEP 440 "
                              f"version: {shorten(value)}. Nothing was exported.") from None


def requirement(package: str, version: object | None) -> str:
    """``package==version`` (or just ``package``), with both parts checked."""
    if not _PACKAGE_NAME.match(package):
        raise ValidationError(f"{shorten(package)} is not a PEP 508 package name. Nothing "
                              "was exported.")
    if version is None:
        return package
    return f"{package}=={pep440(version, f'{package} version')}"


def _yaml(value: Any, indent: int = 0) -> str:
    """The small YAML subset MLmodel needs: nested mappings, lists and JSON-quoted scalars."""
    pad = "  " * indent
    lines = []
    for key, item in value.items():
        if item is None:
            lines.append(f"{pad}{key}: null")
        elif isinstance(item, dict):
            lines.append(f"{pad}{key}:")
            lines.append(_yaml(item, indent + 1))
        elif isinstance(item, list):
            lines.append(f"{pad}{key}:")
            lines.extend(f"{pad}- {json.dumps(entry, allow_nan=False)}" for entry in item)
        elif isinstance(item, bool):
            lines.append(f"{pad}{key}: {'true' if item else 'false'}")
        elif isinstance(item, (int, float)):
            lines.append(f"{pad}{key}: {item}")
        else:
            lines.append(f"{pad}{key}: {json.dumps(str(item), allow_nan=False)}")
    return "\n".join(lines)


def export_mlflow(uri: str, path: str | os.PathLike[str], *, store: Store | None = None,
                  allow_pickle: bool = False) -> Path:
    """Write ``uri`` as an MLflow model folder at ``path`` (which must not exist yet).

    MLflow unpickles the folder's model.pkl, so a version this user did not sign is
    exported only with ``allow_pickle=True``, as ``load_model`` would load it.

    Examples
    --------
    >>> export_mlflow("cancer@champion", "exported/cancer")          # doctest: +SKIP
    >>> mlflow.pyfunc.load_model("exported/cancer").predict(frame)     # doctest: +SKIP
    """
    from ..store.current import get_store
    from ..tracking.frameworks import family_named
    from .versions import checked_version, load_version

    store = store or get_store()
    version, row = checked_version(uri, store=store, pickle="model",
                                   allow_pickle=allow_pickle)
    family = family_named(version.framework)
    if family is None:
        raise ValidationError(
            f"export_mlflow writes the models of the frameworks autolog knows; "
            f"{version.name}/{version.version} is {version.class_name}."
        )
    target = Path(path)
    if target.exists() and any(target.iterdir()):
        raise ValidationError(f"{str(target)!r} already exists and is not empty; choose a new folder.")
    try:
        versions = json.loads(row.library_versions or "{}")
    except (TypeError, ValueError):
        versions = None
    if not isinstance(versions, dict):
        raise ValidationError(f"The library versions recorded for {version.name}/"
                              f"{version.version} are not readable: "
                              f"{shorten(row.library_versions)}. Nothing was exported.")
    python = pep440(versions.get("python", sys.version.split()[0]), "Python version")
    if family.name == "sklearn":
        flavor = family.flavor(None)  # the registered pickle, never unpickled here
        flavor.flavor["sklearn_version"] = (pep440(versions["sklearn"], "scikit-learn version")
                                            if versions.get("sklearn") else "unknown")
    else:
        # Loaded through the same checks as load_model, to be written in its own format.
        flavor = family.flavor(load_version(uri, store=store, allow_pickle=allow_pickle)[1])
    if flavor is None:
        raise ValidationError(f"MLflow has no flavor for {version.class_name}; "
                              f"{version.name}/{version.version} was not exported.")
    data = store.artifacts.read_verified(version.sha256)  # read and checked once
    captured = model_requirements(store, version, data)
    if captured is not None:
        # The distributions the model's modules come from, as its session had them.
        python = pep440(captured[0] or versions.get("python", sys.version.split()[0]),
                        "Python version")
        requirements = [requirement(name, found) for name, found in captured[1]]
    else:
        # The flavor's own packages (pinned when their version was recorded), numpy and
        # pandas when they were, then the flavor's unpinned helpers (cloudpickle).
        requirements = [requirement(package, versions.get(module))
                        for package, module in flavor.packages if module]
        requirements += [requirement(package, versions[package])
                         for package in ("numpy", "pandas") if package in versions]
        requirements += [requirement(package, None) for package, module in flavor.packages
                         if not module]
    requirements = list(dict.fromkeys(requirements))
    with staged_folder(target) as staging:
        if flavor.pickled is not None:
            (staging / flavor.pickled).write_bytes(data)
        for name, data in flavor.files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(data)
        (staging / "requirements.txt").write_text("\n".join(requirements) + "\n")
        (staging / "python_env.yaml").write_text(
            f"python: {python}\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n")
        (staging / "conda.yaml").write_text(
            "channels:\n- conda-forge\ndependencies:\n"
            f"- python={python}\n- pip\n- pip:\n"
            + "".join(f"  - {r}\n" for r in requirements) + "name: mlflow-env\n")
        mlmodel: dict[str, Any] = {
            "artifact_path": "model",
            "flavors": {
                "python_function": {
                    "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                    "loader_module": flavor.loader_module,
                    **flavor.pyfunc,
                    "python_version": python,
                },
                flavor.name: flavor.flavor,
            },
            "model_uuid": uuid.uuid4().hex,
            "utc_time_created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"),
            "metadata": {"jupyter_mlops_uri": version.uri, "sha256": version.sha256,
                         "run_id": version.run_id},
        }
        signature = _signature(version.signature)
        if signature is not None:
            mlmodel["signature"] = signature
        (staging / "MLmodel").write_text(_yaml(mlmodel) + "\n")
    return target


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """A folder written beside ``target`` and renamed onto it once complete, so a failed or
    killed export never leaves a half-written folder under the name asked for."""
    staging = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
    staging.mkdir(parents=True)
    try:
        yield staging
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
