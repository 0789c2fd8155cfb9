"""Time and peak memory of every clusterer on planted multi-view maps (10 views of 32x32).

Two ways to run it:

- ``pytest benchmarks/bench_clusterers.py`` (pytest-benchmark): one small size per clusterer;
- ``python benchmarks/bench_clusterers.py --scaling [--sizes 1000 2000 4000 8000]``: a table of
  wall time, peak memory, accuracy and ARI per clusterer and N, also written to
  ``benchmarks/scaling_results.json`` (``report.py`` copies it into PERFORMANCE.md; it is not
  re-run by the report: it takes tens of minutes on 2 CPU cores). Each cell runs in a fresh subprocess so one
  method's caches never flatter the next. Memory: ``tracemalloc`` peak (every NumPy/SciPy
  allocation made during ``fit_predict``; the input itself excluded), the peak of the sampled
  process RSS above its level before the fit (catches torch and Fortran work arrays too), and
  ``torch.cuda.max_memory_allocated`` when the deep methods run on a GPU. Methods that refuse a
  size (MCGC above ``max_n``; spray-wasserstein over its time budget) are listed as refused,
  with the time the refusal took.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from hansbench.bench.engine.kernel_timer import RSSPeak

N_VIEWS, SIDE = 10, 32
# deep methods: budgets small enough for a CPU table; cost grows linearly in runs x epochs
DEEP_FAST = {"runs": 1, "epochs": 3}
CONFIGS = {
    "spray": {},
    "spray-wasserstein": {"downsample": 8, "max_points": 32, "time_budget_s": 60},
    "coreg": {},
    "coreg-centroid": {"scheme": "centroid"},
    "wmsc": {},
    "mcgc": {},
    "simvc": DEEP_FAST,
    "comvc": DEEP_FAST,
    "activation-clustering": {},
}


def _make(key: str):
    from hansbench.registry import clusterers

    name = "coreg" if key == "coreg-centroid" else key
    return clusterers.get(name)(**CONFIGS[key])


def _data(key: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Planted maps (20 % in the minority group); activation clustering gets one 512-d vector per sample."""
    from hansbench.testing import planted_views

    x, y = planted_views(n=n, n_views=N_VIEWS, side=SIDE, noise=0.3, frac_b=0.2, seed=seed)
    if clusterer_input(key) == "activations":
        x = np.ascontiguousarray(x.reshape(n, 1, -1)[:, :, :512])
    return x, y


def clusterer_input(key: str) -> str:
    from hansbench.registry import clusterers

    return clusterers.get("coreg" if key == "coreg-centroid" else key).input


def measure(key: str, n: int) -> dict:
    """One cell of the table, in this process."""
    import torch

    x, y = _data(key, n)
    est = _make(key)
    cuda = torch.cuda.is_available() and key in ("simvc", "comvc")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    status = "ok"
    t0 = time.perf_counter()
    with RSSPeak() as rss:
        try:
            labels = est.fit_predict(x)
        except (ValueError, TimeoutError) as exc:
            status, labels = f"refused ({type(exc).__name__})", None
    seconds = time.perf_counter() - t0
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out = {"clusterer": key, "n": n, "status": status, "seconds": round(seconds, 2),
           "tracemalloc_mib": round(traced / 2**20, 1), "rss_mib": round(rss.peak / 2**20, 1),
           "input_mib": round(x.nbytes / 2**20, 1)}
    if cuda:
        out["cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    if labels is not None:
        from sklearn.metrics import adjusted_rand_score

        acc = float((labels == y).mean())
        out["acc"] = round(max(acc, 1 - acc), 3)
        out["ari"] = round(float(adjusted_rand_score(y, labels)), 3)
    return out


def scaling(sizes: list[int], keys: list[str]) -> list[dict]:
    rows = []
    for n in sizes:
        for key in keys:
            proc = subprocess.run([sys.executable, __file__, "--cell", key, str(n)], capture_output=True, text=True)
            if proc.returncode != 0:
                row = {"clusterer": key, "n": n, "status": f"error: {proc.stderr.strip().splitlines()[-1][:80]}"}
            else:
                row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["load_1min"] = round(os.getloadavg()[0], 1)
            rows.append(row)
            print(_fmt(row), flush=True)
    return rows


HEADER = ("| clusterer | N | status | time (s) | peak tracemalloc (MiB) | peak RSS above start (MiB) | acc | ARI |\n"
          "|---|---|---|---|---|---|---|---|")
RESULTS = Path(__file__).parent / "scaling_results.json"  # written by --scaling, read by report.py


def _fmt(r: dict) -> str:
    mem = r.get("tracemalloc_mib", "")
    if "cuda_mib" in r:
        mem = f"{mem} (cuda {r['cuda_mib']})"
    return (f"| {r['clusterer']} | {r['n']} | {r['status']} | {r.get('seconds', '')} | {mem} | "
            f"{r.get('rss_mib', '')} | {r.get('acc', '')} | {r.get('ari', '')} |")


def table(rows: list[dict]) -> str:
    return "\n".join([HEADER] + [_fmt(r) for r in rows])


# -- pytest-benchmark ----------------------------------------------------------------------
try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:

    @pytest.mark.parametrize("key", list(CONFIGS))
    def test_clusterer_speed(benchmark, key):
        n = 20 if key == "spray-wasserstein" else 500
        x, _ = _data(key, n)
        labels = benchmark.pedantic(lambda: _make(key).fit_predict(x), rounds=2, iterations=1, warmup_rounds=0)
        assert labels.shape == (n,)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scaling", action="store_true", help="print the time/memory table")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    p.add_argument("--only", nargs="+", default=list(CONFIGS), help="clusterers to include")
    p.add_argument("--json", default=str(RESULTS), help="where --scaling writes its rows (report.py reads them)")
    p.add_argument("--cell", nargs=2, metavar=("CLUSTERER", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.cell:
        print(json.dumps(measure(args.cell[0], int(args.cell[1]))))
    elif args.scaling:
        from _common import machine  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

        print(HEADER)
        t0 = time.perf_counter()
        rows = scaling(args.sizes, args.only)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        Path(args.json).write_text(json.dumps(
            {"rows": rows, "machine": machine(), "date": time.strftime("%Y-%m-%d"), "load_1min_at_end": round(load, 1),
             "total_s": round(time.perf_counter() - t0, 1), "command": " ".join(["python benchmarks/bench_clusterers.py"]
                                                                              + sys.argv[1:])}, indent=1))
        print(f"wrote {args.json}")
    else:
        p.print_help()
