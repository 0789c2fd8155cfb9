"""Training precision and layout (issue 31): the suite's own training loop, interleaved A/B in one process.

    python benchmarks/bench_training.py [--rounds 3] [--short]   # the four arms, quick's recipes and data
    python benchmarks/bench_training.py --compile                # torch.compile's break-even (classifier)
    python benchmarks/bench_training.py --accuracy               # dev seeds 0, 1, 2: float32 vs the lever
    pytest benchmarks/bench_training.py -o python_files=bench_*.py --benchmark-only   # one run each (tox -e bench)

The arms are ``hansbench.models.kinds.train_model`` on the quick suite's CH-33 training set (1000 signs
at 32 px, seed 0) with the quick suite's ``[models.*]`` recipes, the precision and layout keys
overridden: float32 NCHW (today's path), ``precision = "bf16"``, ``memory_format = "channels_last"``
and both. ``--short`` cuts the epochs (classifier 2; ProtoPNet 1 warm-up, 2 joint, 5 last-layer):
push and last layer, always float32, then weigh more. Ratio: float32 NCHW time / the arm's time
(ratio of the medians, the range of the per-round ratios; ``_common.interleaved``).

``--accuracy`` trains float32 NCHW and the lever on CH-33 of the development seeds (0, 1, 2) and
reports each model's clean accuracy and reliance gap (acc-gap: the stop signs' accuracy with the
post-it minus without, in points), with the float32 seeds' spread
(``hansbench.models.precision.seed_spread``: their range widened by their standard deviation).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from _common import THREADS, device, interleaved, load, machine, ratio

from hansbench.bench.suite.config import load_suite
from hansbench.datasets.base import ScenarioData
from hansbench.datasets.scenarios import make_scenario
from hansbench.models.evaluation import accuracy
from hansbench.models.kinds import train_model
from hansbench.models.precision import seed_spread, within_seed_spread

DEV = device()
ARMS = {"float32": {}, "bf16": {"precision": "bf16"}, "channels_last": {"memory_format": "channels_last"},
        "bf16+channels_last": {"precision": "bf16", "memory_format": "channels_last"}}
LEVER = "bf16+channels_last"
SHORT = {"classifier": {"epochs": 2},
         "protopnet": {"warm_epochs": 1, "joint_epochs": 2, "push_start": 3, "last_layer_epochs": 5}}
KINDS = ("classifier", "protopnet")
RESULTS = Path(__file__).parent / "training_results.json"  # recorded runs, one per mode (report.py renders them)


def quick_data(seed: int = 0, scenario: str = "CH-33") -> ScenarioData:
    """The quick suite's ``scenario`` at ``seed``, as the suite draws it."""
    suite = load_suite("quick")
    sc = next(s for s in suite.scenarios if s.name == scenario)
    return make_scenario(sc.dataset, poisoning=sc.poisoning, fraction=sc.fraction, artifact=sc.artifact,
                         image_size=sc.image_size, n_train=sc.n_train, n_test=sc.n_test, seed=seed,
                         affected_class=sc.affected_class, target_class=sc.target_class,
                         dataset_options=sc.dataset_options, artifact_options=sc.artifact_options, name=sc.name)


def recipe(kind: str, arm: str, short: bool = False) -> dict:
    """The quick suite's recipe of ``kind`` with the arm's keys (float32 NCHW spelled out where the suite sets others)."""
    base = {k: v for k, v in load_suite("quick").models[kind].items() if k not in ("precision", "memory_format")}
    return {**base, **(SHORT[kind] if short else {}), **ARMS[arm]}


def trainer(kind: str, arm: str, data: ScenarioData, short: bool = False, seed: int = 0):
    config = recipe(kind, arm, short)

    def run() -> torch.nn.Module:
        return train_model(kind, data.train, num_classes=data.num_classes, mean=data.mean, std=data.std,
                           config=config, seed=seed, device=DEV, progress=False)
    return run


def _cpu_timed(fn, into: list):
    """``fn`` that also appends its process CPU seconds to ``into`` (one thread: the compute, not the waits)."""
    def run():
        t = time.process_time()
        fn()
        into.append(time.process_time() - t)
    return run


def measure(rounds: int = 3, short: bool = False) -> dict:
    """Per kind: each arm's median seconds and its ratio (float32 NCHW / arm) with the per-round range.

    Wall time (the harness's timer) and, beside it, the process's CPU time of the same calls: with one
    torch thread on a shared machine the CPU time leaves out the time spent waiting for a core.
    """
    data, out = quick_data(), {}
    for kind in KINDS:
        cpu: dict[str, list] = {arm: [] for arm in ARMS}
        t = interleaved({arm: _cpu_timed(trainer(kind, arm, data, short), cpu[arm]) for arm in ARMS}, DEV, rounds)
        cpu = {arm: v[1:] for arm, v in cpu.items()}  # (the warm-up call)
        out[kind] = {"seconds": {arm: statistics.median(v) for arm, v in t.items()},
                     "ratio": {arm: ratio(t, "float32", arm) for arm in ARMS if arm != "float32"},
                     "cpu_seconds": {arm: statistics.median(v) for arm, v in cpu.items()},
                     "cpu_ratio": {arm: ratio(cpu, "float32", arm) for arm in ARMS if arm != "float32"}}
    return out


def compile_break_even(rounds: int = 5) -> dict:
    """torch.compile of the classifier's forward (what the training step differentiates), the lever's settings.

    Cold: a fresh inductor cache directory, as a new machine or node process without a cache has. The
    compile cost is the first compiled epoch minus the compiled steady epoch; the steady epochs of the
    eager and the compiled model are then timed interleaved (``rounds``). Break-even: compile cost /
    saving per epoch, in epochs (the quick classifier trains 8 per model, ProtoPNet 10 plus pushes).
    """
    import os
    import tempfile

    import torch.nn.functional as F

    from hansbench.models.kinds import build_model
    from hansbench.models.precision import autocast, resolve_precision

    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="hansbench-inductor-")  # cold compile
    data = quick_data()
    x, y = data.train.images.to(DEV), data.train.labels.to(DEV)
    precision = resolve_precision("bf16", DEV)

    def epoch_of(compiled: bool):
        torch.manual_seed(0)
        m = build_model("classifier", num_classes=data.num_classes, mean=data.mean, std=data.std,
                        memory_format="channels_last").to(DEV).train()
        fwd = torch.compile(m) if compiled else m
        opt = torch.optim.Adam(m.parameters(), lr=2e-3)

        def epoch() -> None:
            for i in range(0, len(x), 64):
                with autocast(precision, DEV):
                    loss = F.cross_entropy(fwd(m.normalize(x[i:i + 64])), y[i:i + 64])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if DEV.type == "cuda":
                torch.cuda.synchronize()
        return epoch

    eager, compiled = epoch_of(False), epoch_of(True)
    t = time.perf_counter()
    compiled()
    first = time.perf_counter() - t
    times = interleaved({"eager": eager, "compiled": compiled}, DEV, rounds)
    steady = {k: statistics.median(v) for k, v in times.items()}
    cost, saving = first - steady["compiled"], steady["eager"] - steady["compiled"]
    return {"precision": precision, "first_compiled_epoch_s": first, "steady_epoch_s": steady,
            "ratio": ratio(times, "eager", "compiled"), "compile_s": cost, "saving_per_epoch_s": saving,
            "break_even_epochs": cost / saving if saving > 0 else float("inf")}


def accuracy_check(seeds=(0, 1, 2), lever: str = LEVER) -> dict:
    """Clean accuracy and acc-gap (points) of float32 NCHW and ``lever`` per kind and seed, and the verdicts."""
    rows: dict = {kind: {arm: {"clean_acc": [], "acc_gap": []} for arm in ("float32", lever)} for kind in KINDS}
    for seed in seeds:
        data = quick_data(seed)
        stop = [data.affected_class]
        for kind in KINDS:
            for arm in ("float32", lever):
                model = trainer(kind, arm, data, seed=seed)()
                rows[kind][arm]["clean_acc"].append(100 * accuracy(model, data.clean_test, device=DEV))
                rows[kind][arm]["acc_gap"].append(
                    100 * (accuracy(model, data.artifact_test, device=DEV, classes=stop)
                           - accuracy(model, data.clean_test, device=DEV, classes=stop)))
    verdicts = {kind: {m: {"float32_spread": seed_spread(rows[kind]["float32"][m]),
                           "lever_mean": statistics.fmean(rows[kind][lever][m]),
                           "within": within_seed_spread(rows[kind]["float32"][m], rows[kind][lever][m])}
                       for m in ("clean_acc", "acc_gap")} for kind in KINDS}
    return {"seeds": list(seeds), "lever": lever, "per_seed": rows, "verdicts": verdicts}


# -- pytest-benchmark (tox -e bench): one short training per arm --------------------------------------------
@pytest.fixture(scope="module")
def data():
    return quick_data()


@pytest.mark.parametrize("arm", list(ARMS))
@pytest.mark.parametrize("kind", KINDS)
def test_training(benchmark, data, kind, arm):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bf16 on a device without it: the float32 fallback's warning
        benchmark.pedantic(trainer(kind, arm, data, short=True), rounds=2, warmup_rounds=1)


def save(mode: str, res: dict) -> None:
    """Record this run's result under ``mode`` in :data:`RESULTS` (the other modes' records are kept)."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[mode] = {**res, "date": str(datetime.date.today()),
                  "command": "python benchmarks/bench_training.py " + " ".join(sys.argv[1:])}
    RESULTS.write_text(json.dumps(data, indent=1))


def table(data: dict) -> str:
    """The recorded runs as PERFORMANCE.md's table: each lever's ratio per kind, the compile break-even, the check."""
    out = ["| measurement | classifier | ProtoPNet | command, date, machine, load |", "|---|---|---|---|"]
    for mode, what in (("training", "quick's recipes"), ("training_short", "short recipes")):
        rec = data.get(mode)
        if not rec:
            continue
        where = f"`{rec['command']}`, {rec['date']}, {rec['machine']}, {rec['rounds']} rounds, " \
                f"load {rec['load_start']:.1f}-{rec['load_end']:.1f}"
        t = rec["training"]
        out.append(f"| float32 NCHW, {what} (median s) | {t['classifier']['seconds']['float32']:.1f} s | "
                   f"{t['protopnet']['seconds']['float32']:.1f} s | {where} |")
        for arm in ARMS:
            if arm != "float32":
                cells = [f"{r:.2f}× ({lo:.2f}–{hi:.2f})" for r, lo, hi in (t[k]["ratio"][arm] for k in KINDS)]
                if "cpu_ratio" in t[KINDS[0]]:
                    cells = [c + "; CPU time {:.2f}× ({:.2f}–{:.2f})".format(*t[k]["cpu_ratio"][arm])
                             for c, k in zip(cells, KINDS)]
                out.append(f"| {arm} vs float32 NCHW, {what} | {cells[0]} | {cells[1]} | {where} |")
    c = data.get("compile")
    if c:
        cc = c["compile"]
        r, lo, hi = cc["ratio"]
        out.append(f"| torch.compile of the forward ({cc['precision']}, channels_last), cold: compile s, eager / "
                   f"compiled epoch, break-even | {cc['compile_s']:.0f} s, {r:.2f}× ({lo:.2f}–{hi:.2f}), "
                   f"{cc['break_even_epochs']:.0f} epochs | — | `{c['command']}`, {c['date']}, {c['machine']}, "
                   f"load {c['load_start']:.1f}-{c['load_end']:.1f} |")
    a = data.get("accuracy")
    if a:
        acc = a["accuracy"]
        for m, label in (("clean_acc", "clean accuracy %"), ("acc_gap", "acc-gap (pp)")):
            cells = []
            for kind in KINDS:
                v = acc["verdicts"][kind][m]
                lo, hi = v["float32_spread"]
                f32 = ", ".join(f"{x:.1f}" for x in acc["per_seed"][kind]["float32"][m])
                lev = ", ".join(f"{x:.1f}" for x in acc["per_seed"][kind][acc["lever"]][m])
                cells.append(f"float32 {f32} (spread {lo:.1f}–{hi:.1f}); lever {lev} (mean {v['lever_mean']:.1f}): "
                             + ("within" if v["within"] else "**outside**"))
            out.append(f"| {label}, CH-33 seeds {acc['seeds']}, {acc['lever']} | {cells[0]} | {cells[1]} | "
                       f"`{a['command']}`, {a['date']}, {a['machine']} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--short", action="store_true", help="fewer epochs (push and last layer weigh more)")
    ap.add_argument("--compile", action="store_true", help="torch.compile's break-even instead")
    ap.add_argument("--accuracy", action="store_true", help="the development seeds' accuracy check instead")
    ap.add_argument("--save", action="store_true", help=f"record the result in {RESULTS.name} (PERFORMANCE.md's table)")
    args = ap.parse_args()
    t0, load0 = time.perf_counter(), load()
    res: dict = {"machine": machine(), "threads": THREADS, "device": str(DEV), "load_start": load0}
    if args.compile:
        res["compile"] = compile_break_even(args.rounds)
    elif args.accuracy:
        res["accuracy"] = accuracy_check()
        for kind, v in res["accuracy"]["verdicts"].items():
            for m, r in v.items():
                lo, hi = r["float32_spread"]
                f32 = [round(a, 1) for a in res["accuracy"]["per_seed"][kind]["float32"][m]]
                lev = [round(a, 1) for a in res["accuracy"]["per_seed"][kind][LEVER][m]]
                print(f"{kind} {m}: float32 {f32} (spread {lo:.1f}..{hi:.1f}), {LEVER} {lev} "
                      f"(mean {r['lever_mean']:.1f}): {'within' if r['within'] else 'OUTSIDE'}")
    else:
        res["rounds"], res["short"] = args.rounds, args.short
        res["training"] = measure(args.rounds, args.short)
        for kind, v in res["training"].items():
            print(f"{kind}: float32 NCHW {v['seconds']['float32']:.2f} s")
            for arm, (r, lo, hi) in v["ratio"].items():
                c, clo, chi = v["cpu_ratio"][arm]
                print(f"  {arm}: {r:.2f}x ({lo:.2f}-{hi:.2f}), {v['seconds'][arm]:.2f} s; "
                      f"CPU time {c:.2f}x ({clo:.2f}-{chi:.2f})")
    res["load_end"], res["minutes"] = load(), (time.perf_counter() - t0) / 60
    print(json.dumps(res))
    if args.save:
        save("compile" if args.compile else "accuracy" if args.accuracy else
             "training_short" if args.short else "training", res)


if __name__ == "__main__":
    main()
