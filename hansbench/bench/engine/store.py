"""The results store: one SQLite database per results directory.

Tables: ``runs`` (suite, config, commit, versions, device, CPU model, threads, jobs, times), ``jobs`` (one per graph
node: key, ``node_type``, ids, status, error with traceback, the planner's reason for a
``not-applicable`` job, seconds) and ``rows`` (flat metric records). A job's rows and its status are written in one transaction: a crash loses
at most the job in flight. :meth:`ResultsStore.batch` writes several whole jobs in one transaction (one commit,
one sync, instead of one per job: the driver's batch of the results that arrived together).

One word, one meaning, in both tables: ``family`` is the registered metric that ran (a
job's, and the one that emitted a row); ``metric`` is a value's name (one family emits
several); ``node_type`` is what a job computed (data, model, maps, clustering, metric, ...).
The schema version is SQLite's ``user_version`` (:data:`SCHEMA_VERSION`); older stores are
migrated in place when opened (:func:`migrate`), newer ones are refused with a clear error.
No SQL outside this module: readers use the typed methods (:meth:`ResultsStore.latest_run`,
:meth:`ResultsStore.rows`, :meth:`ResultsStore.jobs`, :func:`read_latest_run` for a store that must
not be written).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hansbench.bench.engine import provenance

# ``family``: the registered metric that emitted the row (``timing`` for the harness's timer);
# ``metric``: the value's name (one family emits several).
ROW_COLUMNS = [
    "scenario", "seed", "model", "explainer", "clusterer", "rule", "family", "metric", "split", "stage", "detail",
    "value", "unit", "higher_is_better",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, suite TEXT, config TEXT, git_commit TEXT, versions TEXT,
    device TEXT, started REAL, finished REAL, status TEXT, cpu TEXT, gpu TEXT, threads INTEGER, jobs INTEGER,
    executor TEXT, wall_s REAL
);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY, run_id INTEGER, node_type TEXT, scenario TEXT, seed INTEGER, model TEXT,
    explainer TEXT, clusterer TEXT, family TEXT, status TEXT, error TEXT, seconds REAL, finished REAL, reason TEXT,
    rule TEXT DEFAULT ''
);
CREATE TABLE IF NOT EXISTS rows (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job_key TEXT REFERENCES jobs(key), scenario TEXT, seed INTEGER,
    model TEXT, explainer TEXT, clusterer TEXT, family TEXT, metric TEXT, split TEXT, stage TEXT, detail TEXT,
    value REAL, unit TEXT, higher_is_better INTEGER, rule TEXT DEFAULT ''
);
CREATE INDEX IF NOT EXISTS rows_job ON rows(job_key);
"""

SCHEMA_VERSION = 5
# version -> statements that bring a store of that version to the next one
_MIGRATIONS = {
    # v1 (hansbench <= 0.2 stores, user_version 0): jobs.kind held the node type and jobs.metric the
    # registered metric, which rows call ``family``
    1: ["ALTER TABLE jobs RENAME COLUMN kind TO node_type", "ALTER TABLE jobs RENAME COLUMN metric TO family"],
    # v2: jobs.error also held the planner's reason for a not-applicable job; v3 gives it a column of its own
    2: ["ALTER TABLE jobs ADD COLUMN reason TEXT",
        "UPDATE jobs SET reason = error, error = NULL WHERE status = 'not-applicable'"],
    # v3: a run records where it ran (CPU model, accelerator), its torch threads, jobs, executor and wall time;
    # older runs keep NULL there (not recorded)
    3: [f"ALTER TABLE runs ADD COLUMN {c}" for c in ("cpu TEXT", "gpu TEXT", "threads INTEGER", "jobs INTEGER",
                                                     "executor TEXT", "wall_s REAL")],
    # v4: a detection's flagging rule is an id like the clusterer (rows and jobs); older rows had none ('')
    4: ["ALTER TABLE rows ADD COLUMN rule TEXT DEFAULT ''", "ALTER TABLE jobs ADD COLUMN rule TEXT DEFAULT ''"],
}
NOT_APPLICABLE = "not-applicable"  # the status of a combination the planner left out (``jobs.reason`` says why)


class StoreVersionError(RuntimeError):
    """The results store was written by a newer hansbench (or is not a hansbench store)."""


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _stored_version(conn: sqlite3.Connection) -> int:
    """``user_version``; 0 means unversioned: 1 when the v1 tables exist, else a new, empty file."""
    v = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if v == 0 and "kind" in _columns(conn, "jobs"):
        return 1
    return v


def migrate(conn: sqlite3.Connection, path: Path | str = "results.sqlite") -> int:
    """Bring the store to :data:`SCHEMA_VERSION` atomically; returns the version it had (0: a new file)."""
    found = _stored_version(conn)
    if found > SCHEMA_VERSION:
        raise StoreVersionError(
            f"{path} has results-store schema version {found}, but this hansbench reads up to {SCHEMA_VERSION}: "
            "upgrade hansbench, or use another --out directory")
    if found == SCHEMA_VERSION:
        return found
    conn.execute("BEGIN")
    try:
        if found == 0:  # a new file: today's schema
            statements = [st for st in SCHEMA.split(";") if st.strip()]
        else:  # an older store: each version's steps to the next, in order
            statements = [st for v in range(found, SCHEMA_VERSION) for st in _MIGRATIONS[v]]
        for statement in statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


@dataclass(frozen=True)
class RunRecord:
    """One row of ``runs``: what was run (the resolved run configuration as stored), where, by which code, and
    how it ended."""

    id: int
    suite: str
    config: dict = field(default_factory=dict)  # {} when the stored JSON is unreadable
    git_commit: str = ""
    versions: dict = field(default_factory=dict)
    device: str = ""
    started: float | None = None
    finished: float | None = None
    status: str = ""
    cpu: str = ""  # the CPU model ("" when not recorded: runs before schema v4)
    gpu: str = ""  # the accelerator's name ("" on the CPU)
    threads: int | None = None  # torch threads per node (None: not recorded)
    jobs: int | None = None  # nodes run side by side (None: not recorded, or Ray's choice)
    executor: str = ""
    wall_s: float | None = None  # the run's wall time, start to finish

    @property
    def setting(self) -> str:
        """What a store must not mix, in words: ``cpu, 1 thread``."""
        return provenance.setting(self.device, self.gpu, self.threads, self.cpu)

    @property
    def seeds(self) -> list[int]:
        """The run's seeds (``config["suite"]["seeds"]``; [] when the config names none)."""
        return [int(s) for s in (self.config.get("suite", {}) or {}).get("seeds", []) or []]

    def run_config(self):
        """The run's resolved configuration as a frozen :class:`~hansbench.bench.suite.config.Suite`, read back
        without validating it again (:func:`hansbench.bench.suite.record.from_stored`; a run stored before the
        record existed is validated once and may raise ``SuiteError``)."""
        from hansbench.bench.suite.record import from_stored

        return from_stored(self.config)


_RUN_COLUMNS = ("id", "suite", "config", "git_commit", "versions", "device", "started", "finished", "status", "cpu",
                "gpu", "threads", "jobs", "executor", "wall_s")


def _select_runs(conn: sqlite3.Connection) -> str:
    """``SELECT`` of every run column, NULL for those an older (unmigrated, read-only) store lacks."""
    have = set(_columns(conn, "runs"))
    return "SELECT " + ", ".join(c if c in have else f"NULL AS {c}" for c in _RUN_COLUMNS) + " FROM runs"


def _json_dict(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _run_record(row: tuple | None) -> RunRecord | None:
    if row is None:
        return None
    rid, suite, config, commit, versions, device, started, finished, status, cpu, gpu, threads, jobs, ex, wall = row
    return RunRecord(int(rid), str(suite or ""), _json_dict(config), str(commit or ""), _json_dict(versions),
                     str(device or ""), started, finished, str(status or ""), str(cpu or ""), str(gpu or ""),
                     None if threads is None else int(threads), None if jobs is None else int(jobs), str(ex or ""),
                     wall)


def read_latest_run(path: str | Path) -> RunRecord | None:
    """The latest run of the store at ``path``, read without writing to it (no migration: publishing only reads).

    None when the file does not exist or records no run; :class:`StoreVersionError` when it is no hansbench
    store or one of a newer schema.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreVersionError(f"{path} is not a readable results store ({exc}); "
                                "move it away or use another --out directory") from exc
    try:
        found = _stored_version(conn)
        if found > SCHEMA_VERSION:
            raise StoreVersionError(f"{path} has results-store schema version {found}, but this hansbench reads up "
                                    f"to {SCHEMA_VERSION}: upgrade hansbench, or use another --out directory")
        if "suite" not in _columns(conn, "runs"):  # a new, empty file
            return None
        return _run_record(conn.execute(f"{_select_runs(conn)} ORDER BY id DESC LIMIT 1").fetchone())
    except sqlite3.DatabaseError as exc:
        raise StoreVersionError(f"{path} is not a readable results store ({exc}); "
                                "move it away or use another --out directory") from exc
    finally:
        conn.close()


PACKAGES = provenance.PACKAGES  # (where they moved: provenance.py)


def family_of(ids: dict) -> str:
    """The registered metric a node's ids name: ``family`` (``metric``, the planner's older key, until it moves)."""
    return str(ids.get("family", ids.get("metric", "")) or "")


class ResultsStore:
    """One results directory's SQLite store (``results.sqlite``), migrated to the current schema on open."""
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path)
        self._batching = False
        try:
            self.migrated_from = migrate(self.conn, self.path)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreVersionError(f"{self.path} is not a readable results store ({exc}); "
                                    "move it away or use another --out directory") from exc

    def close(self) -> None:
        """Close the database connection."""
        self.conn.close()

    @contextmanager
    def batch(self) -> Iterator[ResultsStore]:
        """Every write inside is one transaction (committed at the end, rolled back whole if the block raises):
        whole jobs, each with its rows and status, so a crash still never leaves a job half written. A commit
        costs a sync of the file (milliseconds), more than a cheap node's rows: the driver batches the results
        that arrived together. Nested batches join the outer one."""
        if self._batching:
            yield self
            return
        self._batching = True
        try:
            with self.conn:
                yield self
        finally:
            self._batching = False

    def _transaction(self):
        """One job's transaction: its own, or the enclosing :meth:`batch`'s."""
        return nullcontext() if self._batching else self.conn

    def start_run(self, suite: str, config: dict, device: str, *, threads: int | None = None, jobs: int | None = None,
                  executor: str = "") -> int:
        """Record a new run (suite, config, git commit, package versions, device, CPU model, accelerator, torch
        threads per node, nodes side by side, executor); returns its id."""
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO runs (suite, config, git_commit, versions, device, started, status, cpu, gpu, threads,"
                " jobs, executor) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (suite, json.dumps(config, default=str), provenance.git_commit(),
                 json.dumps(provenance.package_versions()), device, time.time(), "running", provenance.cpu_model(),
                 provenance.accelerator(device), threads, jobs, executor),
            )
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str) -> None:
        """Record a run's end time, wall time and final status."""
        now = time.time()
        with self.conn:
            self.conn.execute("UPDATE runs SET finished=?, wall_s=? - started, status=? WHERE id=?",
                              (now, now, status, run_id))

    def mixed_with(self, device: str, threads: int | None) -> str | None:
        """The setting (device, CPU model or accelerator, threads) of finished jobs in this store that differ from ``device``
        at ``threads``, in words (None when every finished job ran as this run will): their rows and cached
        outputs would mix with this run's, and another thread count or device rounds differently."""
        want = provenance.setting(device, provenance.accelerator(device), threads, provenance.cpu_model())
        found = self.conn.execute(
            "SELECT DISTINCT runs.device, runs.gpu, runs.threads, runs.cpu FROM jobs JOIN runs ON jobs.run_id = runs.id"
            " WHERE jobs.status = 'done'").fetchall()
        other = sorted({provenance.setting(d, g or "", t, c or "") for d, g, t, c in found} - {want})
        return "; ".join(other) or None

    def mark_stale_runs(self) -> int:
        """Runs left ``running`` by a process that died are marked ``crashed``; returns how many."""
        with self.conn:
            cur = self.conn.execute("UPDATE runs SET status='crashed' WHERE status='running'")
        return cur.rowcount

    def latest_run(self) -> RunRecord | None:
        """The run that started last (None when the store records none)."""
        return _run_record(self.conn.execute(f"{_select_runs(self.conn)} ORDER BY id DESC LIMIT 1").fetchone())

    def runs(self) -> list[RunRecord]:
        """Every recorded run, oldest first."""
        return [_run_record(r) for r in self.conn.execute(f"{_select_runs(self.conn)} ORDER BY id")]

    def done_keys(self) -> set[str]:
        """The keys of every job whose status is ``done`` (the runner skips these)."""
        return {k for (k,) in self.conn.execute("SELECT key FROM jobs WHERE status='done'")}

    _UPSERT_JOB = ("INSERT OR REPLACE INTO jobs (key, run_id, node_type, scenario, seed, model, explainer, clusterer,"
                   " rule, family, status, error, reason, seconds, finished) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")

    @staticmethod
    def _job_row(key: str, run_id: int, node_type: str, ids: dict, status: str, error: str | None, seconds: float,
                 reason: str | None = None) -> tuple:
        return (key, run_id, node_type, ids.get("scenario", ""), ids.get("seed", 0), ids.get("model", ""),
                ids.get("explainer", ""), ids.get("clusterer", ""), ids.get("rule", ""), family_of(ids), status, error,
                reason, seconds,
                time.time())

    def record_job(
        self, key: str, run_id: int, ids: dict, rows: Iterable[dict], *, seconds: float, error: str | None = None,
        status: str | None = None,
    ) -> None:
        """Write a node's status and rows atomically (replacing an earlier failed attempt).

        ``status``: done | failed | skipped (an input failed); default: failed when ``error`` is given,
        else done. A combination the planner left out is :meth:`record_not_applicable`'s.
        """
        rows = list(rows)
        status = status or ("failed" if error else "done")
        if status == NOT_APPLICABLE:
            raise ValueError("record_job: a not-applicable job has a reason, not an error; "
                             "use record_not_applicable(key, run_id, ids, reason)")
        family = family_of(ids)
        with self._transaction():
            self.conn.execute("DELETE FROM rows WHERE job_key=?", (key,))
            self.conn.execute(self._UPSERT_JOB, self._job_row(key, run_id, ids.get("node_type", ""), ids, status, error,
                                                              seconds))
            self.conn.executemany(
                "INSERT INTO rows (job_key, " + ", ".join(ROW_COLUMNS) + ") VALUES (?" + ",?" * len(ROW_COLUMNS) + ")",
                [(key, *({**ids, "family": family, **r}.get(c, "") for c in ROW_COLUMNS)) for r in rows],
            )

    def record_not_applicable(self, key: str, run_id: int, ids: dict, reason: str) -> None:
        """A combination the planner left out: status ``not-applicable``, its ``reason``, no rows."""
        with self._transaction():
            self.conn.execute("DELETE FROM rows WHERE job_key=?", (key,))
            self.conn.execute(self._UPSERT_JOB, self._job_row(key, run_id, ids.get("node_type", "metric"), ids,
                                                              NOT_APPLICABLE, None, 0.0, reason))

    def record_nodes(self, run_id: int, records: Iterable[dict]) -> None:
        """Resource nodes computed on demand (maps, explainer set-up, retrained models): key, type, ids, seconds."""
        with self._transaction():
            self.conn.executemany(self._UPSERT_JOB, [self._job_row(r["key"], run_id, r["type"], r["ids"], "done", None,
                                                                   r["seconds"]) for r in records])

    def jobs(self) -> pd.DataFrame:
        """The jobs table as a DataFrame (without ``finished``)."""
        return pd.read_sql_query("SELECT key, run_id, node_type, scenario, seed, model, explainer, clusterer, rule,"
                                 " family, status, error, reason, seconds FROM jobs", self.conn)

    def time_report(self, run_id: int | None = None, top: int = 10) -> str:
        """Where the time went: seconds and share per node type, and the costliest nodes (of one run, or all)."""
        jobs = self.jobs()
        jobs = jobs[jobs.status == "done"]
        if run_id is not None:
            jobs = jobs[jobs.run_id == run_id]
        if jobs.empty:
            return "no finished nodes"
        total = float(jobs.seconds.sum())
        by = jobs.groupby("node_type").seconds.agg(["sum", "count"]).sort_values("sum", ascending=False)
        lines = [f"time by node type (total {total:.1f} s of node work):"]
        for node_type, r in by.iterrows():
            lines.append(f"  {node_type:<11} {r['sum']:8.1f} s  {100 * r['sum'] / max(total, 1e-9):5.1f} %  "
                         f"({int(r['count'])} nodes)")
        lines.append(f"costliest {min(top, len(jobs))} nodes:")
        for _, r in jobs.nlargest(top, "seconds").iterrows():
            what = " ".join(str(v) for v in (r.scenario, f"seed {r.seed}", r.model, r.explainer, r.clusterer, r.rule,
                                             r.family)
                            if v not in ("", None))
            lines.append(f"  {r.seconds:8.1f} s  {r.node_type:<10} {what}")
        return "\n".join(lines)

    def rows(self, job_keys: Iterable[str] | None = None) -> pd.DataFrame:
        """Metric rows, optionally only those of the given jobs (the current suite's)."""
        df = pd.read_sql_query("SELECT job_key, " + ", ".join(ROW_COLUMNS) + " FROM rows ORDER BY id", self.conn)
        if job_keys is not None:
            df = df[df["job_key"].isin(set(job_keys))]
        df = df.drop(columns="job_key")
        df["higher_is_better"] = df["higher_is_better"].astype(bool)
        return df.reset_index(drop=True)
