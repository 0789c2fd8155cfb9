"""The ``hansbench`` command: list the registries, run a suite, rebuild the tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hansbench.registry import REGISTRIES, UnknownNameError, load_all, plugin_errors


def cmd_list(args: argparse.Namespace) -> int:
    from hansbench.bench.config import builtin_suites

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
    """metrics.csv (tidy), figures and the leaderboard, from the finished jobs of this suite."""
    from hansbench.bench.figures import ordering_curves, session_galleries
    from hansbench.bench.leaderboard import write_leaderboard

    rows = runner.store.rows(summary.job_keys)
    rows.to_csv(runner.out / "metrics.csv", index=False)
    names = []
    if figures and not summary.interrupted:
        names = ordering_curves(rows, runner.out) + session_galleries(runner.sessions, runner.out, log=runner.log)
    return write_leaderboard(rows, runner.out, suite=runner.suite.name, figures=names)


def cmd_run(args: argparse.Namespace) -> int:
    from hansbench.bench.config import SuiteError, load_suite
    from hansbench.bench.runner import Runner

    try:
        suite = load_suite(args.suite)
    except SuiteError as exc:
        print(f"hansbench: invalid suite: {exc}", file=sys.stderr)
        return 2
    if args.seed is not None:
        suite.seeds = list(args.seed)
    if args.device:
        suite.device = args.device
    out = Path(args.out or f"hansbench-out/{suite.name}")
    try:
        runner = Runner(suite, out, progress=not args.no_progress)
    except RuntimeError as exc:
        print(f"hansbench: {exc}", file=sys.stderr)
        return 2
    runner.log(f"suite {suite.name!r} on {runner.device} -> {out}")
    summary = runner.run()
    paths = write_outputs(runner, summary, figures=not args.no_figures)
    runner.store.close()
    print(f"{summary.done} jobs done, {summary.skipped} already done, {len(summary.failed)} failed "
          f"in {summary.seconds:.1f} s")
    print(f"results: {out / 'results.sqlite'}\nmetrics: {out / 'metrics.csv'}\nleaderboard: {paths['leaderboard.md']}")
    for ids, err in summary.failed:
        print(f"  failed: {ids['scenario']} seed {ids['seed']} {ids['model']} {ids['explainer']} "
              f"{ids['clusterer']} {ids['metric']}: {err}", file=sys.stderr)
    if summary.interrupted:
        return 130
    return 1 if summary.failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    """Rebuild tables from an existing results directory (all rows in its store)."""
    from hansbench.bench.leaderboard import write_leaderboard
    from hansbench.bench.store import ResultsStore

    db = Path(args.out) / "results.sqlite"
    if not db.is_file():
        print(f"hansbench: no results store at {db}; run `hansbench run --out {args.out}` first", file=sys.stderr)
        return 2
    store = ResultsStore(db)
    rows = store.rows()
    rows.to_csv(Path(args.out) / "metrics.csv", index=False)
    from hansbench.bench.figures import ordering_curves

    paths = write_leaderboard(rows, Path(args.out), suite=args.name, figures=ordering_curves(rows, Path(args.out)))
    print(paths["leaderboard.md"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hansbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="list explainers, clusterers, metrics, datasets, artifacts and suites")
    ls.add_argument("kind", nargs="?", choices=list(REGISTRIES), help="only this registry")
    ls.set_defaults(fn=cmd_list)
    run = sub.add_parser("run", help="run a suite (default: the built-in 'quick')")
    run.add_argument("--suite", default="quick", help="built-in suite name or path to a suite .toml (default: quick)")
    run.add_argument("--out", help="results directory (default: hansbench-out/<suite>)")
    run.add_argument("--seed", type=int, nargs="+", help="override the suite's seeds")
    run.add_argument("--device", help="override the suite's device (auto, cpu, cuda)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--no-figures", action="store_true", help="skip the curves and map galleries")
    run.set_defaults(fn=cmd_run)
    rep = sub.add_parser("report", help="rebuild metrics.csv and the leaderboard from a results directory")
    rep.add_argument("--out", required=True)
    rep.add_argument("--name", default="results")
    rep.set_defaults(fn=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except UnknownNameError as exc:
        print(f"hansbench: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
