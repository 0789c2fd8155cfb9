"""The results store: one SQLite database per results directory.

Tables: ``runs`` (suite, config, commit, versions, device, times), ``jobs`` (one per graph
node: key, ``node_type``, ids, status, error with traceback, seconds) and ``rows`` (flat
metric records). A job's rows and its status are written in one transaction: a crash loses
at most the job in flight.

One word, one meaning, in both tables: ``family`` is the registered metric that ran (a
job's, and the one that emitted a row); ``metric`` is a value's name (one family emits
several); ``node_type`` is what a job computed (data, model, maps, clustering, metric, ...).
The schema version is SQLite's ``user_version`` (:data:`SCHEMA_VERSION`); older stores are
migrated in place when opened (:func:`migrate`), newer ones are refused with a clear error.
"""

from __future__ import annotations

import json
import platform
import sqlite3
import subprocess
import time
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

# ``family``: the registered metric that emitted the row (``timing`` for the harness's timer);
# ``metric``: the value's name (one family emits several).
ROW_COLUMNS = [
    "scenario", "seed", "model", "explainer", "clusterer", "family", "metric", "split", "stage", "detail",
    "value", "unit", "higher_is_better",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, suite TEXT, config TEXT, git_commit TEXT, versions TEXT,
    device TEXT, started REAL, finished REAL, status TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY, run_id INTEGER, node_type TEXT, scenario TEXT, seed INTEGER, model TEXT,
    explainer TEXT, clusterer TEXT, family TEXT, status TEXT, error TEXT, seconds REAL, finished REAL
);
CREATE TABLE IF NOT EXISTS rows (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job_key TEXT REFERENCES jobs(key), scenario TEXT, seed INTEGER,
    model TEXT, explainer TEXT, clusterer TEXT, family TEXT, metric TEXT, split TEXT, stage TEXT, detail TEXT,
    value REAL, unit TEXT, higher_is_better INTEGER
);
CREATE INDEX IF NOT EXISTS rows_job ON rows(job_key);
"""

SCHEMA_VERSION = 2
# version -> statements that bring a store of that version to the next one
_MIGRATIONS = {
    # v1 (hansbench <= 0.2 stores, user_version 0): jobs.kind held the node type and jobs.metric the
    # registered metric, which rows call ``family``
    1: ["ALTER TABLE jobs RENAME COLUMN kind TO node_type", "ALTER TABLE jobs RENAME COLUMN metric TO family"],
}


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


PACKAGES = ("torch", "torchvision", "captum", "zennit", "zennit-crp", "scikit-learn", "numpy", "scipy", "hansbench")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


class ResultsStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path)
        try:
            self.migrated_from = migrate(self.conn, self.path)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreVersionError(f"{self.path} is not a readable results store ({exc}); "
                                    "move it away or use another --out directory") from exc

    def close(self) -> None:
        self.conn.close()

    def start_run(self, suite: str, config: dict, device: str) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO runs (suite, config, git_commit, versions, device, started, status) VALUES (?,?,?,?,?,?,?)",
                (suite, json.dumps(config, default=str), _git_commit(), json.dumps(_versions()), device, time.time(),
                 "running"),
            )
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET finished=?, status=? WHERE id=?", (time.time(), status, run_id))

    def mark_stale_runs(self) -> int:
        """Runs left ``running`` by a process that died are marked ``crashed``; returns how many."""
        with self.conn:
            cur = self.conn.execute("UPDATE runs SET status='crashed' WHERE status='running'")
        return cur.rowcount

    def is_done(self, key: str) -> bool:
        row = self.conn.execute("SELECT status FROM jobs WHERE key=?", (key,)).fetchone()
        return bool(row and row[0] == "done")

    def done_keys(self) -> set[str]:
        return {k for (k,) in self.conn.execute("SELECT key FROM jobs WHERE status='done'")}

    _UPSERT_JOB = ("INSERT OR REPLACE INTO jobs (key, run_id, node_type, scenario, seed, model, explainer, clusterer,"
                   " family,"
                   " status, error, seconds, finished) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")

    @staticmethod
    def _job_row(key: str, run_id: int, node_type: str, ids: dict, status: str, error: str | None, seconds: float) -> tuple:
        return (key, run_id, node_type, ids.get("scenario", ""), ids.get("seed", 0), ids.get("model", ""),
                ids.get("explainer", ""), ids.get("clusterer", ""), ids.get("metric", ""), status, error, seconds,
                time.time())

    def record_job(
        self, key: str, run_id: int, ids: dict, rows: Iterable[dict], *, seconds: float, error: str | None = None,
        status: str | None = None,
    ) -> None:
        """Write a node's status and rows atomically (replacing an earlier failed attempt).

        ``status``: done | failed | skipped (an input failed) | not-applicable (left out by the
        planner, ``error`` says why); default: failed when ``error`` is given, else done.
        """
        rows = list(rows)
        status = status or ("failed" if error else "done")
        with self.conn:
            self.conn.execute("DELETE FROM rows WHERE job_key=?", (key,))
            self.conn.execute(self._UPSERT_JOB, self._job_row(key, run_id, ids.get("node_type", ""), ids, status, error,
                                                              seconds))
            self.conn.executemany(
                "INSERT INTO rows (job_key, " + ", ".join(ROW_COLUMNS) + ") VALUES (?" + ",?" * len(ROW_COLUMNS) + ")",
                [(key, *({**ids, "family": ids.get("metric", ""), **r}.get(c, "") for c in ROW_COLUMNS))
                 for r in rows],
            )

    def record_nodes(self, run_id: int, records: Iterable[dict]) -> None:
        """Resource nodes computed on demand (maps, explainer set-up, retrained models): key, type, ids, seconds."""
        with self.conn:
            self.conn.executemany(self._UPSERT_JOB, [self._job_row(r["key"], run_id, r["type"], r["ids"], "done", None,
                                                                   r["seconds"]) for r in records])

    def jobs(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT key, run_id, node_type, scenario, seed, model, explainer, clusterer, family, status,"
                                 " error, seconds FROM jobs", self.conn)

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
            what = " ".join(str(v) for v in (r.scenario, f"seed {r.seed}", r.model, r.explainer, r.clusterer, r.family)
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
