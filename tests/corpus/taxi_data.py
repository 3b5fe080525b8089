"""Generated green-taxi trips, shaped like the NYC TLC monthly files the course notebooks read
(no download: each month is drawn from a seeded generator)."""

import os

import numpy as np
import pandas as pd


def make_month(year, month, n=3000):
    rng = np.random.default_rng(year * 100 + month)
    start = pd.Timestamp(year=year, month=month, day=1)
    pickup = start + pd.to_timedelta(rng.uniform(0, 27 * 24 * 3600, n).round(), unit="s")
    pu = rng.integers(1, 60, n)
    do = rng.integers(1, 60, n)
    distance = rng.gamma(2.0, 1.6, n).round(2)
    minutes = 2 + 3.1 * distance + 0.08 * np.abs(pu - do) + rng.gamma(2.0, 1.5, n)
    minutes[rng.random(n) < 0.02] = rng.uniform(70, 200)  # a few outliers, as in the real data
    dropoff = pickup + pd.to_timedelta((minutes * 60).round(), unit="s")
    return pd.DataFrame({
        "VendorID": rng.integers(1, 3, n),
        "lpep_pickup_datetime": pickup,
        "lpep_dropoff_datetime": dropoff,
        "PULocationID": pu,
        "DOLocationID": do,
        "passenger_count": rng.integers(1, 5, n).astype(float),
        "trip_distance": distance,
        "fare_amount": (3 + 2.5 * distance).round(2),
    })


def write_month(year, month, folder="data"):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"green_tripdata_{year}-{month:02d}.parquet")
    if not os.path.exists(path):
        make_month(year, month).to_parquet(path, index=False)
    return path


def read_dataframe(filename):
    df = pd.read_parquet(filename)

    df["duration"] = df.lpep_dropoff_datetime - df.lpep_pickup_datetime
    df.duration = df.duration.apply(lambda td: td.total_seconds() / 60)

    df = df[(df.duration >= 1) & (df.duration <= 60)]

    categorical = ["PULocationID", "DOLocationID"]
    df[categorical] = df[categorical].astype(str)

    return df
