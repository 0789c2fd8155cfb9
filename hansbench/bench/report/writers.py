"""Publishing the leaderboard: Markdown, a LaTeX document, one HTML page and one tidy CSV per table, every
name escaped, plus the critical-difference diagrams of the rankings across scenarios and seeds.

The tables themselves are built in :mod:`hansbench.bench.report.leaderboard`; this module writes them (and the
figures' references) into a results directory. Wide tables are split into parts by columns (the row key
repeated) so that LaTeX fits ``\\textwidth`` (each part also in an ``adjustbox`` capped at the line width) and
the HTML page shows every column at 1280 px.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hansbench.bench.report.escape import html_text, latex, markdown
from hansbench.bench.report.leaderboard import Table, build_sections, format_value, normalise, per_seed, presentation

KEY_COLUMNS = ("explainer", "model", "method", "split", "status", "detector", "scenario")
LATEX_BUDGET = 120  # characters per row of a part at \footnotesize (stacked headers; adjustbox shrinks a part that is still wider than \linewidth)
HTML_BUDGET = 185  # the same at 13 px in a 1280 px window (checked in Chromium)
CSV_FLOAT = "%.6g"  # six significant digits: no float noise (76.99999809265137 -> 77)


# -- splitting wide tables -----------------------------------------------------------------------------------------
def _width(frame: pd.DataFrame, c: Any) -> int:
    """A column's width in characters: its longest cell, or its header's longest ' / '-separated piece."""
    head = max((len(p) for p in str(c).split(" / ")), default=0)
    body = max((len(format_value(v)) for v in frame[c]), default=0)
    return max(head, body)


def split_columns(frame: pd.DataFrame, budget: int) -> list[pd.DataFrame]:
    """The frame as parts of at most ``budget`` characters per row (key columns in every part)."""
    keys = [c for c in frame.columns if c in KEY_COLUMNS]
    rest = [c for c in frame.columns if c not in keys]
    used = sum(_width(frame, c) + 3 for c in keys)
    parts, cur, width = [], [], used
    for c in rest:
        w = _width(frame, c) + 3
        if cur and width + w > budget:
            parts.append(cur)
            cur, width = [], used
        cur.append(c)
        width += w
    if cur or not parts:
        parts.append(cur)
    return [frame[keys + p] for p in parts]


# -- writers --------------------------------------------------------------------------------------------
def to_markdown(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(markdown(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in frame.iterrows():
        lines.append("| " + " | ".join(markdown(format_value(v)) or " " for v in r.values) + " |")
    return "\n".join(lines)


def _tex_header(c: Any, align: str) -> str:
    pieces = [latex(p) for p in str(c).split(" / ")]
    if len(pieces) == 1:
        return pieces[0]
    return rf"\begin{{tabular}}[b]{{@{{}}{align}@{{}}}}" + r" \\ ".join(pieces) + r"\end{tabular}"


def to_latex(frame: pd.DataFrame, caption: str, label: str = "", note: str = "") -> str:
    """One ``table`` float per part of the frame (:func:`split_columns`): booktabs, \\footnotesize, capped at
    the line width, the caption (with n and the test) and ``\\label`` on each part, the note under the last."""
    parts = split_columns(frame, LATEX_BUDGET)
    out = []
    for i, part in enumerate(parts):
        cols = list(part.columns)
        keys = sum(1 for c in cols if c in KEY_COLUMNS) or 1
        spec = "l" * keys + "r" * (len(cols) - keys)
        body, ruled = [], False
        for _, r in part.iterrows():  # the reference rows (zero line, raw values) below a rule of their own
            if not ruled and body and any("(reference" in str(v) for v in r.values[:keys]):
                body.append(r"\midrule")
                ruled = True
            body.append(" & ".join(latex(format_value(v)) for v in r.values) + r" \\")
        cap = caption if len(parts) == 1 else f"{caption} (part {i + 1} of {len(parts)})"
        lab = f"{label}-{i + 1}" if label and len(parts) > 1 else label
        out.append("\n".join([
            r"\begin{table}[!htbp]", r"\centering", r"\footnotesize", rf"\caption{{{latex(cap)}}}",
            *([rf"\label{{{_safe(lab)}}}"] if lab else []),
            r"\begin{adjustbox}{max width=\linewidth}",
            r"\begin{tabular}{" + spec + "}", r"\toprule",
            " & ".join(_tex_header(c, "l" if j < keys else "r") for j, c in enumerate(cols)) + r" \\", r"\midrule",
            *body, r"\bottomrule", r"\end{tabular}", r"\end{adjustbox}",
            *([r"\par\smallskip\parbox{\linewidth}{\scriptsize " + latex(note) + "}"] if note and i == len(parts) - 1
              else []),
            r"\end{table}",
        ]))
    return "\n\n".join(out)


LATEX_PREAMBLE = "\n".join([
    r"\documentclass{article}", r"\usepackage[T1]{fontenc}", r"\usepackage[utf8]{inputenc}", r"\usepackage{lmodern}",
    r"\usepackage{booktabs}", r"\usepackage{adjustbox}", r"\usepackage{amssymb}", r"\usepackage{textcomp}",
    r"\usepackage{graphicx}", r"\usepackage[section]{placeins}", r"\begin{document}"])


def _html_table(t: Table, anchor: str, prose: bool = False) -> str:
    """Parts of at most :data:`HTML_BUDGET` characters; numeric cells carry ``data-sort`` (the mean). ``prose``:
    cells are sentences (the summary): one part, cells wrap."""
    out = []
    frame = t.frame
    parts = [frame] if prose else split_columns(frame, HTML_BUDGET)
    for j, part in enumerate(parts):
        cols = list(part.columns)
        head = "".join(f"<th scope='col' title='click to sort'>{html_text(c)}</th>" for c in cols)
        body = []
        for i in range(len(part)):
            cells_ = []
            for c in cols:
                text = format_value(part.iloc[i][c])
                num = t.sort.iloc[i][c] if t.sort is not None and c in t.sort and i < len(t.sort) else None
                attr = " class='t'"
                if isinstance(num, (float, int, np.floating, np.integer)) and not isinstance(num, bool) \
                        and np.isfinite(num):
                    attr = f" data-sort='{float(num):.10g}'"
                cells_.append(f"<td{attr}>{html_text(text)}</td>")
            body.append("<tr>" + "".join(cells_) + "</tr>")
        pid = anchor if len(parts) == 1 else f"{anchor}-p{j + 1}"
        part_note = f"<p class='part'>part {j + 1} of {len(parts)}</p>" if len(parts) > 1 else ""
        cls = "sortable prose" if prose else "sortable"
        out.append(f"{part_note}<table class='{cls}' id='{html_text(pid)}'><thead><tr>{head}</tr></thead>"
                   f"<tbody>{''.join(body)}</tbody></table>")
    return "".join(out)


_SORT_JS = """<script>
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], i = th.cellIndex;
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var key = function (tr) {
      var td = tr.cells[i], v = td && td.getAttribute('data-sort');
      return v === null || v === undefined ? [1, td ? td.textContent : ''] : [0, parseFloat(v)];
    };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x[0] !== y[0]) return x[0] - y[0];
      var c = typeof x[1] === 'number' ? x[1] - y[1] : String(x[1]).localeCompare(String(y[1]));
      return asc ? c : -c;
    }).forEach(function (tr) { body.appendChild(tr); });
  });
});
</script>"""

# No max-width on the page (a table is never clipped); headers wrap at spaces, cells do not; a figure opens in
# a CSS-only lightbox (its :target) and links to the full image and its vector twin.
_CSS = ("body{font-family:system-ui,sans-serif;margin:1.2em;color:#222}"
        "table{border-collapse:collapse;margin:.6em 0;max-width:100%}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;font-size:13px;vertical-align:bottom}"
        "td{white-space:nowrap}th{white-space:normal;min-width:3em;background:#f2f2f2;cursor:pointer}"
        "td:first-child,th:first-child{text-align:left;white-space:normal}"
        "table.prose td{white-space:normal;text-align:left;min-width:6em}"
        "th[aria-sort=ascending]::after{content:' \\25B2'}th[aria-sort=descending]::after{content:' \\25BC'}"
        ".note,.part{color:#555;font-size:12px;max-width:1100px}.part{margin:.8em 0 0}"
        "figure{display:inline-block;margin:.5em;vertical-align:top}"
        "figure img{max-width:600px;border:1px solid #ddd}figcaption{font-size:12px;color:#444;max-width:600px}"
        ".lightbox{display:none}.lightbox:target{display:flex;position:fixed;inset:0;background:rgba(0,0,0,.85);"
        "align-items:center;justify-content:center;z-index:9}.lightbox img{max-width:96vw;max-height:92vh;"
        "background:#fff}.lightbox .close{position:absolute;top:8px;right:16px;color:#fff;font-size:28px;"
        "text-decoration:none}nav a{margin-right:1em}")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.:" else "_" for ch in str(name)) or "_"


def csv_name(scenario: str, table_id: str) -> str:
    """``<scenario>.<table>.csv``: named by content, stable when other tables come or go."""
    safe = lambda s: "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(s)) or "_"  # noqa: E731
    return f"{safe(scenario)}.{safe(table_id)}.csv"


def _figure_parts(fig: Any) -> tuple[str, str, str, str]:
    """(scenario or '', file, caption, vector twin or '') of a figure given as a path or a Figure-like object."""
    if isinstance(fig, str):
        return "", fig, fig, ""
    return (str(getattr(fig, "scenario", "")), str(fig.file), str(getattr(fig, "caption", "") or fig.file),
            str(getattr(fig, "vector", "") or ""))


def _html_figure(file: str, caption: str, vector: str, n: int) -> str:
    box = f"fig-{n}"
    links = f"<a href='{html_text(file)}'>full image</a>" + (f" · <a href='{html_text(vector)}'>vector</a>"
                                                             if vector else "")
    return (f"<figure><a href='#{box}'><img src='{html_text(file)}' alt='{html_text(caption)}'></a>"
            f"<figcaption>{html_text(caption)} ({links})</figcaption></figure>"
            f"<div class='lightbox' id='{box}'><a class='close' href='#_' aria-label='close'>×</a>"
            f"<a href='#_'><img src='{html_text(file)}' alt='{html_text(caption)}'></a></div>")


def run_config(out: Path) -> dict:
    """The suite configuration of the latest run in ``out/results.sqlite`` ({} when there is none); read only."""
    from hansbench.bench.engine.store import StoreVersionError, read_latest_run

    try:
        run = read_latest_run(Path(out) / "results.sqlite")
    except StoreVersionError:
        return {}
    return run.config if run is not None else {}


def tidy_csv(frame: pd.DataFrame, path: Path) -> None:
    """The tidy CSV: ASCII column names (checked), floats at six significant digits."""
    bad = [c for c in frame.columns if not str(c).isascii()]
    if bad:
        raise ValueError(f"tidy CSV {path.name}: non-ASCII column names {bad}; name columns in ASCII")
    frame.to_csv(path, index=False, float_format=CSV_FLOAT)


def write_rankings(rows: pd.DataFrame, sections, out: Path) -> list[tuple[Any, str, str]]:
    """Critical-difference diagrams of the rankings across scenarios and seeds: [(ranking, png, svg)]."""
    from hansbench.bench.report.figures.cd_diagram import draw_cd
    from hansbench.bench.report.summary import rankings

    if rows.empty:
        return []
    rows = normalise(rows)
    pres = {f: presentation(f, rows[rows.family == f]) for f in dict.fromkeys(rows.family)}
    ranked = {s.scenario: {r["model"] for r in s.summary if r.get("status") == "ranked"} for s in sections}
    seeded = per_seed(rows, pres)
    written = []
    for r in rankings(seeded, pres, ranked):
        stem = f"cd-{_safe(r.model)}-{'detection' if r.what.startswith('Detection') else 'explainers'}"
        png, svg = draw_cd(r.names, r.result.avg_ranks, r.result.cd, out / f"{stem}.png", f"{r.what}: {r.model}")
        written.append((r, png.name, svg.name))
    return written


def write_leaderboard(rows: pd.DataFrame, out: Path, *, suite: str, figures: list | None = None,
                      omitted: pd.DataFrame | None = None, partial: str = "",
                      config: dict | None = None) -> dict[str, Path]:
    """Write leaderboard.md/.tex/.html, ``<scenario>.<table>.csv``, the CD diagrams and the sweeps; paths by file name.

    ``figures``: file names in ``out`` (shown at the end) or objects with ``scenario``, ``file``, ``caption``
    and optionally ``vector`` (shown in their scenario's section). ``omitted``: combinations the planner left
    out (:func:`hansbench.bench.report.leaderboard.omitted_from_jobs`). ``partial``: why the run is incomplete; said at
    the top of every format. ``config``: the run's suite configuration (seeds, scenarios' poisonings for the
    controls, the sweeps: :mod:`hansbench.bench.report.sweep_report`); None = the latest run's in ``out/results.sqlite``.
    """
    from hansbench.bench.report.summary import SUMMARY_NOTE
    from hansbench.bench.report.sweep_report import sweep_page
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = run_config(out) if config is None else config
    sections = build_sections(rows, omitted, config)
    figs = [_figure_parts(f) for f in figures or []]
    by_scenario: dict[str, list[tuple[str, str, str]]] = {}
    for scenario, file, caption, vector in figs:
        by_scenario.setdefault(scenario, []).append((file, caption, vector))
    title = f"hansbench leaderboard: suite {suite}"
    md = [f"# {markdown(title)}", ""]
    tex: list[str] = [LATEX_PREAMBLE, rf"\section*{{{latex(title)}}}"]
    page = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width'><title>{html_text(title)}</title>"
            f"<style>{_CSS}</style></head><body>", f"<h1>{html_text(title)}</h1>"]
    paths: dict[str, Path] = {}
    n_fig = 0
    if partial:
        note = f"PARTIAL RESULTS: {partial}"
        md += [f"> **{markdown(note)}**", ""]
        page.append(f"<p class='partial'><strong>{html_text(note)}</strong></p>")
        tex.append(latex(note) + r"\par")
    if not sections:
        md.append("No finished results yet.")
        page.append("<p>No finished results yet.</p>")
        tex.append("No finished results yet.")
    else:
        summary = [{"scenario": s.scenario, **r} for s in sections for r in s.summary]
        if summary:
            frame = pd.DataFrame(summary).fillna("")
            md += ["## Summary: which detector finds the poisoned samples", "", to_markdown(frame), "",
                   f"*{markdown(SUMMARY_NOTE)}*", ""]
            page += ["<h2 id='summary'>Summary: which detector finds the poisoned samples</h2>",
                     _html_table(Table("Summary", frame), "summary-table", prose=True),
                     f"<p class='note'>{html_text(SUMMARY_NOTE)}</p>"]
            tex.append(_summary_latex(frame, suite, SUMMARY_NOTE))
        page.append("<nav>" + "".join(f"<a href='#sc-{html_text(_safe(s.scenario))}'>{html_text(s.scenario)}</a>"
                                       for s in sections) + "</nav>")
        ranks = write_rankings(rows, sections, out)
        if ranks:
            md += ["## Rankings across scenarios and seeds", ""]
            page.append("<h2 id='rankings'>Rankings across scenarios and seeds</h2>")
            tex.append(r"\subsection*{Rankings across scenarios and seeds}")
            for r, png, svg in ranks:
                paths[png], paths[svg] = out / png, out / svg
                md += [f"![{markdown(r.caption)}](<{png}>)", "", f"*{markdown(r.caption)}*", ""]
                n_fig += 1
                page.append(_html_figure(png, r.caption, svg, n_fig))
                tex.append("\n".join([r"\begin{figure}[!htbp]", r"\centering",
                                      rf"\includegraphics[width=\linewidth]{{{png}}}",
                                      rf"\caption{{{latex(r.caption)}}}", rf"\label{{fig:{_safe(png[:-4])}}}",
                                      r"\end{figure}"]))
    n_fig = sweep_page(rows, config, out, md, tex, page, paths, n_fig)  # the sweeps: after the rankings
    floats = 0
    for sec in sections:
        md += [f"## {markdown(sec.scenario)}", ""]
        page.append(f"<h2 id='sc-{html_text(_safe(sec.scenario))}'>{html_text(sec.scenario)}</h2>")
        tex += [r"\clearpage", rf"\subsection*{{{latex(sec.scenario)}}}"]
        written: dict[str, list[pd.DataFrame]] = {}
        current = None
        for i, t in enumerate(sec.tables):
            if t.section and t.section != current:
                current = t.section
                md += [f"### {markdown(current)}", ""]
                page.append(f"<h3>{html_text(current)}</h3>")
                tex.append(rf"\subsubsection*{{{latex(current)}}}")
            anchor = f"t-{_safe(sec.scenario)}-{_safe(t.id)}-{_safe(t.model)}-{i}"
            md += ([f"#### {markdown(t.title)}", ""] if t.title != current else []) + [to_markdown(t.frame), ""]
            if t.note:
                md += [f"*{markdown(t.note)}*", ""]
            caption = f"{sec.scenario}: {t.caption or t.title}"
            said = t.caption[len(t.title) + 2:] if t.caption.startswith(f"{t.title}. ") else ""
            rest = t.note[len(said):].strip() if said and t.note.startswith(said) else t.note  # the rest of the note
            tex.append(to_latex(t.frame, caption, f"tab:{anchor}", rest))
            floats += 1
            if floats % 8 == 0:
                tex.append(r"\clearpage")
            page += ([f"<h4>{html_text(t.title)}</h4>"] if t.title != current else []) + [_html_table(t, anchor)]
            if t.note:
                page.append(f"<p class='note'>{html_text(t.note)}</p>")
            if t.tidy is not None and not t.tidy.empty:
                written.setdefault(t.id, []).append(t.tidy.assign(scenario=sec.scenario, table=t.id))
        for table_id, frames in written.items():
            p = out / csv_name(sec.scenario, table_id)
            frame = pd.concat(frames, ignore_index=True)
            lead = [c for c in ("scenario", "table", "model", "method", "explainer", "clusterer", "split", "stage",
                                "metric", "relative_to", "column_detail") if c in frame]
            tidy_csv(frame[lead + [c for c in frame.columns if c not in lead]], p)
            paths[p.name] = p
        if sec.omitted:
            md += ["### Not computed, and why", ""] + [f"- {markdown(line)}" for line in sec.omitted] + [""]
            page += ["<h3>Not computed, and why</h3><ul>"] + [f"<li>{html_text(x)}</li>" for x in sec.omitted] + ["</ul>"]
        if by_scenario.get(sec.scenario):
            md += ["### Figures", ""]
            page.append("<h3>Figures</h3>")
            for file, caption, vector in by_scenario[sec.scenario]:
                md += [f"![{markdown(caption)}](<{file.replace('>', '%3E')}>)", ""]
                n_fig += 1
                page.append(_html_figure(file, caption, vector, n_fig))
    rest_figs = [(f, c, v) for s, items in by_scenario.items() if s not in {x.scenario for x in sections}
                 for f, c, v in items]
    if rest_figs:
        md += ["## Figures", ""] + [f"![{markdown(c)}](<{f.replace('>', '%3E')}>)" for f, c, _ in rest_figs] + [""]
        page.append("<h2>Figures</h2>")
        for f, c, v in rest_figs:
            n_fig += 1
            page.append(_html_figure(f, c, v, n_fig))
    page += [_SORT_JS, "</body></html>"]
    tex.append(r"\end{document}")
    for name, text in (("leaderboard.md", "\n".join(md)), ("leaderboard.tex", "\n\n".join(tex) + "\n"),
                       ("leaderboard.html", "\n".join(page))):
        (out / name).write_text(text, encoding="utf-8")
        paths[name] = out / name
    return paths


def _summary_latex(frame: pd.DataFrame, suite: str, note: str) -> str:
    """The summary as one row block per scenario x model (its cells are sentences: a two-column layout)."""
    lines = [r"\begin{table}[!htbp]", r"\centering", r"\footnotesize",
             rf"\caption{{{latex(suite)}: summary, detection first (label-free)}}", r"\label{tab:summary}",
             r"\begin{tabular}{@{}p{0.22\linewidth}p{0.74\linewidth}@{}}", r"\toprule"]
    for _, r in frame.iterrows():
        head = f"{r.get('scenario', '')} / {r.get('model', '')}"
        first = True
        for k, v in r.items():
            if k in ("scenario", "model") or v in ("", None):
                continue
            lines.append((rf"\textbf{{{latex(head)}}}" if first else "") + f" & {latex(k)}: {latex(format_value(v))}"
                         + r" \\")
            first = False
        lines.append(r"\midrule")
    if lines[-1] == r"\midrule":
        lines[-1] = r"\bottomrule"
    lines += [r"\end{tabular}", r"\par\smallskip\parbox{\linewidth}{\scriptsize " + latex(note) + "}",
              r"\end{table}"]
    return "\n".join(lines)


def latex_overfull(log: str) -> list[float]:
    """The overfull-box widths (pt) in a pdflatex log."""
    return [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
