"""Who did it: the user on sessions, runs and registered versions."""

from __future__ import annotations

import getpass

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.tracking.user import current_user


@pytest.fixture
def named():
    yield mlops.set_user
    mlops.set_user(None)


def test_the_os_login_unless_a_name_is_configured(store, named, monkeypatch):
    monkeypatch.delenv("JUPYTER_MLOPS_USER", raising=False)
    assert current_user() == getpass.getuser()
    monkeypatch.setenv("JUPYTER_MLOPS_USER", "svc-ann")
    assert current_user() == "svc-ann"
    named("Ann Lee")
    assert current_user() == "Ann Lee"
    with pytest.raises(mlops.ValidationError, match="user name"):
        named("  ")


def test_runs_versions_and_sessions_carry_the_user(store, named):
    from sklearn.linear_model import LinearRegression

    from jupyter_mlops.tracking import storage

    named("ann")
    with mlops.start_run("fit") as run:
        model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    mlops.register_model(model, "line", run_id=run.run_id)
    storage.start_session(store, "s" * 32, None, "3.11")
    runs = mlops.search_runs()
    assert list(runs["user"]) == ["ann"] and list(runs["origin"]) == [None]
    assert store.query("SELECT user FROM model_versions") == [("ann",)]
    assert store.query("SELECT user FROM sessions") == [("ann",)]
