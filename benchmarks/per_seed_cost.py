"""What one seed of a suite costs, cold, as a new user runs it; and whether two runs' rows agree.

Runs ``hansbench run --suite SUITE --out DIR --no-progress`` in a fresh directory under
``/usr/bin/time -v`` (wall time, peak RSS), then once more warm, and reads the run's own node
accounting from its ``results.sqlite`` (seconds per node type, models trained, map nodes). Per-seed
cost = cold wall time / seeds. Never a timed test: run it on an idle machine and say so.

    python benchmarks/per_seed_cost.py --suite quick --label after --json benchmarks/per_seed_cost.json
    python benchmarks/per_seed_cost.py --rows-equal OLD/results.sqlite NEW/results.sqlite
    python benchmarks/per_seed_cost.py --table benchmarks/per_seed_cost.json   # PERFORMANCE.md's table

``--rows-equal`` compares every metric row of two stores by its key (scenario, seed, model, explainer,
clusterer, family, metric, split, stage; timing rows excluded: they measure the machine) and prints the
keys only one has and the largest difference; exit 1 when they differ beyond ``--atol``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

KEY = ["scenario", "seed", "model", "explainer", "clusterer", "family", "metric", "split", "stage"]


def timed_run(argv: list[str]) -> dict:
    """Wall seconds and peak RSS (GiB) of one command, from GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as log:
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", "-o", log.name, *argv], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        text = Path(log.name).read_text()
    if proc.returncode:
        sys.exit(f"per_seed_cost: {' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    shared = [ln for ln in proc.stdout.splitlines() if ln.startswith("shared work:")]
    return {"wall_s": round(wall, 1), "peak_rss_gib": round(rss_kb / 2**20, 3),
            **({"shared_work": shared[0]} if shared else {})}


def node_breakdown(store: Path) -> dict:
    """Seconds and counts per node type from the run's own accounting, with the models trained."""
    with sqlite3.connect(store) as conn:
        jobs = pd.read_sql("SELECT node_type, seconds, family FROM jobs", conn)
        config = json.loads(conn.execute("SELECT config FROM runs ORDER BY id DESC LIMIT 1").fetchone()[0])
    by_type = jobs.groupby("node_type").seconds.agg(["sum", "count"]).round(1)
    return {"seeds": config["suite"]["seeds"],
            "node_seconds": {t: {"seconds": float(r["sum"]), "nodes": int(r["count"])} for t, r in by_type.iterrows()},
            "total_node_s": round(float(jobs.seconds.sum()), 1)}


def rows(store: Path) -> pd.DataFrame:
    with sqlite3.connect(store) as conn:
        df = pd.read_sql("SELECT * FROM rows", conn)
    return df[df.family != "timing"].fillna({k: "" for k in KEY if k != "seed"})


def rows_equal(old: Path, new: Path, atol: float) -> dict:
    """Keys only one store has and the largest |difference| of the shared ones (NaN = NaN)."""
    a, b = rows(old).set_index(KEY)["value"], rows(new).set_index(KEY)["value"]
    a, b = a[~a.index.duplicated()], b[~b.index.duplicated()]
    only_old, only_new = a.index.difference(b.index), b.index.difference(a.index)
    shared = a.index.intersection(b.index)
    x, y = a.loc[shared].astype(float), b.loc[shared].astype(float)
    both_nan = x.isna() & y.isna()
    diff = (x - y).abs().where(~both_nan, 0.0).fillna(float("inf"))
    worst = diff.sort_values(ascending=False).head(5)
    return {"rows_old": len(a), "rows_new": len(b), "shared": len(shared), "only_old": len(only_old),
            "only_new": len(only_new), "max_abs_diff": float(diff.max()) if len(diff) else 0.0,
            "n_differ": int((diff > atol).sum()), "atol": atol,
            "worst": [{"key": dict(zip(KEY, k)), "old": float(x[k]), "new": float(y[k])} for k in worst.index
                      if worst[k] > atol],
            "only_old_keys": [dict(zip(KEY, k)) for k in list(only_old)[:10]],
            "only_new_keys": [dict(zip(KEY, k)) for k in list(only_new)[:10]]}


def measure(suite: str, threads: int | None, keep: Path | None) -> dict:
    out = keep or Path(tempfile.mkdtemp(prefix="hansbench-cost-"))
    if out.exists():
        shutil.rmtree(out)
    argv = [sys.executable, "-m", "hansbench.bench.cli", "run", "--suite", suite, "--out", str(out), "--no-progress"]
    if threads:
        argv += ["--threads", str(threads)]
    cold = timed_run(argv)
    warm = timed_run(argv)
    res = {"suite": suite, "cold": cold, "warm": warm, **node_breakdown(out / "results.sqlite"), "out": str(out)}
    res["per_seed_s"] = round(cold["wall_s"] / len(res["seeds"]), 1)
    return res


TYPES = ("model", "maps", "clustering", "metric", "timing", "figure-inputs", "data", "explainer")


def table(book: dict, labels: list[str] | None = None) -> str:
    """Markdown: one column per measurement of ``book`` (this script's JSON; default: the entries marked
    ``"shown": true``, else all, in the order measured), the node-type breakdown as rows."""
    labels = labels or [k for k, r in book.items() if r.get("shown")] or list(book)
    cols = [book[k] for k in labels]

    def line(name: str, cells: list[str]) -> str:
        return f"| {name} | " + " | ".join(cells) + " |"

    out = [line("", [k.replace("|", "/") for k in labels]), "|---|" + "---|" * len(cols)]
    out.append(line("**per seed, cold** (wall / seeds)", [f"**{c['per_seed_s']:.1f} s**" for c in cols]))
    out.append(line("cold wall time", [f"{c['cold']['wall_s']:.1f} s" for c in cols]))
    out.append(line("peak RSS, cold", [f"{c['cold']['peak_rss_gib']:.2f} GiB" for c in cols]))
    out.append(line("warm rerun", [f"{c['warm']['wall_s']:.1f} s" for c in cols]))
    for t in TYPES:
        out.append(line(f"node work: {t}", [f"{c['node_seconds'].get(t, {}).get('seconds', 0):.1f} s "
                                            f"({c['node_seconds'].get(t, {}).get('nodes', 0)})" for c in cols]))
    out.append(line("node work, total", [f"{c['total_node_s']:.1f} s" for c in cols]))
    out.append(line("outside nodes (imports, planning, store, publishing)",
                    [f"{c['cold']['wall_s'] - c['total_node_s']:.1f} s" for c in cols]))
    out.append(line("rows against the `--rows-against` store", [c.get("rows_vs_first", "—") for c in cols]))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="quick")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="results directory to keep (default: a temp dir)")
    ap.add_argument("--label", default="", help="what this measurement is (e.g. before, after)")
    ap.add_argument("--json", type=Path, default=None, help="add the result under --label to this JSON file")
    ap.add_argument("--rows-equal", nargs=2, type=Path, metavar=("OLD", "NEW"))
    ap.add_argument("--atol", type=float, default=1e-9)
    ap.add_argument("--rows-against", type=Path, default=None, metavar="STORE",
                    help="after measuring, compare the new run's rows with this results.sqlite (kept in the JSON)")
    ap.add_argument("--table", type=Path, default=None, metavar="JSON", help="print the markdown table of a JSON book")
    args = ap.parse_args(argv)
    if args.table:
        print(table(json.loads(args.table.read_text())), end="")
        return 0
    if args.rows_equal:
        res = rows_equal(*args.rows_equal, args.atol)
        print(json.dumps(res, indent=1))
        return int(bool(res["n_differ"] or res["only_old"] or res["only_new"]))
    load = os.getloadavg()[0]  # an idle machine reads ~0: say what it was
    res = measure(args.suite, args.threads, args.keep)
    res.update(label=args.label, date=time.strftime("%Y-%m-%d"), cores=os.cpu_count(), load_before=load)
    if args.rows_against:
        eq = rows_equal(args.rows_against, Path(res["out"]) / "results.sqlite", args.atol)
        res["rows_equal"] = eq
        res["rows_vs_first"] = (f"identical ({eq['shared']} rows)" if not (eq["n_differ"] or eq["only_old"] or
                                eq["only_new"]) else f"{eq['n_differ']} of {eq['shared']} differ (max "
                                f"{eq['max_abs_diff']:.3g}); {eq['only_old']} only before, {eq['only_new']} only after")
    print(json.dumps(res, indent=1))
    if args.json:
        book = json.loads(args.json.read_text()) if args.json.is_file() else {}
        book[args.label or time.strftime("%H%M%S")] = {**res, "shown": True}  # a column of PERFORMANCE.md's table
        args.json.write_text(json.dumps(book, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
