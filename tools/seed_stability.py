"""Why separability swings from seed to seed: the table of docs/seed-stability.md, from a finished run.

    python tools/seed_stability.py --results results/seeds --scenario CH-33 --model classifier

prints (or, with ``--out FILE``, writes) per explainer the ARI's spread over the run's seeds and its
Spearman correlation with the reliance gap, the relevance on the post-it and the maps' structure
(``hansbench.bench.report.seed_stability``), then the per-seed values. The run needs the metrics
``cluster-detection``, ``reliance``, ``artifact-localisation`` and ``map-structure``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hansbench.bench.engine.store import ResultsStore
from hansbench.bench.report.seed_stability import markdown, per_seed, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="a finished run's results directory")
    ap.add_argument("--scenario", default="CH-33")
    ap.add_argument("--model", default="classifier")
    ap.add_argument("--clusterer", action="append", help="clusterers to report (default: spray and "
                    "activation-clustering)")
    ap.add_argument("--out", help="write the Markdown here instead of printing it")
    args = ap.parse_args(argv)
    db = Path(args.results) / "results.sqlite"
    if not db.is_file():
        print(f"seed_stability: no results.sqlite in {args.results}; give a finished run's results directory",
              file=sys.stderr)
        return 2
    rows = ResultsStore(db).rows()
    parts = []
    for clusterer in args.clusterer or ["spray", "activation-clustering"]:
        table = per_seed(rows, args.scenario, args.model, clusterer)
        if table.empty:
            print(f"seed_stability: no {clusterer} ARI rows for {args.scenario} x {args.model} in {db}",
                  file=sys.stderr)
            continue
        parts += [f"### {args.scenario}, {args.model}, {clusterer}: over seeds", "", markdown(summary(table)), "",
                  f"### {args.scenario}, {args.model}, {clusterer}: per seed", "", markdown(table), ""]
    if not parts:
        return 1
    text = "\n".join(parts)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
