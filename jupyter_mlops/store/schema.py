"""The store's schema as an ordered list of migrations.

``PRAGMA user_version`` holds the number of migrations applied. Each migration runs in
its own ``BEGIN IMMEDIATE`` transaction together with its bookkeeping row, so a crash or
a second process opening the same store at the same moment can never apply a step twice
or leave half of one behind. Migrations are plain SQL so that opening a store needs
nothing beyond the standard library.
"""

from __future__ import annotations

from typing import NamedTuple


class Migration(NamedTuple):
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs",
        """
        CREATE TABLE experiments (
            experiment_id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created REAL NOT NULL
        );
        CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),
            name TEXT,
            status TEXT NOT NULL,
            start_time REAL NOT NULL,
            end_time REAL,
            heartbeat REAL NOT NULL,
            pid INTEGER,
            host TEXT,
            proc_start TEXT,
            error_type TEXT,
            error TEXT,
            traceback TEXT
        );
        CREATE INDEX runs_experiment_start ON runs(experiment_id, start_time);
        CREATE INDEX runs_status ON runs(status);
        CREATE TABLE params (
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (run_id, key)
        ) WITHOUT ROWID;
        CREATE TABLE metrics (
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            key TEXT NOT NULL,
            step INTEGER NOT NULL,
            value REAL,
            is_nan INTEGER NOT NULL DEFAULT 0,
            timestamp REAL NOT NULL
        );
        CREATE INDEX metrics_run_key_step ON metrics(run_id, key, step);
        CREATE TABLE tags (
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (run_id, key)
        ) WITHOUT ROWID;
        """,
    ),
    Migration(
        2,
        "cell capture",
        """
        CREATE TABLE sessions (
            session_id TEXT PRIMARY KEY,
            pid INTEGER,
            host TEXT,
            proc_start TEXT,
            started REAL NOT NULL,
            notebook TEXT,
            python TEXT
        );
        CREATE TABLE cells (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(session_id),
            execution_count INTEGER,
            cell_id TEXT,
            source TEXT NOT NULL,
            defined TEXT NOT NULL DEFAULT '[]',
            used TEXT NOT NULL DEFAULT '[]',
            started REAL NOT NULL,
            duration_s REAL,
            status TEXT NOT NULL,
            error TEXT,
            run_id TEXT REFERENCES runs(run_id)
        );
        CREATE INDEX cells_session ON cells(session_id, id);
        CREATE INDEX cells_run ON cells(run_id);
        ALTER TABLE runs ADD COLUMN session_id TEXT REFERENCES sessions(session_id);
        ALTER TABLE runs ADD COLUMN cell_id TEXT;
        ALTER TABLE runs ADD COLUMN execution_count INTEGER;
        ALTER TABLE runs ADD COLUMN source TEXT;
        """,
    ),
    Migration(
        3,
        "artifacts and datasets",
        """
        CREATE TABLE artifacts (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            media_type TEXT,
            created REAL NOT NULL,
            UNIQUE (run_id, name)
        );
        CREATE INDEX artifacts_sha256 ON artifacts(sha256);
        CREATE TABLE datasets (
            fingerprint TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            shape TEXT NOT NULL,
            columns TEXT,
            dtypes TEXT,
            created REAL NOT NULL
        );
        CREATE TABLE run_datasets (
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            fingerprint TEXT NOT NULL REFERENCES datasets(fingerprint),
            PRIMARY KEY (run_id, name, role)
        ) WITHOUT ROWID;
        """,
    ),
    Migration(
        4,
        "latest metrics",
        # search_runs reads one row per (run, metric) instead of scanning every step.
        """
        CREATE TABLE latest_metrics (
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            key TEXT NOT NULL,
            step INTEGER NOT NULL,
            value REAL,
            is_nan INTEGER NOT NULL DEFAULT 0,
            timestamp REAL NOT NULL,
            PRIMARY KEY (run_id, key)
        ) WITHOUT ROWID;
        INSERT INTO latest_metrics (run_id, key, step, value, is_nan, timestamp)
        SELECT m.run_id, m.key, m.step, m.value, m.is_nan, m.timestamp
        FROM metrics m
        WHERE m.rowid = (
            SELECT m2.rowid FROM metrics m2
            WHERE m2.run_id = m.run_id AND m2.key = m.key
            ORDER BY m2.step DESC, m2.timestamp DESC, m2.rowid DESC LIMIT 1
        );
        CREATE INDEX latest_metrics_key_value ON latest_metrics(key, value);
        CREATE INDEX runs_start ON runs(start_time);
        """,
    ),
)

# Evaluations and drift reports keep their numbers as strict JSON (NaN as null), and their
# figures as artifacts named by sha256.
MIGRATIONS += (
    Migration(
        5,
        "evaluations",
        """
        CREATE TABLE evaluations (
            evaluation_id TEXT PRIMARY KEY,
            run_id TEXT REFERENCES runs(run_id),
            model_uri TEXT,
            name TEXT,
            task TEXT NOT NULL,
            created REAL NOT NULL,
            dataset_fingerprint TEXT,
            target_fingerprint TEXT,
            n_rows INTEGER,
            metrics TEXT NOT NULL,
            details TEXT,
            figures TEXT
        );
        CREATE INDEX evaluations_run ON evaluations(run_id);
        CREATE INDEX evaluations_model ON evaluations(model_uri, created);
        """,
    ),
    Migration(
        6,
        "drift reports",
        """
        CREATE TABLE drift_reports (
            report_id TEXT PRIMARY KEY,
            run_id TEXT REFERENCES runs(run_id),
            model_uri TEXT,
            created REAL NOT NULL,
            reference_fingerprint TEXT,
            current_fingerprint TEXT,
            reference_rows INTEGER NOT NULL,
            current_rows INTEGER NOT NULL,
            n_columns INTEGER NOT NULL,
            n_drifted INTEGER NOT NULL,
            share_drifted REAL NOT NULL,
            drift_share REAL NOT NULL,
            dataset_drift INTEGER NOT NULL,
            columns TEXT NOT NULL,
            options TEXT,
            distributions TEXT,
            reference_profile TEXT
        );
        CREATE INDEX drift_reports_model ON drift_reports(model_uri, created);
        CREATE INDEX drift_reports_run ON drift_reports(run_id);
        """,
    ),
)

# The registry: a version is immutable bytes (content-addressed, sha256) with its lineage;
# aliases are the only thing that moves.
MIGRATIONS += (
    Migration(
        7,
        "model registry",
        """
        CREATE TABLE models (
            name TEXT PRIMARY KEY,
            created REAL NOT NULL
        );
        CREATE TABLE model_versions (
            name TEXT NOT NULL REFERENCES models(name),
            version INTEGER NOT NULL,
            created REAL NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            serializer TEXT NOT NULL,
            framework TEXT,
            class_name TEXT,
            run_id TEXT REFERENCES runs(run_id),
            cell INTEGER REFERENCES cells(id),
            variable TEXT,
            signature TEXT,
            datasets TEXT NOT NULL DEFAULT '[]',
            reference_sha256 TEXT,
            reference_rows INTEGER,
            python_version TEXT,
            library_versions TEXT,
            PRIMARY KEY (name, version)
        );
        CREATE UNIQUE INDEX model_versions_bytes ON model_versions(name, sha256);
        CREATE INDEX model_versions_run ON model_versions(run_id);
        CREATE TABLE aliases (
            name TEXT NOT NULL,
            alias TEXT NOT NULL,
            version INTEGER NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (name, alias),
            FOREIGN KEY (name, version) REFERENCES model_versions(name, version)
        ) WITHOUT ROWID;
        ALTER TABLE sessions ADD COLUMN cwd TEXT;
        """,
    ),
)

# Serving and monitoring. One predictions row per request and version that scored it: the
# request body exactly as received (JSON or CSV, with its content type) and the outputs as
# strict JSON; labels arrive later, per request row.
# A monitor is one check of a version; its steps (drift, metrics, alert, retrain, promote)
# are appended as they happen, so an interrupted retrain still leaves its trail.
MIGRATIONS += (
    Migration(
        8,
        "serving and monitoring",
        """
        CREATE TABLE predictions (
            id INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL,
            created REAL NOT NULL,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            role TEXT NOT NULL,
            answered INTEGER NOT NULL,
            n_rows INTEGER NOT NULL,
            content_type TEXT NOT NULL,
            inputs TEXT NOT NULL,
            outputs TEXT NOT NULL,
            latency_ms REAL
        );
        CREATE INDEX predictions_model_created ON predictions(name, version, created);
        CREATE INDEX predictions_request ON predictions(request_id);
        CREATE TABLE prediction_labels (
            request_id TEXT NOT NULL,
            row INTEGER NOT NULL,
            label TEXT NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (request_id, row)
        ) WITHOUT ROWID;
        CREATE TABLE monitors (
            monitor_id TEXT PRIMARY KEY,
            created REAL NOT NULL,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            model_uri TEXT NOT NULL,
            source TEXT NOT NULL,
            n_rows INTEGER NOT NULL,
            drift_report_id TEXT REFERENCES drift_reports(report_id),
            dataset_drift INTEGER,
            evaluation_id TEXT REFERENCES evaluations(evaluation_id),
            metrics TEXT,
            thresholds TEXT,
            alert INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX monitors_model ON monitors(name, version, created);
        CREATE TABLE monitor_steps (
            monitor_id TEXT NOT NULL REFERENCES monitors(monitor_id),
            seq INTEGER NOT NULL,
            created REAL NOT NULL,
            step TEXT NOT NULL,
            status TEXT NOT NULL,
            message TEXT NOT NULL,
            details TEXT,
            PRIMARY KEY (monitor_id, seq)
        ) WITHOUT ROWID;
        CREATE TABLE alerts (
            alert_id TEXT PRIMARY KEY,
            created REAL NOT NULL,
            monitor_id TEXT REFERENCES monitors(monitor_id),
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            model_uri TEXT NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            details TEXT
        );
        CREATE INDEX alerts_created ON alerts(created);
        CREATE INDEX alerts_model ON alerts(name, version, created);
        CREATE TABLE retrains (
            retrain_id TEXT PRIMARY KEY,
            monitor_id TEXT REFERENCES monitors(monitor_id),
            started REAL NOT NULL,
            finished REAL,
            name TEXT NOT NULL,
            notebook TEXT NOT NULL,
            status TEXT NOT NULL,
            old_version INTEGER NOT NULL,
            new_version INTEGER,
            run_id TEXT REFERENCES runs(run_id),
            metric TEXT,
            old_value REAL,
            new_value REAL,
            promoted INTEGER NOT NULL DEFAULT 0,
            message TEXT
        );
        """,
    ),
)

# A finished run's params, latest metrics and tags as one JSON text, written when the run
# ends (and cleared by any later write), so search_runs decodes one value per run instead
# of one row per param and metric.
MIGRATIONS += (
    Migration(9, "run summaries", "ALTER TABLE runs ADD COLUMN summary TEXT"),
)

# This user's vouching for pickled bytes: an HMAC-SHA256 of their sha256 made with a key
# kept outside the store (see jupyter_mlops.store.signing). Whoever can write the store but not
# read the key cannot make pickled bytes of their own loadable without allow_pickle=True.
MIGRATIONS += (
    Migration(
        10,
        "signatures",
        """
        CREATE TABLE signatures (
            sha256 TEXT PRIMARY KEY,
            hmac TEXT NOT NULL,
            created REAL NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
)

# The same key signs the registry rows that decide what runs: a version's binding to its
# bytes (and to what serving and exports read from its row), an alias's binding to a
# version, and the sha256 of the replay script cut when the version was registered. Rows
# written before this step carry NULL: loading them asks the user to vouch once.
MIGRATIONS += (
    Migration(
        11,
        "signed registry rows",
        """
        ALTER TABLE model_versions ADD COLUMN hmac TEXT;
        ALTER TABLE model_versions ADD COLUMN replay_sha256 TEXT;
        ALTER TABLE model_versions ADD COLUMN replay_hmac TEXT;
        ALTER TABLE aliases ADD COLUMN hmac TEXT;
        """,
    ),
)

# A child run (a search's candidate, one of several fits in a cell, a nested start_run)
# names its parent in a column, so listings group children under their parent with an
# indexed lookup. Runs made before this step carry the parent in their parent_run_id tag;
# a tag naming no stored run is left a tag.
MIGRATIONS += (
    Migration(
        12,
        "parent runs",
        """
        ALTER TABLE runs ADD COLUMN parent_run_id TEXT REFERENCES runs(run_id);
        UPDATE runs SET parent_run_id = (
            SELECT t.value FROM tags t
            WHERE t.run_id = runs.run_id AND t.key = 'parent_run_id'
              AND t.value IN (SELECT r.run_id FROM runs r WHERE r.run_id != runs.run_id)
        );
        CREATE INDEX runs_parent ON runs(parent_run_id);
        """,
    ),
)

# What a session ran on and what each cell cost. An environment (Python, platform, installed
# distributions) is one JSON record named by its sha256, shared by the sessions of one
# interpreter and signed like the registry rows, because exports copy versions from it
# into requirement files; a session holds its git state. A cell holds the process's CPU
# time while it ran and its resident memory at the start and at the peak.
MIGRATIONS += (
    Migration(
        13,
        "environments and cell resources",
        """
        CREATE TABLE environments (
            sha256 TEXT PRIMARY KEY,
            data TEXT NOT NULL,
            hmac TEXT,
            created REAL NOT NULL
        ) WITHOUT ROWID;
        ALTER TABLE sessions ADD COLUMN environment TEXT REFERENCES environments(sha256);
        ALTER TABLE sessions ADD COLUMN git_commit TEXT;
        ALTER TABLE sessions ADD COLUMN git_branch TEXT;
        ALTER TABLE sessions ADD COLUMN git_dirty INTEGER;
        ALTER TABLE cells ADD COLUMN cpu_time_s REAL;
        ALTER TABLE cells ADD COLUMN start_rss INTEGER;
        ALTER TABLE cells ADD COLUMN peak_rss INTEGER;
        """,
    ),
)

# What an execution changed, for lineage: ``unchanged`` lists the names it bound to the
# value they already held (an import cell run again), which redefine nothing; ``modified``
# the names whose object it may have changed in place (a method call, an item or attribute
# store), which does not make a run that read them stale in the same way.
# ``statements_run`` is how many top-level statements of a failed execution finished before
# it raised (NULL: all of them), so the names those bound count too.
MIGRATIONS += (
    Migration(
        14,
        "execution effects",
        """
        ALTER TABLE cells ADD COLUMN unchanged TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE cells ADD COLUMN modified TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE cells ADD COLUMN statements_run INTEGER;
        """,
    ),
)

# The files an execution wrote (opened for writing from the kernel's own thread), with the
# sha256 and size they had when it ended: which execution made the file on disk, and so
# which model a pickle holds.
MIGRATIONS += (
    Migration(
        15,
        "files cells write",
        """
        CREATE TABLE cell_files (
            cell INTEGER NOT NULL REFERENCES cells(id),
            path TEXT NOT NULL,
            sha256 TEXT,
            size INTEGER,
            PRIMARY KEY (cell, path)
        ) WITHOUT ROWID;
        CREATE INDEX cell_files_path ON cell_files(path);
        """,
    ),
)

# The sha256 of each 4 MB chunk of a large pickled file, signed as a statement binding them
# to the file's sha256 (see jupyter_mlops.store.chunks), so a load checks the chunks on two
# threads instead of hashing the whole file on one. NULL: the file is checked whole.
MIGRATIONS += (
    Migration(
        16,
        "chunk digests",
        """
        ALTER TABLE signatures ADD COLUMN chunk_size INTEGER;
        ALTER TABLE signatures ADD COLUMN chunks TEXT;
        ALTER TABLE signatures ADD COLUMN chunks_hmac TEXT;
        """,
    ),
)

# Schedules and triggers (monitoring/triggers.py): what fires a notebook run, signed by its
# author since firing runs code; and every firing, missed ones included.
MIGRATIONS += (
    Migration(
        17,
        "triggers",
        """
        CREATE TABLE triggers (
            name TEXT PRIMARY KEY,
            created REAL NOT NULL,
            kind TEXT NOT NULL,
            spec TEXT NOT NULL,
            notebook TEXT NOT NULL,
            parameters TEXT NOT NULL,
            model TEXT,
            gate TEXT,
            webhook TEXT,
            hmac TEXT,
            enabled INTEGER NOT NULL DEFAULT 1,
            state TEXT,
            last_checked REAL
        );
        CREATE TABLE firings (
            firing_id TEXT PRIMARY KEY,
            trigger TEXT NOT NULL,
            started REAL NOT NULL,
            finished REAL,
            status TEXT NOT NULL,
            reason TEXT NOT NULL,
            pid INTEGER,
            host TEXT,
            proc_start TEXT,
            run_id TEXT,
            version INTEGER,
            promoted INTEGER NOT NULL DEFAULT 0,
            message TEXT
        );
        CREATE INDEX firings_trigger ON firings(trigger, started);
        """,
    ),
)

# What a person says about a version (registry/cards.py): description, intended use, owner,
# limitations and tags, as MLflow's model version description and tags.
MIGRATIONS += (
    Migration(
        18,
        "version notes",
        """
        CREATE TABLE version_notes (
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (name, version, key)
        ) WITHOUT ROWID;
        """,
    ),
)

# The sidebar asks every second which sessions a kernel (by its process) or a notebook (by
# its path) recorded, and a rename moves the sessions of a path: indexed, so a store of
# many sessions answers without reading them all.
MIGRATIONS += (
    Migration(
        19,
        "sessions by process and notebook",
        """
        CREATE INDEX sessions_pid ON sessions(pid);
        CREATE INDEX sessions_notebook ON sessions(notebook);
        """,
    ),
)

# Kept data: the bytes behind a fingerprint, so a run's inputs can be had back. A DataFrame
# is kept as Parquet row chunks, an array as one .npy, a file as it is; each chunk is an
# artifact named by its sha256, so the chunks two versions of a dataset share are stored
# once. ``data_settings`` holds the store's data policy; ``run_datasets.mtime`` the
# modification time of a file a run read (role ``file``).
MIGRATIONS += (
    Migration(
        20,
        "kept data",
        """
        CREATE TABLE data_settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE kept_data (
            fingerprint TEXT PRIMARY KEY REFERENCES datasets(fingerprint),
            format TEXT NOT NULL,
            meta TEXT,
            size INTEGER NOT NULL,
            created REAL NOT NULL
        );
        CREATE TABLE kept_chunks (
            fingerprint TEXT NOT NULL REFERENCES kept_data(fingerprint),
            seq INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            rows INTEGER,
            size INTEGER NOT NULL,
            PRIMARY KEY (fingerprint, seq)
        ) WITHOUT ROWID;
        CREATE INDEX kept_chunks_sha256 ON kept_chunks(sha256);
        ALTER TABLE run_datasets ADD COLUMN mtime REAL;
        """,
    ),
)

# What was pushed to which MLflow tracking server (jupyter_mlops.teamsync): one row per
# thing (an experiment, a run, a model version, an alias) and server, with the remote id and
# the state sent, so a sync sends only what changed and resumes after a crash; a row in
# state 'creating' marks a remote object that may exist without its id recorded yet. Who
# made what: the OS login or a configured name on sessions, runs and versions. A run pulled
# from a server names it in ``origin`` (NULL: made here).
MIGRATIONS += (
    Migration(
        21,
        "team sync and users",
        """
        CREATE TABLE synced (
            remote TEXT NOT NULL,
            kind TEXT NOT NULL,
            local TEXT NOT NULL,
            remote_id TEXT,
            state TEXT NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (remote, kind, local)
        ) WITHOUT ROWID;
        ALTER TABLE sessions ADD COLUMN user TEXT;
        ALTER TABLE runs ADD COLUMN user TEXT;
        ALTER TABLE runs ADD COLUMN origin TEXT;
        ALTER TABLE model_versions ADD COLUMN user TEXT;
        """,
    ),
)

# The data quality checks run on a model's training data when it is registered: one row a
# dataset (by fingerprint, so versions trained on the same rows share it), the verdicts as
# JSON beside the counts the lineage shows. ``dvc_files``: a file a run read that DVC
# tracks, by its fingerprint: DVC's md5, the git repository, the path in it and the
# revision whose DVC file names these bytes (NULL: not committed there).
MIGRATIONS += (
    Migration(
        22,
        "data quality of training data, files under DVC",
        """
        CREATE TABLE data_quality (
            fingerprint TEXT PRIMARY KEY REFERENCES datasets(fingerprint),
            ok INTEGER NOT NULL,
            failed INTEGER NOT NULL,
            rows INTEGER NOT NULL,
            checks TEXT NOT NULL,
            created REAL NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE dvc_files (
            fingerprint TEXT NOT NULL,
            md5 TEXT NOT NULL,
            repo TEXT NOT NULL,
            path TEXT NOT NULL,
            rev TEXT,
            recorded REAL NOT NULL,
            PRIMARY KEY (fingerprint, repo, path)
        ) WITHOUT ROWID;
        """,
    ),
)

# Registered versions pulled from a tracking server: read-only records of what a colleague
# registered there (the model stays on the server, loaded with mlflow from ``source``),
# keyed by the server they came from.
MIGRATIONS += (
    Migration(
        23,
        "pulled registered versions",
        """
        CREATE TABLE pulled_versions (
            origin TEXT NOT NULL,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            run_id TEXT,
            source TEXT,
            aliases TEXT NOT NULL DEFAULT '[]',
            tags TEXT NOT NULL DEFAULT '{}',
            user TEXT,
            created REAL,
            updated REAL NOT NULL,
            PRIMARY KEY (origin, name, version)
        ) WITHOUT ROWID;
        """,
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
