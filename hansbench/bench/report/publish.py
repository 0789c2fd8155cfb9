"""One publish step for ``hansbench run`` and ``hansbench report``: rows -> metrics.csv -> curves -> leaderboard ->
the archive of the run (``run.zip``: :mod:`hansbench.bench.report.archive`).

It only reads: the rows, the jobs and the run's configuration through the store's typed API, figures given
by the caller (drawn files, or a callable that draws them). A digest manifest (``outputs.json``) records
what the written outputs depend on, so a warm rerun whose rows and output code did not change skips them.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ProcessPoolExecutor
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
    return _code_and_files(root)[0]


def _code_and_files(root: Path = source_imports.ROOT) -> tuple[str, list[Path]]:
    files = source_imports.import_closure(source_imports.package_files(OUTPUT_PACKAGE, root), root)
    return keys.digest([(source_imports.module_name(f, root), keys.path_digest(f)) for f in files], 16), files


def _stat(path: Path | str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def recorded_output_code(out: Path) -> tuple[str, dict[str, list[int]]]:
    """:func:`output_code` and the files it read with their size and modification time, taken from the last
    manifest in ``out`` when none of those files changed and the report package has no new module (reading the
    closure's sources with ``ast`` takes most of a second, on every warm rerun), else computed again."""
    try:
        previous = json.loads((out / MANIFEST).read_text())
        code, files = previous["code"], previous["code_files"]
        package = {str(f) for f in source_imports.package_files(OUTPUT_PACKAGE, source_imports.ROOT)}
        if isinstance(code, str) and package <= set(files) and all(_stat(f) == s for f, s in files.items()):
            return code, files
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    code, paths = _code_and_files()
    return code, {str(f): _stat(f) for f in paths}


def outputs_digest(store, suite_name: str, job_keys: Collection[str] | None, figures: bool,
                   code: str | None = None) -> str:
    """What the written outputs depend on: the finished row nodes (of the plan, or all), the output code (``code``,
    else :func:`output_code`), the title and the run's resolved configuration (its tuning seeds, controls and sweep
    axes shape the page)."""
    done = store.done_keys()
    rows = sorted(done if job_keys is None else (k for k in job_keys if k in done))
    run = store.latest_run()
    return keys.digest({"rows": rows, "scope": "plan" if job_keys is not None else "store", "figures": figures,
                        "code": code or output_code(), "suite": suite_name, "config": run.config if run is not None else {}})


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


def aside(draw: Callable[..., list], *args) -> Callable[[], list]:
    """Start ``draw(*args)`` in a forked process (matplotlib figures are independent of the tables, and a figure's
    layout and rendering take seconds) and return what collects its figure records; in this process where fork is
    unavailable. An error in the child is raised by the collector, as it would be here."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return lambda: draw(*args)
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
    future = pool.submit(draw, *args)

    def collect() -> list:
        try:
            return future.result()
        finally:
            pool.shutdown()
    return collect


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
    code, code_files = recorded_output_code(out)
    digest = outputs_digest(store, suite_name, job_keys, bool(curves or figures), code)
    if skip_unchanged and not partial:
        kept = _unchanged(out, digest)
        if kept is not None:
            if log:
                log("outputs unchanged since they were last written: kept")
            return kept
    rows = store.rows(job_keys)
    drawn = aside(ordering_curves, rows, out) if curves else list  # drawn while the tables are built
    rows.to_csv(out / "metrics.csv", index=False)
    omitted = omitted_from_jobs(store.jobs(), omitted_keys)
    figs: list = []

    def all_figures() -> list:
        figs.extend([*drawn(), *(figures() if callable(figures) else figures)])
        return figs

    from hansbench.bench.report.archive import ARCHIVE, pack

    run = store.latest_run()
    runs = store.runs()
    paths = write_leaderboard(rows, out, suite=suite_name, figures=all_figures, omitted=omitted, partial=partial,
                              config=run.config if run is not None else {}, runs=runs)
    names = [name for f in figs for name in ((f, "") if isinstance(f, str) else (f.file, getattr(f, "vector", "")))
             if name]
    paths[ARCHIVE] = pack(out, runs, [*paths_names(paths, out), *names])
    manifest = out / MANIFEST
    if partial:
        manifest.unlink(missing_ok=True)
    else:
        rel = {k: str(Path(v).relative_to(out)) for k, v in paths.items()}
        manifest.write_text(json.dumps({"digest": digest, "files": sorted(set(rel.values()) | set(names)),
                                        "paths": rel, "code": code, "code_files": code_files}))
    return paths
