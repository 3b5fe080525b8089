"""Monitoring: checks of a served version (``monitor``), retraining and promotion
(``retrain``) and the trail of steps they write (``trail``). The public names are exported
once, by ``jupyter_mlops`` itself."""
