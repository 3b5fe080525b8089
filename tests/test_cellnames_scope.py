"""What a cell binds and reads, by Python's scope rules (the names lineage slices on)."""

from jupyter_mlops.tracking.cellnames import analyze


def test_a_method_call_inside_a_function_does_not_make_the_name_local():
    names = analyze("def load(path):\n    df = pd.read_parquet(path)\n"
                    "    df['x'] = np.log1p(df['y'])\n    cache[path] = df\n    return df")
    assert names.defined == ["load"]
    assert names.used == ["pd", "np", "cache"]


def test_global_and_nonlocal_names_are_read_from_outside():
    names = analyze("def bump():\n    global count\n    count += 1\n    return count\n"
                    "class Config:\n    global seed\n    seed = seed + 1")
    assert names.used == ["count", "seed"]


def test_a_name_bound_in_the_body_stays_local():
    names = analyze("def f():\n    np = 3\n    return np.real\nlambda rows: rows.sum()")
    assert names.used == []
