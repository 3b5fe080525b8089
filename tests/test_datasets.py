"""Data fingerprints: scipy sparse matrices are fingerprinted by content, like arrays."""

import numpy as np
from scipy import sparse

import jupyter_mlops as mlops
from jupyter_mlops.tracking.datasets import data_kind, fingerprint, sample_rows
from support import run_cell


def one_hot():
    rng = np.random.default_rng(0)
    dense = (rng.random((50, 30)) > 0.8).astype(float)
    return dense, sparse.csr_matrix(dense)


def test_a_sparse_matrix_is_fingerprinted_by_content_whatever_its_format():
    dense, csr = one_hot()
    info = fingerprint(csr)
    assert info["kind"] == "sparse" and info["shape"] == [50, 30]
    assert info["dtypes"] == ["float64"]
    for same in (csr.tocsc(), csr.tocoo(), sparse.csr_array(dense), sparse.lil_matrix(dense)):
        assert data_kind(same) == "sparse"
        assert fingerprint(same)["fingerprint"] == info["fingerprint"], type(same).__name__
    # Stored zeros and duplicate entries do not change what the matrix holds.
    coo = csr.tocoo()
    doubled = sparse.coo_matrix((np.r_[coo.data / 2, coo.data / 2, [0.0]],
                                 (np.r_[coo.row, coo.row, [0]], np.r_[coo.col, coo.col, [0]])),
                                shape=coo.shape)
    assert fingerprint(doubled)["fingerprint"] == info["fingerprint"]


def test_one_changed_value_changes_the_fingerprint():
    dense, csr = one_hot()
    changed = dense.copy()
    changed[3, 4] = 2.0
    assert fingerprint(sparse.csr_matrix(changed))["fingerprint"] != fingerprint(csr)["fingerprint"]
    assert fingerprint(csr.T)["fingerprint"] != fingerprint(csr)["fingerprint"]
    assert fingerprint(csr.astype(np.float32))["fingerprint"] != fingerprint(csr)["fingerprint"]


def test_a_sparse_sample_keeps_its_rows():
    _, csr = one_hot()
    sample = sample_rows(csr.tocoo(), limit=10)
    assert sample.shape == (10, 30) and data_kind(sample) == "sparse"


def test_log_dataset_takes_a_sparse_matrix_and_keeps_a_sample(store):
    _, csr = one_hot()
    with mlops.start_run() as run:
        digest = mlops.log_dataset(csr, "X_onehot", role="train")
    stored = mlops.get_run(run.run_id)
    assert [(d.name, d.role, d.fingerprint) for d in stored.inputs] == [
        ("X_onehot", "train", digest)]
    assert any(a.kind == "dataset_sample" for a in stored.artifacts)


def test_a_tracked_cell_fingerprints_the_sparse_matrix_it_fits_on(shell):
    run_cell(shell, "import numpy as np\nfrom scipy import sparse\n"
                    "X = sparse.random(60, 20, density=0.2, format='csr', random_state=0)\n"
                    "y = (np.asarray(X.sum(axis=1)).ravel() > 2).astype(int)")
    result = run_cell(shell, "%%track\nfrom sklearn.linear_model import LogisticRegression\n"
                             "model = LogisticRegression().fit(X, y)")
    assert result.success
    run = mlops.get_run(mlops.search_runs().run_id[0])
    inputs = {d.name: d for d in run.inputs}
    assert inputs["X"].fingerprint == fingerprint(shell.user_ns["X"])["fingerprint"]
    assert inputs["X"].kind == "sparse" and tuple(inputs["X"].shape) == (60, 20)


def test_a_large_frame_hashed_in_slices_has_the_fingerprint_of_one_pass(monkeypatch):
    """The slices hashed on two threads join into the same bytes as one hash of the whole
    frame, whatever its columns (a categorical, strings, lists hashed by their text)."""
    import numpy as np
    import pandas as pd

    from jupyter_mlops.tracking import datasets

    monkeypatch.setattr(datasets, "PARALLEL_ROWS", 10)
    monkeypatch.setattr(datasets, "SLICE_ROWS", 7)
    frame = pd.DataFrame({"x": np.arange(50.0), "c": pd.Categorical(list("abcde") * 10),
                          "s": [f"r{i % 3}" for i in range(50)]}, index=np.arange(50) * 3)
    whole = pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
    assert datasets._pandas_bytes(frame) == whole
    listed = pd.DataFrame({"l": [[i] for i in range(50)]})
    assert datasets._pandas_bytes(listed) == pd.util.hash_pandas_object(
        listed.astype(str), index=True).to_numpy().tobytes()
    sliced = datasets.fingerprint(frame)["fingerprint"]
    monkeypatch.setattr(datasets, "PARALLEL_ROWS", 10**9)
    assert datasets.fingerprint(frame)["fingerprint"] == sliced
