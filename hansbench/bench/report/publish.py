"""One publish step for ``hansbench run`` and ``hansbench report``: rows -> metrics.csv -> curves -> leaderboard ->
the archive of the run (``run.zip``: :mod:`hansbench.bench.report.archive`).

It only reads: the rows, the jobs and the run's configuration through the store's typed API, figures given
by the caller (drawn files, or a callable that draws them). A digest manifest (``outputs.json``) records
what the written outputs depend on, so a warm rerun whose rows and output code did not change skips them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from hansbench.bench.engine import keys, source_imports

MANIFEST = "outputs.json"
OUTPUT_PACKAGE = "hansbench.bench.report"  # its modules and what they import shape the outputs


def output_code(root: Path = source_imports.ROOT) -> str:
    """Digest of the code that shapes the outputs: every module of the report package and every hansbench
    module they import, transitively (read with ``ast``; never a hand-kept list, which misses modules).

    ``root``: the ``hansbench`` folder to read (this one by default). Modules enter by name and content, so a
    copy of the package in another place has the same digest.
    """
    files = source_imports.import_closure(source_imports.package_files(OUTPUT_PACKAGE, root), root)
    return keys.digest([(source_imports.module_name(f, root), keys.path_digest(f)) for f in files], 16)


def outputs_digest(store, suite_name: str, job_keys: Collection[str] | None, figures: bool) -> str:
    """What the written outputs depend on: the finished row nodes (of the plan, or all), the output code, the title
    and the run's resolved configuration (its tuning seeds, controls and sweep axes shape the page)."""
    done = store.done_keys()
    rows = sorted(done if job_keys is None else (k for k in job_keys if k in done))
    run = store.latest_run()
    return keys.digest({"rows": rows, "scope": "plan" if job_keys is not None else "store", "figures": figures,
                        "code": output_code(), "suite": suite_name, "config": run.config if run is not None else {}})


def _unchanged(out: Path, digest: str) -> dict[str, Path] | None:
    """The paths written last time when the manifest's digest is ``digest`` and its files are all there."""
    try:
        previous = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(previous, dict) or previous.get("digest") != digest:
        return None
    if not all((out / f).is_file() for f in previous.get("files", [])):
        return None
    return {k: out / v for k, v in previous.get("paths", {}).items()}


def paths_names(paths: dict[str, Path], out: Path) -> list[str]:
    """The written paths as names relative to ``out``."""
    return [str(Path(p).relative_to(out)) for p in paths.values() if Path(p).is_relative_to(out)]


def publish(out: str | Path, *, store, suite_name: str, job_keys: Collection[str] | None = None,
            omitted_keys: Collection[str] | None = None, curves: bool = True,
            figures: Sequence[Any] | Callable[[], Sequence[Any]] = (), partial: str = "",
            skip_unchanged: bool = False, log: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Write metrics.csv (tidy rows), the ordering curves and the leaderboard into ``out``; paths by file name.

    ``job_keys``: the row nodes to publish (a run's plan); None = every row in the store (``report``).
    ``omitted_keys``: the plan's left-out combinations; None = every ``not-applicable`` job. ``curves``: draw
    the ordering curves from the rows. ``figures``: more figures (:class:`hansbench.bench.report.figures.base.Figure` or
    file names), or a callable returning them, called only when the outputs are written. ``partial``: why the
    results are incomplete (said at the top of every format; nothing is skipped and no manifest is kept).
    ``skip_unchanged``: return the last paths without writing when the manifest says nothing changed.
    """
    from hansbench.bench.report.figures.curves import ordering_curves
    from hansbench.bench.report.leaderboard import omitted_from_jobs
    from hansbench.bench.report.writers import write_leaderboard

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    digest = outputs_digest(store, suite_name, job_keys, bool(curves or figures))
    if skip_unchanged and not partial:
        kept = _unchanged(out, digest)
        if kept is not None:
            if log:
                log("outputs unchanged since they were last written: kept")
            return kept
    rows = store.rows(job_keys)
    rows.to_csv(out / "metrics.csv", index=False)
    omitted = omitted_from_jobs(store.jobs(), omitted_keys)
    figs = list(ordering_curves(rows, out)) if curves else []
    figs += list(figures() if callable(figures) else figures)
    names = [name for f in figs for name in ((f, "") if isinstance(f, str) else (f.file, getattr(f, "vector", "")))
             if name]
    from hansbench.bench.report.archive import ARCHIVE, pack

    run = store.latest_run()
    runs = store.runs()
    paths = write_leaderboard(rows, out, suite=suite_name, figures=figs, omitted=omitted, partial=partial,
                              config=run.config if run is not None else {}, runs=runs)
    paths[ARCHIVE] = pack(out, runs, [*paths_names(paths, out), *names])
    manifest = out / MANIFEST
    if partial:
        manifest.unlink(missing_ok=True)
    else:
        rel = {k: str(Path(v).relative_to(out)) for k, v in paths.items()}
        manifest.write_text(json.dumps({"digest": digest, "files": sorted(set(rel.values()) | set(names)),
                                        "paths": rel}))
    return paths
