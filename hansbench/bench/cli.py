"""The ``hansbench`` command: list the registries, run a suite, rebuild the tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hansbench.registry import REGISTRIES, UnknownNameError, load_all, plugin_errors

# Every other import is inside the command that needs it, on purpose: `hansbench --help` and argument errors
# must not import torch, pandas or matplotlib (seconds of start-up); the runner, store and writers load them.


def cmd_list(args: argparse.Namespace) -> int:
    """``hansbench list``: every registry's names with their first docstring line, and the suites."""
    from hansbench.bench.suite.files import builtin_suites

    load_all()
    for title, registry in REGISTRIES.items():
        if args.kind and args.kind != title:
            continue
        print(f"{title}:")
        names = registry.names()
        width = max((len(n) for n in names), default=0)
        for name in names:
            print(f"  {name:<{width}}  {registry.describe(name)}")
        print()
    if not args.kind:
        print("suites:\n  " + "  ".join(builtin_suites()))
    for name, err in plugin_errors.items():
        print(f"warning: plugin {name!r} failed to load: {err}", file=sys.stderr)
    return 0


def write_outputs(runner, summary, *, figures: bool = True) -> dict:
    """metrics.csv (tidy), figures and the leaderboard from the finished nodes of this suite
    (:func:`hansbench.bench.report.publish.publish`; skipped when nothing they depend on changed)."""
    from hansbench.bench.engine.runner import omitted_key
    from hansbench.bench.report.figures.session import session_figures
    from hansbench.bench.report.publish import publish

    plan = runner.last_plan
    draw = figures and not summary.interrupted
    partial = (f"the run was interrupted: {summary.done + summary.skipped} of {len(summary.job_keys)} nodes are "
               "done; run the same command again to finish") if summary.interrupted else ""
    paths = publish(runner.out, store=runner.store, suite_name=runner.suite.name, job_keys=summary.job_keys,
                    omitted_keys={omitted_key(om.ids) for om in plan.omitted} if plan is not None else None,
                    curves=draw, figures=(lambda: session_figures(runner, runner.out, log=runner.log)) if draw else (),
                    partial=partial, skip_unchanged=True)
    if plan is not None and not summary.interrupted:  # the cluster explorer beside the leaderboard (issue 32)
        from hansbench.bench.report.explorer.write import seeds_setting, write_explorer

        write_explorer(runner.out, plan, runner.env, title=runner.suite.name, seeds=seeds_setting(runner.suite),
                       log=runner.log)
    return paths


def cmd_run(args: argparse.Namespace) -> int:
    """``hansbench run``: validate the suite, run what is not done, write the outputs."""
    from hansbench.bench.engine.runner import ResultsLocked, Runner
    from hansbench.bench.suite.config import SuiteError, load_suite
    from hansbench.bench.suite.seeds import check_seeds

    try:  # the command line's own values are named as the user wrote them
        seeds = check_seeds("--seed", list(args.seed)) if args.seed is not None else None
    except SuiteError as exc:
        print(f"hansbench: {exc}", file=sys.stderr)
        return 2
    problem = check_device(args.device, "--device") if args.device else None
    for flag, value in (("--threads", args.threads), ("--jobs", args.jobs), ("--node-timeout", args.node_timeout)):
        if problem is None and value is not None and value <= 0:
            problem = f"{flag} {value:g}: expected a number > 0 (leave it out for the suite's value)"
    if problem:
        print(f"hansbench: {problem}", file=sys.stderr)
        return 2
    try:  # the command line's values go in before validation: the suite is never changed after it
        suite = load_suite(args.suite, seeds=seeds, device=args.device or None, threads=args.threads,
                           figures=False if args.no_figures else None, jobs=args.jobs, node_timeout_s=args.node_timeout)
    except SuiteError as exc:
        print(f"hansbench: invalid suite: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out or f"hansbench-out/{suite.name}")
    for problem in (check_device(suite.device, "suite.device"), check_out_dir(out)):
        if problem:
            print(f"hansbench: {problem}", file=sys.stderr)
            return 2
    for line in [*plugin_warnings(), *suite.warnings]:
        print(line, file=sys.stderr)
    try:
        runner = Runner(suite, out, progress=not args.no_progress, executor=args.executor, address=args.address,
                        wait_for_lock=args.wait, allow_mixed=args.allow_mixed)
    except RuntimeError as exc:
        print(f"hansbench: {exc}", file=sys.stderr)
        return 2
    side = f", {runner.jobs} side by side" if args.executor == "local" and hasattr(runner, "jobs") else ""
    runner.log(f"suite {suite.name!r} on {runner.device} ({args.executor} executor, {suite.threads} torch "
               f"thread(s) per node{side}) -> {out}")
    runner.log(f"running {suite.describe_seeds()}")
    try:
        summary = runner.run()
    except ResultsLocked as exc:
        print(f"hansbench: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # e.g. the Ray executor without Ray installed
        print(f"hansbench: {exc}", file=sys.stderr)
        return 2
    from hansbench.bench.engine.runner import ignoring_interrupts

    if summary.interrupted:
        runner.log("writing the results of the finished nodes (a partial leaderboard; Ctrl-C is ignored meanwhile)")
        with ignoring_interrupts():
            paths = write_outputs(runner, summary, figures=False)
    else:
        paths = write_outputs(runner, summary, figures=suite.figures)
    computed = ", ".join(f"{n} {t}" for t, n in sorted(summary.resources.items()))
    print(f"{summary.done} nodes done{f' (+ {computed})' if computed else ''}, {summary.skipped} already done, "
          f"{len(summary.failed)} failed, {len(summary.dependency_skipped)} skipped because an input failed "
          f"in {summary.seconds:.1f} s")
    if summary.done or summary.resources:
        print(runner.store.time_report(summary.run_id, top=5))
    if any(summary.counts.values()):  # (the local executor's; Ray workers keep their own)
        print(summary.shared_work())
    runner.store.close()
    from hansbench.bench.engine.store import family_of

    print(f"results: {out / 'results.sqlite'}\nmetrics: {out / 'metrics.csv'}\nleaderboard: {paths['leaderboard.md']}")
    for ids, err in summary.failed:
        print(f"  failed: {ids['node']} {ids.get('scenario', '')} seed {ids.get('seed', '')} {ids.get('model', '')} "
              f"{ids.get('explainer', '')} {ids.get('clusterer', '')} {family_of(ids)}: {err}", file=sys.stderr)
    if summary.interrupted:
        return 130
    return 1 if summary.failed or summary.dependency_skipped else 0


def cmd_report(args: argparse.Namespace) -> int:
    """Rebuild tables from an existing results directory (all rows in its store)."""
    from hansbench.bench.engine.store import ResultsStore
    from hansbench.bench.report.publish import publish

    db = Path(args.out) / "results.sqlite"
    problem = check_out_dir(args.out)
    if problem:
        print(f"hansbench: {problem}", file=sys.stderr)
        return 2
    if not db.is_file():
        print(f"hansbench: no results store at {db}; run `hansbench run --out {args.out}` first", file=sys.stderr)
        return 2
    store = ResultsStore(db)
    try:
        name = args.name or suite_name(store) or Path(args.out).name
        paths = publish(Path(args.out), store=store, suite_name=name)
        print(store.time_report())
        from hansbench.bench.report.explorer.write import write_explorer

        write_explorer(Path(args.out), title=name, seeds=args.explorer_seeds)
    finally:
        store.close()
    print(paths["leaderboard.md"])
    return 0


def suite_name(store) -> str:
    """The suite of the latest run recorded in ``store`` ('' when it holds none)."""
    run = store.latest_run()
    return run.suite if run is not None else ""


def cmd_explain(args: argparse.Namespace) -> int:
    """The maps of one image from every named method, from the cached models of a finished run."""
    from hansbench.bench.explain import ExplainError, explain_image

    try:
        path = explain_image(args.image, results=args.results, scenario=args.scenario, model=args.model,
                             methods=args.method, out=args.out, seed=args.seed, split=args.split)
    except ExplainError as exc:
        print(f"hansbench explain: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    """The cluster explorer of a finished run: (re)written where missing or asked for, opened where a display is."""
    from hansbench.bench.report.explorer.write import open_explorer

    if not (Path(args.results) / "results.sqlite").is_file():
        print(f"hansbench explore: no results store in {args.results!r}; run `hansbench run --out {args.results}` "
              "first (or give --results DIR of a finished run)", file=sys.stderr)
        return 2
    index = open_explorer(args.results, rewrite=args.rewrite, seeds=args.seeds)
    if index is None:
        print(f"hansbench explore: {args.results!r} records no readable run; rerun it with this hansbench",
              file=sys.stderr)
        return 2
    print(index)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="hansbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="list every registry (explainers, clusterers, metrics, datasets, artifacts, "
                        "poisonings, models, backbones) and the suites")
    ls.add_argument("kind", nargs="?", choices=list(REGISTRIES), help="only this registry")
    ls.set_defaults(fn=cmd_list)
    run = sub.add_parser("run", help="run a suite (default: the built-in 'quick')")
    run.add_argument("--suite", default="quick", help="built-in suite name or path to a suite .toml (default: quick)")
    run.add_argument("--out", help="results directory (default: hansbench-out/<suite>)")
    run.add_argument("--seed", type=int, nargs="+", action="extend", metavar="SEED",
                     help="run these seeds instead of the suite's: --seed 5 6 or --seed 5 --seed 6 (each once)")
    run.add_argument("--device", help="override the suite's device (auto, cpu, cuda)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--no-figures", action="store_true", help="skip the curves and map galleries")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local: in this process (default); ray: nodes as Ray tasks (pip install 'hansbench[ray]')")
    run.add_argument("--address", help="Ray cluster address for --executor ray (e.g. auto); default: a local Ray")
    run.add_argument("--threads", type=int, help="torch threads per node (default: the suite's threads, else 1); "
                     "fixed, so the rows do not depend on the machine's cores")
    run.add_argument("--jobs", type=int, help="nodes run side by side in worker processes (default: the suite's "
                     "jobs, else the cores divided by the threads; 1: in this process)")
    run.add_argument("--allow-mixed", action="store_true", help="add this run's rows to a results directory that "
                     "holds rows of another device or thread count")
    run.add_argument("--node-timeout", type=float, help="seconds one node may run before it is failed "
                     "(default: the suite's node_timeout_s)")
    run.add_argument("--wait", action="store_true", help="wait for another run on the same --out instead of stopping")
    run.set_defaults(fn=cmd_run)
    rep = sub.add_parser("report", help="rebuild metrics.csv and the leaderboard from a results directory")
    rep.add_argument("--out", required=True)
    rep.add_argument("--name", help="title of the leaderboard (default: the suite of the latest run in --out)")
    rep.add_argument("--explorer-seeds", choices=["first", "all"], help="which seeds get cluster explorer pages: "
                     "each scenario and model's first seed (light, for published results) or all (default: the "
                     "suite's explorer_seeds, else all)")
    rep.set_defaults(fn=cmd_report)
    exp = sub.add_parser("explain", help="the maps of one image from every method, using a finished run's models")
    exp.add_argument("image", help="an image file, or an index into the scenario's test set (see --split)")
    exp.add_argument("--results", help="results directory of a finished run (default: hansbench-out/quick)")
    exp.add_argument("--scenario", help="scenario name (default: the suite's first)")
    exp.add_argument("--model", help="model kind (default: every kind of the suite)")
    exp.add_argument("--method", nargs="+", help="explainers (default: every explainer of the suite for the model)")
    exp.add_argument("--seed", type=int, help="seed of the models (default: the suite's first)")
    exp.add_argument("--split", default="artifact_test", choices=["artifact_test", "clean_test"],
                     help="test set an index refers to (default: artifact_test)")
    exp.add_argument("--out", help="figure file (default: explain-<image>.png in the current directory)")
    exp.set_defaults(fn=cmd_explain)
    xp = sub.add_parser("explore", help="open the cluster explorer of a finished run (what every detector grouped)")
    xp.add_argument("--results", default="hansbench-out/quick", help="results directory (default: hansbench-out/quick)")
    xp.add_argument("--rewrite", action="store_true", help="write the explorer again even where it exists")
    xp.add_argument("--seeds", choices=["first", "all"], help="write it again with pages for each scenario and "
                    "model's first seed only, or for all seeds (default: as written; the suite's explorer_seeds, "
                    "else all)")
    xp.set_defaults(fn=cmd_explore)
    return p


def main(argv: list[str] | None = None) -> int:
    """The ``hansbench`` entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    from hansbench.bench.engine.store import StoreVersionError

    try:
        return args.fn(args)
    except (UnknownNameError, StoreVersionError) as exc:
        print(f"hansbench: {exc}", file=sys.stderr)
        return 2



# -- checks of the command line, before anything is written ---------------------------
# Each returns None when the value is usable, else the one-line message to print (exit code 2).

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N"
_SQLITE_HEADER = b"SQLite format 3\x00"


def check_out_dir(path: str | Path) -> str | None:
    """``--out``: a directory that exists and is writable, or that can be created; its store, if
    there is one, a writable SQLite file. Reads only: nothing is created."""
    import os

    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        return f"--out {str(out)!r} is a file, not a directory; give a directory (it is created if missing)"
    if out.is_dir():
        if not _writable(out):
            return f"--out {str(out)!r} is not writable; give a directory you can write to"
        db = out / "results.sqlite"
        if db.exists():
            if not db.is_file():
                return f"--out {str(out)!r}: {str(db)!r} is not a file; move it away or give another --out"
            if not os.access(db, os.R_OK | os.W_OK):
                return f"--out {str(out)!r}: the results store {str(db)!r} is not writable; fix its permissions"
            with db.open("rb") as fh:
                head = fh.read(len(_SQLITE_HEADER))
            if head and head != _SQLITE_HEADER:
                return (f"--out {str(out)!r}: {str(db)!r} is not a hansbench results store (not SQLite); "
                        "move it away or give another --out")
        return None
    parent = out.parent
    while not parent.exists() and parent != parent.parent:  # the nearest existing ancestor decides
        parent = parent.parent
    if not parent.is_dir():
        return f"--out {str(out)!r} cannot be created: {str(parent)!r} is a file, not a directory"
    if not _writable(parent):
        return f"--out {str(out)!r} cannot be created: {str(parent)!r} is not writable"
    return None


def _writable(directory: Path) -> bool:
    """Permission bits (``os.access``) and a read-only mount (which root cannot write either)."""
    import os

    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    try:
        return not os.statvfs(directory).f_flag & os.ST_RDONLY
    except (OSError, AttributeError):  # no statvfs (Windows): the permission bits decide
        return True


def check_device(name: str, what: str = "--device") -> str | None:
    """``--device`` / ``suite.device``: one of auto, cpu, cuda, cuda:N, and CUDA present when asked for.
    ``what`` names the setting in the message (e.g. ``"suite.device"``)."""
    import re

    name = str(name)
    if name in ("auto", "cpu"):
        return None
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if not match:
        return f"{what} {name!r} is not a device; use one of {DEVICE_CHOICES}"
    import torch

    if not torch.cuda.is_available():
        return f"{what} {name!r}: CUDA is not available on this machine; use cpu (or auto)"
    if match.group(1) is not None and int(match.group(1)) >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        return (f"{what} {name!r}: this machine has {n} CUDA device(s) "
                f"({', '.join(f'cuda:{i}' for i in range(n))}); use one of them, or cuda")
    return None


def plugin_warnings() -> list[str]:
    """One line per installed plugin that failed to load (print them in ``run`` as ``list`` does)."""
    load_all()
    return [f"warning: plugin {name!r} failed to load: {' '.join(err.split())}" for name, err in plugin_errors.items()]


if __name__ == "__main__":
    sys.exit(main())
