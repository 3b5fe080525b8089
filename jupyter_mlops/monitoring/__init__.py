"""Monitoring: checks of a served version (``monitor``), retraining and promotion
(``retrain``) and the trail of steps they write (``trail``)."""

from .monitor import list_alerts, monitor
from .retrain import retrain_model

__all__ = ["list_alerts", "monitor", "retrain_model"]
