"""Every verb of ``%mlops`` and ``jupyter-mlops``, declared once.

Both front ends build their parsers from ``COMMANDS`` (in this order). A verb only one front
end offers names it in ``front_ends``; an argument only one has, or that differs between
them, says ``only=``; a help that differs is a mapping by front end. Pure data and argparse:
the terminal reads it without IPython, ``%load_ext`` without the handlers.
"""

from __future__ import annotations

from .command import CLI, MAGIC, Command, arg

MODEL_URI = "name@alias, name/VERSION or models:/…"
MAGIC_ONLY = frozenset({MAGIC})
CLI_ONLY = frozenset({CLI})

# Options every command of a front end takes, before its own.
COMMON = {
    CLI: (arg("--store", default=None,
              help="store folder (default: $JUPYTER_MLOPS_STORE or nearest .mlops)"),),
    MAGIC: (),
}

COMMANDS: tuple[Command, ...] = (
    Command("runs", "List runs, newest first.", (
        arg("-e", "--experiment", action="append", default=None),
        arg("-f", "--filter", default=None,
            help="e.g. \"metrics.acc > 0.9 and params.C = 0.5\""),
        # The terminal's -o is --output (replay, score), so it does not take this one.
        arg("-o", "--order-by", action="append", default=None, only=MAGIC,
            help="e.g. \"metrics.acc DESC\"; repeat for several keys"),
        arg("-n", "--max-results", type=int, default=None),
    )),
    # The terminal shows runs only; a model version's lineage is the notebook's.
    Command("show", {MAGIC: "Show a run, or a model version with its lineage.",
                     CLI: "One run in full."}, (
        arg("run", only=MAGIC, help="run id or unique prefix, or a model: name@alias, name/3"),
        arg("run", only=CLI, help="run id or unique prefix"),
    )),
    Command("compare", "Runs side by side, differences highlighted; or two evaluations.", (
        arg("runs", nargs="+", help="run ids (prefixes), or two model URIs (name@alias, name/3); "
                                    "one run alone: it and its child runs"),
        arg("--children", action="store_true",
            help="each run with its child runs (a search's candidates)"),
        arg("--all", action="store_true",
            help="show every param and metric, not only those that differ"),
        arg("--evaluations", action="store_true",
            help="compare the latest evaluations of two runs, model versions or evaluation "
                 "ids: deltas and the better one per metric"),
    ), front_ends=MAGIC_ONLY),
    Command("history", "Cell executions in the order they ran.", (
        arg("--session", default=None, help="a session id, or 'all'"),
        arg("--all", action="store_true", help="every session in the store"),
    )),
    Command("register", "Register a model version (default: the latest tracked run's model).", (
        arg("name"),
        arg("--var", default=None, help="the notebook variable holding the model; A,B "
                                          "registers several as one pipeline, in order"),
        arg("--run", default=None, help="take the model saved by this run"),
        arg("--alias", default=None),
    ), front_ends=MAGIC_ONLY),
    Command("models", "List registered models."),
    Command("card", "The model card of a version: data, evaluations, drift, lineage, "
            "environment, gates and what its owner says of it.", (
        arg("uri", metavar="URI", help="a version, e.g. churn@champion or churn/3"),
        arg("-o", "--output", default=None, metavar="FILE",
            help="write it as Markdown (.md) or a standalone HTML page (.html)"),
    )),
    Command("status", "How far each model is: tracked, lineage, gated, served, monitored, "
            "retrained automatically, and the next step."),
    Command("alias", "Point NAME@ALIAS at VERSION (--delete removes it).", (
        arg("name"),
        arg("version", nargs="?", type=int),
        arg("alias"),
        arg("--delete", action="store_true"),
    ), front_ends=MAGIC_ONLY),
    Command("trust", "Vouch for a version (its bytes, row, replay script, alias) made by someone "
                     "else or an older jupyter-mlops (unpickling runs code: only for stores you "
                     "trust).", (
        arg("uri", nargs="+", help=MODEL_URI),
    ), front_ends=CLI_ONLY),
    Command("provenance", "Which cell execution wrote a file, and where what it wrote came "
                          "from.", (
        arg("path", help="the file, as the notebook wrote it (relative to its folder)"),
    )),
    Command("replay", "The script that rebuilds a model from the cell history.", (
        arg("uri", help=MODEL_URI),
        arg("--verify", action="store_true",
            help="run it in a fresh interpreter and compare with the registry"),
        arg("--restore-data", action="store_true",
            help="with --verify: put the files its runs read back from their kept bytes"),
        # The notebook gets the script object, which saves itself.
        arg("-o", "--output", only=CLI, help="write the script to this file"),
    )),
    Command("export", "Write a version as an MLflow model folder, or a standalone skops, "
            "ONNX or native file with a sha256 manifest.", (
        arg("uri"),
        arg("path"),
        arg("--format", default="mlflow",
            help="mlflow (default): an MLflow model folder; skops, onnx (checked against the "
                 "model on its reference sample) or native (XGBoost JSON, LightGBM text, "
                 "CatBoost .cbm, .keras)"),
        arg("--allow-pickle", action="store_true",
            help="export a version your key did not sign (it is unpickled to be exported)"),
    ), front_ends=CLI_ONLY),
    Command("import", "Register a model trained elsewhere: an MLflow model folder, a "
            "models:/ or runs:/ URI of a tracking server, or a model file.", (
        arg("source", metavar="SOURCE",
            help="an MLflow model folder, models:/NAME/VERSION, runs:/RUN_ID/PATH, or a "
                 ".json/.ubj (XGBoost), .txt (LightGBM), .cbm, .keras, .onnx, .skops or .pkl "
                 "file"),
        arg("name", metavar="NAME", help="the registered model it becomes a version of"),
        arg("--sample", default=None, metavar="FILE",
            help="a CSV or Parquet file of inputs: the signature and the reference sample"),
        arg("--tracking-uri", default=None, metavar="URI",
            help="the tracking server of a models:/ or runs:/ SOURCE"),
        arg("--alias", default=None),
        arg("--trust", action="store_true",
            help="you vouch for a source that runs code when loaded (a pickle, skops types "
                 "outside its trusted list, a Keras Lambda, an mlflow.pyfunc flavor)"),
    ), front_ends=CLI_ONLY),
    Command("build", "Write a container build context that serves a version on port 8000 "
            "(Dockerfile, model, pinned requirements, jupyter-mlops wheel, entrypoint).", (
        arg("uri", help=MODEL_URI),
        arg("out", metavar="DIR", help="a new (or empty) folder"),
        arg("--allow-pickle", action="store_true",
            help="build from a version your key did not sign"),
    ), front_ends=CLI_ONLY),
    Command("data", "Show the data policy (what bytes runs keep), or change it.", (
        arg("action", metavar="policy", help="policy: show or change the data policy"),
        arg("--keep", action="store_true", group="keep", help="keep the bytes of data runs read"),
        arg("--no-keep", action="store_true", group="keep", help="fingerprint data only"),
        arg("--max-dataset", default=None, metavar="SIZE", help="cap a dataset, e.g. 256MB"),
        arg("--max-store", default=None, metavar="SIZE", help="cap all kept data, e.g. 2GB"),
        arg("--files", action="store_true", group="files",
            help="record the files tracked cells read"),
        arg("--no-files", action="store_true", group="files", help="do not record them"),
        arg("--folder", action="append", default=None, metavar="PATH",
            help="a folder whose files count too, besides the working directory"),
        arg("--reset", action="store_true", help="back to the default policy"),
    ), front_ends=MAGIC_ONLY),
    Command("datasets", "Datasets with the runs and model versions that used them.", (
        arg("-n", "--max-results", type=int, default=50, only=CLI),
    )),
    Command("gc", "List artifact files nothing refers to; delete them only with --delete.", (
        arg("--dry-run", action="store_true", group="gc", help="list them (the default)"),
        arg("--delete", action="store_true", group="gc", help="delete them"),
    ), front_ends=CLI_ONLY),
    Command("store", "Show the store in use, or switch to PATH.", (
        arg("path", nargs="?", default=None),
    ), front_ends=MAGIC_ONLY),
    Command("evaluate",
            "Evaluate MODEL on X and Y: metrics, curves, importance; stored with the run.", (
                arg("model", metavar="MODEL", help="variable holding a fitted model"),
                arg("X", metavar="X", help="variable holding the features"),
                arg("y", metavar="Y", help="variable holding the true values"),
                arg("-n", "--name", default=None, help="name of this evaluation"),
                arg("--model-uri", default=None,
                    help="the model version evaluated, e.g. models:/churn/3"),
                arg("--no-importance", action="store_true",
                    help="skip the permutation importance"),
            ), front_ends=MAGIC_ONLY),
    Command("drift", "Data drift between two DataFrames: REF (training) and CUR (new data).", (
        arg("reference", metavar="REF", help="variable holding the reference data"),
        arg("current", metavar="CUR", help="variable holding the current data"),
        arg("-c", "--columns", nargs="+", default=None, metavar="COLUMN",
            help="only these columns (space- or comma-separated)"),
        arg("-s", "--stattest", action="append", default=None, metavar="TEST|COLUMN=TEST",
            help="ks, wasserstein, psi, jensenshannon, kl_div, chisquare, ztest, anderson, "
                 "cramer_von_mises, hellinger or energy; for every column, or COLUMN=TEST "
                 "(repeat)"),
        arg("-t", "--threshold", action="append", default=None, metavar="VALUE|COLUMN=VALUE",
            help="replace the tests' default thresholds; for every column, or COLUMN=VALUE "
                 "(repeat)"),
        arg("--drift-share", type=float, default=0.5, metavar="SHARE",
            help="dataset drift when at least this share of columns drifted (default 0.5)"),
        arg("--model", default=None, metavar="URI",
            help="model URI to link the report to, e.g. models:/churn/3"),
        arg("--estimator", default=None, metavar="VAR",
            help="variable holding a fitted estimator: its predictions are tested too "
                 "(prediction drift)"),
        arg("--target", default=None, metavar="COLUMN", help="the target column (target drift)"),
        arg("--save-profile", action="store_true",
            help="also store the reference profile for cheaper later reports"),
    ), front_ends=MAGIC_ONLY,
    description="Compare CUR with REF column by column and show the drift dashboard."),
    # The notebook's server runs in the background of the kernel (so it takes a free port,
    # never prints its token into the saved notebook, and is stopped and listed from there);
    # the terminal's runs in the foreground until Ctrl-C.
    Command("serve", {MAGIC: "Serve a version over HTTP in the background; returns the server.",
                      CLI: "Serve a version over HTTP (MLflow's scoring protocol)."}, (
        arg("uri", nargs="?", default=None, metavar="URI", help=MODEL_URI, only=MAGIC),
        arg("uri", help=MODEL_URI, only=CLI),
        arg("--host", default="127.0.0.1",
            help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes the model to the "
                 "network: scoring needs no token)"),
        arg("--allowed-host", action="append", metavar="NAME",
            help="also answer requests to this host name (repeat; * for any); loopback names "
                 "always"),
        arg("--token", default=None, only=MAGIC,
            help="the token POST /labels and /reload need (default: "
                 "$JUPYTER_MLOPS_SERVE_TOKEN, else a new one, in server.token)"),
        arg("--token", default=None, only=CLI,
            help="the token POST /labels and /reload need (default: "
                 "$JUPYTER_MLOPS_SERVE_TOKEN, else a new one, printed)"),
        arg("--port", type=int, default=0, only=MAGIC, help="port (default: a free one)"),
        arg("--port", type=int, default=8080, only=CLI,
            help="port (default 8080; 0 picks a free one)"),
        arg("--challenger", default=None, metavar="URI", help="a second version to compare"),
        arg("--split", type=float, default=None, metavar="SHARE",
            help="share of requests the challenger answers, e.g. 0.1"),
        arg("--shadow", action="store_true",
            help="the challenger scores every request; the champion answers"),
        arg("--max-body-mb", type=float, default=20.0,
            help="larger request bodies get 413 (default 20)"),
        arg("--workers", type=int, default=1, only=CLI,
            help="processes answering on the port, each with its own model and predictions "
                 "log (default 1; one per core is a good start)"),
        arg("--threads", type=int, default=None, only=CLI,
            help="scoring threads of each process"),
        arg("--watch", type=float, default=2.0, metavar="SECONDS", only=CLI,
            help="how often to check whether the alias moved (0: never)"),
        arg("--no-log", action="store_true", help="do not log predictions"),
        arg("--stop", action="store_true", only=MAGIC,
            help="stop the servers this kernel started (all, or URI's)"),
        arg("--list", action="store_true", only=MAGIC, help="list this kernel's servers"),
    ), description={MAGIC: "Serve URI at http://127.0.0.1:PORT/invocations (MLflow's scoring "
                           "protocol) while the kernel keeps running cells."}),
    Command("score", "Score a CSV or Parquet file in chunks.", (
        arg("uri"),
        arg("input", help="a .csv (.csv.gz, .tsv) or .parquet file"),
        arg("-o", "--output", required=True, help="a .csv or .parquet file"),
        arg("--chunk-size", type=int, default=100_000, help="rows per chunk"),
        arg("--prediction-column", default="prediction"),
        arg("--only-predictions", action="store_true",
            help="write the predictions alone, not the input columns beside them"),
        arg("--no-progress", action="store_true"),
    ), front_ends=CLI_ONLY),
    Command("monitor", "Drift and metrics of a version on new data; exits 1 on an alert.", (
        arg("uri"),
        arg("--since", group="source",
            help="logged traffic of the last 90s, 15m, 1h, 7d … (default: the newest 100,000 "
                 "logged rows)"),
        arg("--batch", metavar="FILE", group="source",
            help="a CSV or Parquet file of new inputs"),
        arg("--labels", metavar="COL",
            help="the column of --batch holding the true values (metrics are computed on them)"),
        arg("--threshold", action="append", metavar="METRIC=VALUE",
            help="alert when METRIC is worse than VALUE, e.g. accuracy=0.9 (repeat)"),
        arg("--drift-share", type=float, default=0.5,
            help="dataset drift when this share of columns drifted (default 0.5)"),
        arg("--stattest", default=None, help="one drift test for every column"),
        arg("--retrain", metavar="NOTEBOOK", help="on an alert, execute this training notebook"),
        arg("--promote", metavar="METRIC",
            help="move the alias to the retrained version only when it is better on METRIC"),
        arg("--timeout", type=float, default=600,
            help="seconds per cell of the retraining notebook"),
    ), front_ends=CLI_ONLY),
    Command("ab", "Compare two served versions: agreement, and metrics once labels arrive.", (
        arg("uri_a"),
        arg("uri_b"),
        arg("--since", default=None, help="only traffic of the last 1h, 7d …"),
    ), front_ends=CLI_ONLY),
    Command("prune", "Delete logged requests (and their labels) older than a window.", (
        arg("--older-than", required=True, metavar="WINDOW",
            help="such as 30d, 12h or 3600 (seconds)"),
        arg("--model", default=None, help="only this model's requests"),
    ), front_ends=CLI_ONLY),
    Command("alerts", "Alerts recorded by monitoring (drift, metrics), newest first.", (
        arg("uri", nargs="?", default=None, metavar="URI",
            help="a model (all its versions) or one version: name@alias, name/3"),
        arg("--since", default=None, help="only the last 1h, 7d …"),
        # The notebook gets the whole DataFrame.
        arg("-n", "--max-results", type=int, default=50, only=CLI),
    )),
    Command("env", "The environment of this kernel session, or of the session that made RUN.", (
        arg("run", nargs="?", default=None, metavar="RUN",
            help="run id or unique prefix (default: this kernel's session)"),
        arg("--session", default=None, help="a session id instead of a run"),
    ), front_ends=MAGIC_ONLY),
    Command("sync", "Push runs and registered versions to an MLflow tracking server; sends "
                    "only what changed.", (
        arg("uri", metavar="URI", help="the tracking server, e.g. http://mlflow:5000 "
                                       "(auth: $MLFLOW_TRACKING_TOKEN, or "
                                       "$MLFLOW_TRACKING_USERNAME and _PASSWORD)"),
        arg("-e", "--experiment", action="append", default=None,
            help="only this experiment (repeat); default: all"),
        arg("--no-models", action="store_true", help="runs only, no registered versions"),
        arg("--workers", type=int, default=4, help="parallel uploads (default 4)"),
        arg("--timeout", type=float, default=60, help="seconds per request (default 60)"),
    )),
    Command("pull", "Bring another person's runs from an MLflow tracking server into this "
                    "store, marked with their origin.", (
        arg("uri", metavar="URI", help="the tracking server, e.g. http://mlflow:5000"),
        arg("-e", "--experiment", action="append", required=True,
            help="the experiment to pull (repeat)"),
        arg("--timeout", type=float, default=60, help="seconds per request (default 60)"),
    )),
    Command("execute", "Run a notebook headless in a fresh kernel and report what it stored.", (
        arg("notebook"),
        arg("--timeout", type=float, default=600, help="seconds per cell"),
    ), front_ends=CLI_ONLY),
    Command("check", "Gate a candidate version on a holdout against another version (metrics "
            "as MLflow's MetricThreshold, signature, drift, lineage, replay); exits 1 when a "
            "gate fails.", (
        arg("candidate", metavar="CANDIDATE", help="the candidate version, e.g. churn/4"),
        arg("--against", default=None, metavar="URI", help="the baseline, e.g. churn@champion"),
        arg("--data", required=True, metavar="FILE", help="the holdout, CSV or Parquet"),
        arg("--target", required=True, metavar="COLUMN", help="the holdout's label column"),
        arg("--threshold", action="append", default=[], metavar="METRIC=VALUE",
            help="the candidate's value must reach VALUE"),
        arg("--min-delta", action="append", default=[], metavar="METRIC=VALUE",
            help="the candidate must beat the baseline by VALUE"),
        arg("--min-relative", action="append", default=[], metavar="METRIC=SHARE",
            help="the candidate must beat the baseline by SHARE of its value"),
        arg("--max-drift", type=float, default=None, metavar="SHARE",
            help="at most this share of columns may drift from the training sample"),
        arg("--no-replay", action="store_true", help="do not verify the candidate's replay"),
        arg("--json", default=None, metavar="FILE", help="write the result as JSON here"),
        arg("--markdown", default=None, metavar="FILE", help="write the report here too"),
    ), front_ends=CLI_ONLY),
    Command("scheduler", "Fire the store's triggers (schedules, watched folders, alerts, code "
            "changes) without JupyterLab; --list shows them.", (
        arg("--interval", type=float, default=15.0, metavar="SECONDS",
            help="how often the triggers are checked"),
        arg("--once", action="store_true", help="check once, wait for the firings, exit"),
        arg("--list", action="store_true", help="list the triggers and their last firing"),
    ), front_ends=CLI_ONLY),
    Command("pipeline", "Cut a model's replay slice into a pipeline of cached steps (build), "
            "run it with parameters (run), compare its model with the slice's (verify), or "
            "vouch for steps you edited (trust).", (
        arg("action", choices=("build", "run", "verify", "trust")),
        arg("target", metavar="URI_OR_NAME",
            help="build: the model, e.g. churn@champion; else the pipeline's name or folder"),
        arg("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
            help="run: a parameter, read as the type of its default"),
        arg("-f", "--parameters-file", default=None, metavar="YAML",
            help="run: parameters from a YAML mapping (-p wins)"),
        arg("-o", "--output", default=None, metavar="DIR",
            help="build: the folder to write (default: <store>/pipelines/NAME)"),
        arg("--name", default=None, help="build: the pipeline's name (default: the model's)"),
        arg("--run", default=None, metavar="RUN", help="verify: this pipeline run, not the latest"),
    ), front_ends=CLI_ONLY),
    Command("run", "Run a notebook with parameters (papermill's conventions) as one run whose "
            "children are its tracked cells; exits 1 when a cell fails.", (
        arg("notebook"),
        arg("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
            help="a parameter; numbers, True/False and None are read as such"),
        arg("-r", "--raw", action="append", default=[], metavar="NAME=VALUE",
            help="a parameter kept as a string"),
        arg("-f", "--parameters-file", default=None, metavar="YAML",
            help="parameters from a YAML mapping (-p and -r win)"),
        arg("-o", "--output", default=None, help="write the executed notebook here too"),
        arg("-e", "--experiment", default="default"),
        arg("--name", default=None, help="the run's name (default: the notebook's)"),
        arg("--timeout", type=float, default=600, help="seconds per cell"),
    ), front_ends=CLI_ONLY),
)
