"""A pytest plugin: the gates of ``jupyter-mlops check`` inside a project's test suite.

Installed with the package (entry point ``pytest11``); it imports nothing heavy until the
fixture is used::

    def test_the_candidate_may_replace_the_champion(mlops_check):
        mlops_check("churn/4", "churn@champion", data="holdout.parquet", target="churned",
                    min_delta={"f1_macro": 0.01})

A failed gate fails the test with the check's Markdown report as the message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def mlops_check() -> Callable[..., Any]:
    """``check(...)`` that fails the test when a gate fails; returns the CheckResult."""

    def run(candidate: str, against: str | None = None, **options: Any):
        from .monitoring.gates import check

        result = check(candidate, against, **options)
        if not result.passed:
            pytest.fail(result.markdown(), pytrace=False)
        return result

    return run
