"""Small generated data sets for the example notebooks (nothing is downloaded)."""

import os

import numpy as np
import pandas as pd


def write_regression_files(folder="regression", seed=0):
    """``regression.train`` and ``regression.test``: tab-separated, label first, no header,
    like the files of LightGBM's examples."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for name, n in (("regression.train", 700), ("regression.test", 300)):
        X = rng.normal(size=(n, 8))
        y = (X[:, 0] > 0).astype(float) + 0.5 * X[:, 1] - 0.3 * X[:, 2] ** 2 \
            + rng.normal(scale=0.1, size=n)
        np.savetxt(os.path.join(folder, name), np.column_stack([y, X]), delimiter="\t",
                   fmt="%.6f")


def make_customers(n=500, seed=0):
    """Subscription customers with a churn label."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south", "east", "west"], n)
    tenure = rng.integers(1, 72, n)
    charges = np.select([plan == "basic", plan == "plus"], [20.0, 45.0], 80.0) \
        + rng.normal(0, 5, n)
    calls = rng.poisson(1.5, n)
    score = -0.04 * tenure + 0.02 * charges + 0.5 * calls + (region == "south") * 0.4
    churn = (score + rng.logistic(size=n) > 0.8).astype(int)
    return pd.DataFrame({
        "customer_id": np.arange(n), "plan": plan, "region": region,
        "tenure_months": tenure, "monthly_charges": charges.round(2),
        "support_calls": calls, "churn": churn,
    })
