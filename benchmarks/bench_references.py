"""SpRAy vs scikit-learn's SpectralClustering, Co-Reg vs mvlearn's Co-Reg: time, peak memory, ARI at N = 1k, 2k.

Data: planted multi-view maps (``hansbench.testing.planted_views``: 10 views of 32x32, 20 % in
the minority group), as ``bench_clusterers.py --scaling`` uses. Same work on both sides:

- ``spray`` (10-NN binary graph of the concatenated views, ``(A + A^T)/2``, ``L_sym``, eigsh,
  k-means on 2 eigenvectors; it also computes 32 eigenvalues for the eigengap) and
  ``spray (q=2)`` (only the 2 eigenpairs k-means uses: the work sklearn does) vs
  ``SpectralClustering(2, affinity="nearest_neighbors", n_neighbors=10, eigen_solver="arpack",
  assign_labels="kmeans", random_state=0)`` on the same concatenated views (its kNN graph
  includes self loops; otherwise the same graph);
- ``coreg`` (pairwise, lambda = 2, 10 iterations, 10-NN binary graphs, sparse) vs mvlearn's
  ``MultiviewCoRegSpectralClustering(2, v_lambda=2, max_iter=10, affinity="nearest_neighbors",
  n_neighbors=10, random_state=0)`` (the same algorithm on dense N x N matrices; mvlearn's
  ``MultiviewSpectralClustering`` is a different algorithm, co-training, not Co-Reg).

Each cell runs once in a fresh subprocess (the harness's ``RSSPeak`` for RSS above the start,
``tracemalloc`` for every NumPy/SciPy allocation), one BLAS thread; ARI against the planted
groups. mvlearn's dense Co-Reg takes minutes at N = 2k on this machine, so the full table is
not part of ``report.py``'s 10 minutes: ``python benchmarks/bench_references.py`` writes
``benchmarks/reference_results.json`` and ``report.py`` copies the recorded table (with its
date, machine and load).

    python benchmarks/bench_references.py [--sizes 1000 2000]
    pytest benchmarks/bench_references.py -o python_files=bench_*.py   # N = 300, pytest-benchmark
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

N_VIEWS, SIDE = 10, 32
RESULTS = Path(__file__).parent / "reference_results.json"
# (ours, reference) pairs of the table
PAIRS = [("spray", "sklearn-spectral"), ("spray-q2", "sklearn-spectral"), ("coreg", "mvlearn-coreg")]
METHODS = ["spray", "spray-q2", "sklearn-spectral", "coreg", "mvlearn-coreg"]


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from hansbench.testing import planted_views

    return planted_views(n=n, n_views=N_VIEWS, side=SIDE, noise=0.3, frac_b=0.2, seed=seed)


def make(method: str):
    """A zero-argument fit: views ``[N, V, D]`` -> labels."""
    from hansbench.registry import clusterers

    if method == "spray":
        spray = clusterers.get("spray")
        return lambda x: spray().fit_predict(x)
    if method == "spray-q2":
        spray = clusterers.get("spray")
        return lambda x: spray(n_eigenvalues=2).fit_predict(x)
    if method == "coreg":
        coreg = clusterers.get("coreg")
        return lambda x: coreg().fit_predict(x)
    if method == "sklearn-spectral":
        from sklearn.cluster import SpectralClustering

        return lambda x: SpectralClustering(2, affinity="nearest_neighbors", n_neighbors=10, eigen_solver="arpack",
                                            assign_labels="kmeans", random_state=0).fit_predict(x.reshape(len(x), -1))
    if method == "mvlearn-coreg":
        from mvlearn.cluster import MultiviewCoRegSpectralClustering

        return lambda x: MultiviewCoRegSpectralClustering(
            n_clusters=2, v_lambda=2, max_iter=10, affinity="nearest_neighbors", n_neighbors=10, random_state=0
        ).fit_predict([np.ascontiguousarray(x[:, v]) for v in range(x.shape[1])])
    raise KeyError(method)


def cell(method: str, n: int) -> dict:
    """One fit in this process after one untimed fit at N = 200 (imports): seconds (the harness's timer),
    peak memory, ARI."""
    import warnings

    import torch
    from _common import load
    from sklearn.metrics import adjusted_rand_score

    from hansbench.bench.engine.kernel_timer import time_call

    warnings.filterwarnings("ignore")
    x, y = data(n)
    fit, box = make(method), {}
    fit(data(200, seed=1)[0])  # lazy imports and first-call costs outside the measurement
    tracemalloc.start()
    timing = time_call(lambda: box.__setitem__("labels", fit(x)), torch.device("cpu"), warmup=0, repeats=1)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"method": method, "n": n, "seconds": round(timing.median_s, 2), "tracemalloc_mib": round(traced / 2**20, 1),
            "rss_mib": round(timing.peak_memory_bytes / 2**20, 1),
            "ari": round(float(adjusted_rand_score(y, box["labels"])), 3), "load_1min": round(load(), 1)}


def run(sizes: list[int], methods: list[str] = METHODS) -> list[dict]:
    rows = []
    for n in sizes:
        for m in methods:
            proc = subprocess.run([sys.executable, __file__, "--cell", m, str(n)], capture_output=True, text=True)
            if proc.returncode != 0:
                row = {"method": m, "n": n, "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:100]}
            else:
                row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(row, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: one line per (ours, reference) pair and N, with the time ratio reference / ours."""
    by = {(r["method"], r["n"]): r for r in rows}
    out = ["| ours vs reference | N | time ours / ref (s) | ref / ours | peak tracemalloc ours / ref (MiB) | "
           "peak RSS above start ours / ref (MiB) | ARI ours / ref |", "|---|---|---|---|---|---|---|"]
    for n in sorted({r["n"] for r in rows}):
        for a, b in PAIRS:
            ra, rb = by.get((a, n)), by.get((b, n))
            if not ra or not rb or "error" in ra or "error" in rb:
                out.append(f"| {a} vs {b} | {n} | error: {(ra or {}).get('error', '')} {(rb or {}).get('error', '')} "
                           "| | | | |")
                continue
            out.append(f"| {a} vs {b} | {n} | {ra['seconds']} / {rb['seconds']} | "
                       f"{rb['seconds'] / max(ra['seconds'], 1e-9):.2f}× | {ra['tracemalloc_mib']} / "
                       f"{rb['tracemalloc_mib']} | {ra['rss_mib']} / {rb['rss_mib']} | {ra['ari']} / {rb['ari']} |")
    return "\n".join(out)


# -- pytest-benchmark: N = 300 ---------------------------------------------------------------
try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:

    @pytest.mark.parametrize("method", METHODS)
    def test_reference_clusterer(benchmark, method):
        import warnings

        warnings.filterwarnings("ignore")
        x, _ = data(300)
        fit = make(method)
        labels = benchmark.pedantic(fit, args=(x,), rounds=2, iterations=1, warmup_rounds=0)
        assert labels.shape == (300,)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000])
    p.add_argument("--only", nargs="+", default=METHODS)
    p.add_argument("--json", default=str(RESULTS))
    p.add_argument("--cell", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.cell:
        print(json.dumps(cell(args.cell[0], int(args.cell[1]))))
    else:
        from _common import load, machine

        t0 = time.perf_counter()
        rows = run(args.sizes, args.only)
        Path(args.json).write_text(json.dumps(
            {"rows": rows, "machine": machine(), "date": time.strftime("%Y-%m-%d"), "load_1min_at_end": round(load(), 1),
             "total_s": round(time.perf_counter() - t0, 1),
             "command": " ".join(["python benchmarks/bench_references.py"] + sys.argv[1:])}, indent=1))
        print(table(rows))
        print(f"wrote {args.json}")
