"""Publishing the leaderboard into a results directory: the page built once as a document
(:func:`hansbench.bench.report.page.build_page`) and written by one writer per format (leaderboard.md, .tex,
.html: :mod:`hansbench.bench.report.render`), the tidy CSVs (:mod:`hansbench.bench.report.csv_files`), the
critical-difference diagrams and the sweeps' figures.

The tables themselves are built in :mod:`hansbench.bench.report.leaderboard`. The names other modules import
from here (``to_latex``, ``csv_name``, ``tidy_csv``, ``LATEX_BUDGET``, ``latex_overfull``) are re-exported.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from hansbench.bench.report.csv_files import csv_name, tidy_csv, write_schema_csvs, write_tidy
from hansbench.bench.report.document import Document
from hansbench.bench.report.leaderboard import build_sections
from hansbench.bench.report.page import build_page
from hansbench.bench.report.render import html, latex, markdown
from hansbench.bench.report.render.columns import HTML_BUDGET, LATEX_BUDGET, split_columns
from hansbench.bench.report.render.latex import latex_overfull, to_latex
from hansbench.bench.report.render.markdown import to_markdown

__all__ = ["write_leaderboard", "stored_config", "WRITERS", "csv_name", "tidy_csv", "to_latex", "to_markdown",
           "latex_overfull", "split_columns", "LATEX_BUDGET", "HTML_BUDGET"]

# The page's files and the writer of each: every one renders the same document.
WRITERS: dict[str, Callable[[Document], str]] = {
    "leaderboard.md": markdown.render, "leaderboard.tex": latex.render, "leaderboard.html": html.render}


def stored_config(out: Path) -> dict:
    """The stored run configuration of the latest run in ``out/results.sqlite`` (its record, or an old run's TOML; {}
    when there is none); read only."""
    run = _latest_run(out)
    return run.config if run is not None else {}


def _latest_run(out: Path):
    """The latest run's record in ``out/results.sqlite`` (None when there is none or it cannot be read); read only."""
    from hansbench.bench.engine.store import StoreVersionError, read_latest_run

    try:
        return read_latest_run(Path(out) / "results.sqlite")
    except StoreVersionError:
        return None


def write_leaderboard(rows: pd.DataFrame, out: Path, *, suite: str, figures: list | Callable[[], list] | None = None,
                      omitted: pd.DataFrame | None = None, partial: str = "",
                      config: dict | None = None, runs: list | None = None) -> dict[str, Path]:
    """Write leaderboard.md/.tex/.html, ``<scenario>.<table>.csv``, the CD diagrams and the sweeps; paths by file name.

    ``figures``: file names in ``out`` (shown at the end) or objects with ``scenario``, ``file``, ``caption``
    and optionally ``vector`` (shown in their scenario's section), or a callable returning them, called once the
    tables are built (so figures drawn in another process overlap with the tables). ``omitted``: combinations the planner left
    out (:func:`hansbench.bench.report.leaderboard.omitted_from_jobs`). ``partial``: why the run is incomplete; said at
    the top of every format. ``config``: the run's suite configuration (seeds, scenarios' poisonings for the
    controls, the sweeps: :mod:`hansbench.bench.report.sweep_report`); None = the latest run's in ``out/results.sqlite``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = stored_config(out) if config is None else config
    runs = [r for r in [_latest_run(out)] if r is not None] if runs is None else runs
    sections = build_sections(rows, omitted, config)
    figures = figures() if callable(figures) else figures  # (drawn meanwhile in another process: publish.py)
    page = build_page(rows, sections, out, suite=suite, figures=figures, partial=partial, config=config, runs=runs)
    paths = {name: out / name for name in page.attachments()}
    paths.update(write_tidy(sections, out))
    paths.update(write_schema_csvs(sections, out))
    for name, render in WRITERS.items():
        (out / name).write_text(render(page), encoding="utf-8")
        paths[name] = out / name
    return paths
