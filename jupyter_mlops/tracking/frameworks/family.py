"""What a model family tells autolog, the registry and exports about one of its models.

Each framework family (``sklearn``, ``xgboost``, ``lightgbm``, ...) is a module with one
``Family`` subclass. Its methods never import the framework: they run only on a value the
family recognised, so its module is already in ``sys.modules``. Every hook but
``recognises`` may fail on a framework version that lacks an attribute; the caller turns
that failure into one warning line and keeps everything else.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NativeFile:
    """A model saved in its framework's own format, beside (or instead of) its pickle."""

    suffix: str  # the file name's ending: "ubj", "txt", "cbm", "keras", "pt"
    data: bytes
    media_type: str = "application/octet-stream"


@dataclass
class Flavor:
    """What ``export_mlflow`` writes for a model: MLflow's own flavor for it.

    ``files`` maps file names inside the exported folder to their bytes; ``flavor`` is the
    flavor's section of the MLmodel file; ``loader_module`` and ``pyfunc`` (the keys MLflow's
    own ``save_model`` gives it, such as ``data``) fill the ``python_function`` section;
    ``packages`` are ``(distribution, module)`` pairs whose
    recorded versions become requirements (an empty module: a requirement without a
    version).
    """

    name: str
    flavor: dict[str, Any]
    loader_module: str
    pyfunc: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    packages: list[tuple[str, str]] = field(default_factory=list)
    #: The file name under which the registered pickle itself is written, for flavors
    #: whose model file is a pickle (its verified bytes are copied, never pickled again).
    pickled: str | None = None


class Family:
    """The hooks of one framework family; the defaults say "nothing to add"."""

    #: The family's name, also the ``framework`` a registered version records.
    name = ""
    #: The family is consulted only when one of these modules is already imported.
    modules: tuple[str, ...] = ()

    def loaded(self) -> bool:
        return any(module in sys.modules for module in self.modules)

    def recognises(self, value: Any) -> bool:
        """A trained model of this family (a class, or an untrained model, is not)."""
        return False

    def saved(self, value: Any) -> Any:
        """The object pickled as the run's model (a Trainer's model, not the Trainer)."""
        return value

    def params(self, value: Any) -> dict[str, Any]:
        """Its parameters, under MLflow's key names where MLflow's autolog has them."""
        return {}

    def histories(self, value: Any) -> dict[str, list[Any]]:
        """Metric histories recorded while it trained: key -> one value per step, or
        ``(step, value)`` pairs when the steps are not 0, 1, 2, ..."""
        return {}

    def history_in_caller(self, value: Any) -> bool:
        """Whether the model keeps no history and its training call filled a dict of the
        caller's instead (``xgb.train(..., evals_result=d)``)."""
        return False

    def metrics(self, value: Any) -> dict[str, float]:
        """Single numbers about the trained model (best iteration, AIC, ...)."""
        return {}

    def importances(self, value: Any) -> dict[str, list[Any]] | None:
        """A table of feature importances, as columns: ``feature`` first, then one column
        per kind of importance; None when the model has none."""
        return None

    def texts(self, value: Any) -> dict[str, str]:
        """Text artifacts worth keeping (a fitted model's summary), by file name."""
        return {}

    def native(self, value: Any) -> NativeFile | None:
        """The model in its framework's own format, when it has one besides pickle."""
        return None

    def predictor(self, value: Any) -> Any:
        """An object with scikit-learn's ``predict`` (and ``predict_proba`` for a
        classifier) that predicts as ``value`` does."""
        return value

    def plain_data(self, value: Any) -> Any:
        """A framework's own data container (DMatrix, Dataset) as a DataFrame or an array;
        None when ``value`` is not one."""
        return None

    def sources(self, value: Any) -> list[tuple[Any, str]]:
        """The objects a data container was built from, with their roles (``train``
        features, ``target`` labels), when it keeps them."""
        return []

    def signature(self, value: Any) -> dict[str, Any] | None:
        """The input signature the model itself declares (feature names or width)."""
        return None

    def flavor(self, model: Any) -> Flavor | None:
        """MLflow's flavor for ``model``; None when MLflow has none we can write."""
        return None
