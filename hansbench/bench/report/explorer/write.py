"""Writing the explorer folder beside the leaderboard: the script and style once, a page per (scenario, model kind,
seed) of the plan, the index; and what ``hansbench explore`` opens.

Pages are rewritten each time (their data is read from the cache in milliseconds); sprite sheets and the cached
embeddings are not (their names and keys say what they show). A page must never cost the results: one that fails
is logged and left out.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from hansbench.bench.report.explorer import page, script, sprites
from hansbench.bench.report.explorer.links import EXPLORER_DIR, INDEX, page_path
from hansbench.bench.report.explorer.slots import plan_of_results, slots
from hansbench.bench.report.explorer.views import page_data


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


SEED_CHOICES = ("first", "all")  # which seeds get pages: the first of each scenario and model kind, or every one
SETTING = "explorer_seeds"  # the [suite] key that chooses it (hansbench run); the CLI's --seeds wins


def seeds_setting(suite) -> str:
    """The suite's ``[suite] explorer_seeds`` (checked by the suite loader), default ``all``: a user's own run
    gets a page per seed; a published run that must stay light sets (or is reported with) ``first``."""
    table = (getattr(suite, "raw", None) or {}).get("suite") or {}
    return str(table.get(SETTING, "all"))


def chosen(found: list, seeds: str) -> list:
    """The slots that get pages: every one (``all``) or, per scenario and model kind, the first seed's (the seed
    the leaderboard's links open)."""
    if seeds not in SEED_CHOICES:
        raise ValueError(f"explorer seeds {seeds!r}: use one of {list(SEED_CHOICES)} (first: a page for each "
                         "scenario and model kind's first seed only; all: every seed)")
    if seeds == "all":
        return found
    first: dict[tuple, int] = {}
    for s in found:
        first[(s.scenario, s.model)] = min(s.seed, first.get((s.scenario, s.model), s.seed))
    return [s for s in found if s.seed == first[(s.scenario, s.model)]]


def write_explorer(out: str | Path, plan=None, env=None, *, title: str = "", seeds: str | None = None,
                   log: Callable[[str], None] = print) -> Path | None:
    """Write ``out/explorer`` for ``plan`` (default: the plan of the latest run in ``out``) from the cache that
    ``env`` reads (default: ``out/cache``), pages for the ``seeds`` chosen (:func:`chosen`; default: the suite's
    setting, :func:`seeds_setting`); the index's path, or None when there is no plan."""
    out = Path(out)
    suite = None
    if plan is None:
        plan, suite = plan_of_results(out, with_suite=True)
    if plan is None:
        return None
    seeds = seeds or seeds_setting(suite if suite is not None else getattr(plan, "suite", None))
    if env is None:
        from hansbench.bench.engine.execute import EnvSpec, NodeEnv

        env = NodeEnv(EnvSpec(out=str(out), device="cpu"), log=log)
    folder = out / EXPLORER_DIR
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "explorer.js", script.JS)
    _write(folder / "explorer.css", script.CSS)
    found = chosen(slots(plan), seeds)
    written: dict[tuple, list[int]] = {}  # a page links only to the seeds that have pages
    for s in found:
        written.setdefault((s.scenario, s.model), []).append(s.seed)
    pages, used = [], set()
    for s in found:
        try:
            data = page_data(s, env, folder, log)
        except Exception as exc:  # never cost the results
            log(f"explorer page {s.scenario} {s.model} seed {s.seed} skipped: {type(exc).__name__}: {exc}")
            continue
        _write(folder / page_path(s.scenario, s.model, s.seed),
               page.view_page(data, sorted(written[(s.scenario, s.model)])))
        used |= {v["file"] for v in [data.get("images"), *(data.get("means") or {}).values(),
                                     *(x.get("maps") for x in data["sources"].values())] if v}
        pages.append(data)
    _prune(folder / sprites.SHEETS, used)
    _prune_pages(folder, {page_path(s.scenario, s.model, s.seed) for s in found})
    index = folder / INDEX
    _write(index, page.index_page(f"{title or out.name}: cluster explorer", pages))
    return index


def _prune(sheets: Path, used: set[str]) -> None:
    """Remove the sprite sheets no page of this plan shows (an older run's)."""
    if not sheets.is_dir():
        return
    for f in sheets.iterdir():
        if f"{sprites.SHEETS}/{f.name}" not in used and f.is_file():
            f.unlink()


def _prune_pages(folder: Path, kept: set[str]) -> None:
    """Remove the pages this call did not write (a seed left out by ``first``, an older run's scenario), so no
    link points at a stale page and a published folder carries only what its index lists."""
    for f in folder.glob("*/*.html"):
        if f.relative_to(folder).as_posix() not in kept:
            f.unlink()
    for d in folder.iterdir():
        if d.is_dir() and d.name != sprites.SHEETS and not any(d.iterdir()):
            d.rmdir()


def open_explorer(out: str | Path, *, rewrite: bool = False, seeds: str | None = None,
                  log: Callable[[str], None] = print) -> Path | None:
    """``hansbench explore``: (re)write the explorer when asked (``rewrite``, or ``seeds`` named) or missing, then
    open its index in a browser where a display exists; the index's path (None: no run in ``out``)."""
    index = Path(out) / EXPLORER_DIR / INDEX
    if rewrite or seeds is not None or not index.is_file():
        index = write_explorer(out, seeds=seeds, log=log)
    if index is not None and _has_display():
        import webbrowser

        webbrowser.open(index.resolve().as_uri())
    return index


def _has_display() -> bool:
    """A graphical session to open a browser in (macOS and Windows always; elsewhere X11 or Wayland)."""
    import sys

    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and shutil.which("xdg-open") is not None
