"""The run's fixed costs (issue 31 item 3): what a run costs besides its nodes' own work.

Measured for one suite (``quick`` by default, ``--suite smoke``) on a finished results directory (``--results``;
copied, never written), each piece in its own right:

- ``imports``: ``import hansbench``, the CLI module, ``hansbench --help`` and ``hansbench list`` as fresh processes
  (the first of the repeats is the coldest this machine can give without dropping its page cache);
- ``planning``: ``Planner(suite).plan()`` in this process, first (cold: code digests read) and again (warm);
- ``store``: a replay of the finished run's jobs and rows into a new store, one transaction per job (as the
  driver wrote them before issue 31) against the batches the process pool now writes (``--batch`` jobs each);
- ``publish``: ``hansbench report`` on a copy of the results directory (tables, page, figures, CSVs, archive) as a
  process, and ``publish`` in this process with the curves drawn aside or here (``--only publish``);
- ``warm``: ``hansbench run`` of the suite on a copy whose outputs are current (plans, finds everything done);
- ``cold`` (``--only cold``): the suite run into an empty directory, its rows checked identical across trees.

``--src A --src B`` runs the process-level pieces with each source tree first on ``PYTHONPATH``, interleaved
round by round, and prints the ratio of the medians (B over A is the speed-up of B when A is the old tree).

    python benchmarks/bench_fixed_costs.py --results /work/tmp/q1 [--suite smoke] [--rounds 3] [--src OLD --src NEW]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

CLI = "import sys; from hansbench.bench.cli import main; sys.exit(main())"


def timed(cmd: list[str], src: str | None, cwd: str) -> float:
    """Wall seconds of one fresh process (``src`` first on PYTHONPATH); its failure stops the benchmark."""
    env = {**os.environ, "MPLBACKEND": "Agg", **({"PYTHONPATH": src} if src else {})}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def process_pieces(suite: str, scratch: Path, tree: int) -> dict[str, list[str]]:
    """The process-level pieces: name -> command (run in ``scratch``; ``tree``: which source tree's warm copy)."""
    py = sys.executable
    return {
        "import hansbench": [py, "-c", "import hansbench"],
        "import the CLI": [py, "-c", "import hansbench.bench.cli"],
        "hansbench --help": [py, "-c", CLI, "--help"],
        "hansbench list": [py, "-c", CLI, "list"],
        "hansbench report": [py, "-c", CLI, "report", "--out", str(scratch / "report")],
        "warm rerun": [py, "-c", CLI, "run", "--suite", suite, "--out", str(scratch / f"warm{tree}"),
                       "--no-progress"],
    }


def measure_cold(suite: str, srcs: list[str | None], rounds: int) -> dict:
    """A cold run of the suite per source tree (into an empty directory), interleaved; checks that every tree
    writes the same rows (timing rows aside) as the first, every column but ``detail`` (whose diagnostics, e.g.
    SpRAy-Wasserstein's eigenvalues near 0, move in their last digits from one run of the same code to the next)."""
    times: dict[tuple[str, str | None], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="fixed-cold-") as tmp:
        firsts = {}
        for r in range(rounds):
            for i, src in (list(enumerate(srcs)) if r % 2 == 0 else list(enumerate(srcs))[::-1]):
                out = Path(tmp) / f"cold{i}"
                shutil.rmtree(out, ignore_errors=True)
                cmd = [sys.executable, "-c", CLI, "run", "--suite", suite, "--out", str(out), "--no-progress"]
                times.setdefault(("cold run", src), []).append(timed(cmd, src, tmp))
                rows = _rows(out)
                firsts.setdefault(i, rows)
                if not rows.drop(columns="detail").equals(firsts[0].drop(columns="detail")):
                    raise SystemExit(f"source tree {src} wrote other rows than {srcs[0]} in round {r}")
                moved = int((rows.detail != firsts[0].detail).sum())
                print(f"round {r}, tree {src}: rows identical to the first tree's bit for bit"
                      f"{f', but {moved} detail JSON cells differ' if moved else ''}")
    return times


def _rows(out: Path):
    import pandas as pd

    df = pd.read_csv(out / "metrics.csv", keep_default_na=False)
    return df[df.family != "timing"].sort_values(list(df.columns)).reset_index(drop=True)


def measure_processes(results: Path, suite: str, srcs: list[str | None], rounds: int,
                      pieces: list[str] | None = None) -> dict:
    """Seconds per (piece, source tree) over ``rounds`` interleaved rounds."""
    times: dict[tuple[str, str | None], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="fixed-costs-") as tmp:
        scratch = Path(tmp)
        for i, src in enumerate(srcs):  # outputs made current by each tree once, so its warm rerun only plans
            _fresh_copy(results, scratch / f"warm{i}")
            timed(process_pieces(suite, scratch, i)["warm rerun"], src, tmp)
        for r in range(rounds):
            for i, src in (list(enumerate(srcs)) if r % 2 == 0 else list(enumerate(srcs))[::-1]):
                _fresh_copy(results, scratch / "report")
                (scratch / "report" / "outputs.json").unlink(missing_ok=True)
                for name, cmd in process_pieces(suite, scratch, i).items():
                    if pieces and name not in pieces:
                        continue
                    times.setdefault((name, src), []).append(timed(cmd, src, tmp))
    return times


def _fresh_copy(results: Path, to: Path) -> None:
    """A copy of the results directory, its cache hard-linked (entries are replaced by rename, never written in
    place, so the original's files stay as they were even if a run recomputes something)."""
    shutil.rmtree(to, ignore_errors=True)
    to.mkdir(parents=True)
    for item in results.iterdir():
        if item.name == "cache":
            shutil.copytree(item, to / "cache", copy_function=os.link)
        elif item.is_file() and item.name != ".lock":
            shutil.copy2(item, to / item.name)


def measure_planning(suite: str, rounds: int) -> dict[str, list[float]]:
    """``Planner(suite).plan()``: the first call (code digests read from disk) and the next ones."""
    from hansbench.bench.engine.planner import Planner
    from hansbench.bench.suite.config import load_suite
    from hansbench.registry import load_all

    t0 = time.perf_counter()
    load_all()
    loaded = load_suite(suite)
    out = {"load plugins and suite": [time.perf_counter() - t0], "plan (first)": [], "plan (again)": []}
    for r in range(rounds + 1):
        t0 = time.perf_counter()
        plan = Planner(loaded, "cpu").plan()
        out["plan (first)" if r == 0 else "plan (again)"].append(time.perf_counter() - t0)
    out["nodes planned"] = [float(len(plan.nodes) + len(plan.figures))]
    return out


def replay_jobs(results: Path) -> list[tuple]:
    """The finished store's jobs (key, ids, seconds, status) with their rows, in the order they were written."""
    conn = sqlite3.connect(f"file:{results / 'results.sqlite'}?mode=ro", uri=True)
    from hansbench.bench.engine.store import ROW_COLUMNS

    rows: dict[str, list[dict]] = {}
    for job_key, *values in conn.execute("SELECT job_key, " + ", ".join(ROW_COLUMNS) + " FROM rows ORDER BY id"):
        rows.setdefault(job_key, []).append(dict(zip(ROW_COLUMNS, values)))
    cols = ["key", "node_type", "scenario", "seed", "model", "explainer", "clusterer", "rule", "family", "status",
            "seconds"]
    jobs = [dict(zip(cols, r)) for r in conn.execute(
        f"SELECT {', '.join(cols)} FROM jobs WHERE status != 'not-applicable' ORDER BY finished")]
    conn.close()
    return [(j["key"], {k: j[k] for k in cols[1:9]}, j["seconds"], j["status"], rows.get(j["key"], [])) for j in jobs]


def measure_store(results: Path, rounds: int, batch: int) -> dict[str, list[float]]:
    """Writing the run's jobs and rows: one transaction per job against ``batch`` jobs per transaction."""
    from hansbench.bench.engine.store import ResultsStore

    jobs = replay_jobs(results)
    out: dict[str, list[float]] = {"jobs replayed": [float(len(jobs))], "one transaction per job": [],
                                   f"{batch} jobs per transaction": []}
    for r in range(rounds):
        for batched in ((False, True) if r % 2 == 0 else (True, False)):
            with tempfile.TemporaryDirectory(prefix="fixed-store-") as tmp:
                store = ResultsStore(Path(tmp) / "results.sqlite")
                run_id = store.start_run("replay", {}, "cpu", threads=1, jobs=2, executor="local")
                t0 = time.perf_counter()
                for i in range(0, len(jobs), batch if batched else 1):
                    with store.batch() if batched else nullcontext():
                        for key, ids, seconds, status, rows in jobs[i:i + (batch if batched else 1)]:
                            store.record_job(key, run_id, ids, rows, seconds=seconds, status=status)
                name = f"{batch} jobs per transaction" if batched else "one transaction per job"
                out[name].append(time.perf_counter() - t0)
                store.close()
    return out


def measure_publish(results: Path, rounds: int) -> dict[str, list[float]]:
    """``publish`` in this process on a copy of the results directory: the ordering curves drawn in a forked
    process beside the tables against drawn here first (interleaved); the curves alone; the output code's digest
    parsed from the sources against read back from the manifest."""
    from hansbench.bench.engine.store import ResultsStore
    from hansbench.bench.report import publish as pub
    from hansbench.bench.report.figures.curves import ordering_curves

    out: dict[str, list[float]] = {"publish, curves drawn here (before)": [], "publish, curves aside (after)": [],
                                   "ordering curves alone": [], "output code parsed (before)": [],
                                   "output code from the manifest (after)": []}
    aside = pub.aside
    with tempfile.TemporaryDirectory(prefix="fixed-publish-") as tmp:
        copy = Path(tmp) / "out"
        _fresh_copy(results, copy)
        store = ResultsStore(copy / "results.sqlite")
        name = store.latest_run().suite
        pub.publish(copy, store=store, suite_name=name)  # imports and the manifest's code record, once
        for r in range(rounds):
            for here in ((True, False) if r % 2 == 0 else (False, True)):
                pub.aside = (lambda draw, *args: lambda: draw(*args)) if here else aside
                t0 = time.perf_counter()
                pub.publish(copy, store=store, suite_name=name)
                out["publish, curves drawn here (before)" if here else "publish, curves aside (after)"].append(
                    time.perf_counter() - t0)
            pub.aside = aside
            rows = store.rows()
            for key, fn in (("ordering curves alone", lambda rows=rows: ordering_curves(rows, Path(tmp))),
                            ("output code parsed (before)", pub.output_code),
                            ("output code from the manifest (after)", lambda: pub.recorded_output_code(copy))):
                t0 = time.perf_counter()
                fn()
                out[key].append(time.perf_counter() - t0)
        store.close()
    return out


def table(title: str, measured: dict) -> None:
    """Print one table: piece, median seconds, the repeats."""
    print(f"\n{title}")
    print(f"  {'piece':<44} {'median s':>9}  repeats")
    for name, values in measured.items():
        shown = ", ".join(f"{v:.3f}" for v in values)
        print(f"  {name:<44} {statistics.median(values):9.3f}  {shown}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", required=True, help="a finished results directory of the suite (read only)")
    p.add_argument("--suite", default="quick")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=8, help="jobs per transaction in the batched replay")
    p.add_argument("--src", action="append", help="a source tree to put first on PYTHONPATH (repeat to compare)")
    p.add_argument("--pieces", nargs="+", help="only these process pieces, by name (e.g. 'warm rerun')")
    p.add_argument("--only", nargs="+", choices=["processes", "planning", "store", "publish", "cold"],
                   default=["processes", "planning", "store"], help="cold: cold runs of the suite (minutes for quick)")
    args = p.parse_args(argv)
    results = Path(args.results).resolve()
    if not (results / "results.sqlite").is_file():
        p.error(f"--results {results}: no results.sqlite there; give a finished run's results directory")
    print(f"fixed costs of suite {args.suite!r} ({results}), {args.rounds} rounds, {os.cpu_count()} cores")
    if "processes" in args.only or "cold" in args.only:
        srcs = args.src or [None]
        times = (measure_processes(results, args.suite, srcs, args.rounds, args.pieces) if "processes" in args.only else {}) | (
            measure_cold(args.suite, srcs, args.rounds) if "cold" in args.only else {})
        for src in srcs:
            table(f"processes, source {src or 'installed'}", {n: v for (n, s), v in times.items() if s == src})
        if len(srcs) == 2:
            print("\nratio (first tree's median / second's)")
            for name in dict.fromkeys(n for n, _ in times):
                a, b = (statistics.median(times[(name, s)]) for s in srcs)
                print(f"  {name:<44} {a / b:6.2f}x")
    if "planning" in args.only:
        table("planning (this process)", measure_planning(args.suite, args.rounds))
    if "publish" in args.only:
        table("publishing (this process, a copy of the results)", measure_publish(results, args.rounds))
    if "store" in args.only:
        table("store writes (a replay of the run's jobs and rows)", measure_store(results, args.rounds, args.batch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
