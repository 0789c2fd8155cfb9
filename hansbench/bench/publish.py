"""Publishing the leaderboard: Markdown, LaTeX, one HTML page and one CSV per table, every name escaped.

The tables themselves are built in :mod:`hansbench.bench.leaderboard`; this module only writes them
(and the figures' references) into a results directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hansbench.bench.escape import html_text, latex, markdown
from hansbench.bench.leaderboard import Table, build_sections, format_value


# -- writers --------------------------------------------------------------------------------------------
def to_markdown(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(markdown(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in frame.iterrows():
        lines.append("| " + " | ".join(markdown(format_value(v)) or " " for v in r.values) + " |")
    return "\n".join(lines)


def to_latex(frame: pd.DataFrame, caption: str) -> str:
    cols = list(frame.columns)
    text_cols = sum(1 for c in cols if c in ("explainer", "model", "method", "split", "status"))
    body = [" & ".join(latex(format_value(v)) for v in r.values) + r" \\" for _, r in frame.iterrows()]
    return "\n".join([
        r"\begin{table}[t]", r"\centering", rf"\caption{{{latex(caption)}}}",
        r"\begin{tabular}{" + "l" * max(text_cols, 1) + "r" * (len(cols) - max(text_cols, 1)) + "}", r"\toprule",
        " & ".join(latex(c) for c in cols) + r" \\", r"\midrule", *body, r"\bottomrule", r"\end{tabular}",
        r"\end{table}",
    ])


def _html_table(t: Table, anchor: str) -> str:
    cols = [str(c) for c in t.frame.columns]
    head = "".join(f"<th scope='col' title='click to sort'>{html_text(c)}</th>" for c in cols)
    body = []
    for i in range(len(t.frame)):
        cells = []
        for c in t.frame.columns:
            text = format_value(t.frame.iloc[i][c])
            num = t.sort.iloc[i][c] if t.sort is not None and c in t.sort else None
            attr = " class='t'"
            if isinstance(num, (float, int, np.floating, np.integer)) and not np.isnan(num):
                attr = f" data-v='{float(num):.10g}'"
            cells.append(f"<td{attr}>{html_text(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table class='sortable' id='{html_text(anchor)}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


_SORT_JS = """<script>
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], i = th.cellIndex;
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var key = function (tr) {
      var td = tr.cells[i], v = td && td.getAttribute('data-v');
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

_CSS = ("body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1400px;color:#222}"
        "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:2px 7px;text-align:right;"
        "font-size:13px}td:first-child,th:first-child{text-align:left}th{background:#f2f2f2;cursor:pointer}"
        "th[aria-sort=ascending]::after{content:' ▲'}th[aria-sort=descending]::after{content:' ▼'}"
        ".note{color:#555;font-size:12px;max-width:1100px}figure{display:inline-block;margin:.5em;vertical-align:top}"
        "figure img{max-width:640px;border:1px solid #ddd}figcaption{font-size:12px;color:#444;max-width:640px}"
        "nav a{margin-right:1em}")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name)) or "_"


def csv_name(scenario: str, table_id: str) -> str:
    """``<scenario>.<table>.csv``: named by content, stable when other tables come or go."""
    return f"{_safe(scenario)}.{_safe(table_id)}.csv"


def _figure_parts(fig: Any) -> tuple[str, str, str]:
    """(scenario or '', file, caption) of a figure given as a path string or an object with those attributes."""
    if isinstance(fig, str):
        return "", fig, fig
    return str(getattr(fig, "scenario", "")), str(fig.file), str(getattr(fig, "caption", "") or fig.file)


def write_leaderboard(rows: pd.DataFrame, out: Path, *, suite: str, figures: list | None = None,
                      omitted: pd.DataFrame | None = None, partial: str = "") -> dict[str, Path]:
    """Write leaderboard.md/.tex/.html and ``<scenario>.<table>.csv``; returns the paths by file name.

    ``figures``: file names in ``out`` (shown at the end) or objects with ``scenario``, ``file`` and
    ``caption`` (shown in their scenario's section). ``omitted``: combinations the planner left out,
    columns scenario, seed, model, explainer, clusterer, family (the registered metric), reason
    (:func:`omitted_from_jobs`).
    ``partial``: why the run is incomplete (e.g. interrupted); said at the top of every format.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections = build_sections(rows, omitted)
    figs = [_figure_parts(f) for f in figures or []]
    by_scenario: dict[str, list[tuple[str, str]]] = {}
    for scenario, file, caption in figs:
        by_scenario.setdefault(scenario, []).append((file, caption))
    title = f"hansbench leaderboard: suite {suite}"
    md = [f"# {markdown(title)}", ""]
    tex: list[str] = []
    page = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html_text(title)}</title>"
            f"<style>{_CSS}</style></head><body>", f"<h1>{html_text(title)}</h1>"]
    paths: dict[str, Path] = {}
    if partial:
        note = f"PARTIAL RESULTS: {partial}"
        md += [f"> **{markdown(note)}**", ""]
        page.append(f"<p class='partial'><strong>{html_text(note)}</strong></p>")
        tex.append(f"% {latex(note)}")
    if not sections:
        md.append("No finished results yet.")
        page.append("<p>No finished results yet.</p>")
    else:
        summary = [{"scenario": s.scenario, **r} for s in sections for r in s.summary]
        if summary:
            frame = pd.DataFrame(summary)
            md += ["## Summary", "", to_markdown(frame), "",
                   "*best explainer: lowest mean rank over the headline values; best explainer × clusterer: best "
                   "first detection value (mean ± std over seeds)*", ""]
            page += ["<h2 id='summary'>Summary</h2>", _html_table(Table("Summary", frame), "summary-table"),
                     "<p class='note'>best explainer: lowest mean rank over the headline values; best explainer × "
                     "clusterer: best first detection value (mean ± std over seeds)</p>"]
            tex.append(to_latex(frame, f"{suite}: summary"))
        page.append("<nav>" + "".join(f"<a href='#sc-{html_text(_safe(s.scenario))}'>{html_text(s.scenario)}</a>"
                                       for s in sections) + "</nav>")
    for sec in sections:
        md += [f"## {markdown(sec.scenario)}", ""]
        page.append(f"<h2 id='sc-{html_text(_safe(sec.scenario))}'>{html_text(sec.scenario)}</h2>")
        written: dict[str, list[pd.DataFrame]] = {}
        for i, t in enumerate(sec.tables):
            md += [f"### {markdown(t.title)}", "", to_markdown(t.frame), ""]
            if t.note:
                md += [f"*{markdown(t.note)}*", ""]
            tex.append(to_latex(t.frame, f"{sec.scenario}: {t.title}"))
            anchor = f"t-{_safe(sec.scenario)}-{_safe(t.id)}-{_safe(t.model)}-{i}"
            page += [f"<h3>{html_text(t.title)}</h3>", _html_table(t, anchor)]
            if t.note:
                page.append(f"<p class='note'>{html_text(t.note)}</p>")
            if t.tidy is not None:
                written.setdefault(t.id, []).append(t.tidy.assign(scenario=sec.scenario, table=t.id))
        for table_id, frames in written.items():
            p = out / csv_name(sec.scenario, table_id)
            frame = pd.concat(frames, ignore_index=True)
            lead = [c for c in ("scenario", "table", "model", "method", "explainer", "clusterer", "split", "metric",
                                "column") if c in frame]
            frame[lead + [c for c in frame.columns if c not in lead]].to_csv(p, index=False)
            paths[p.name] = p
        if sec.omitted:
            md += ["### Not computed, and why", ""] + [f"- {markdown(line)}" for line in sec.omitted] + [""]
            page += ["<h3>Not computed, and why</h3><ul>"] + [f"<li>{html_text(x)}</li>" for x in sec.omitted] + ["</ul>"]
        if by_scenario.get(sec.scenario):
            md += ["### Figures", ""]
            page.append("<h3>Figures</h3>")
            for file, caption in by_scenario[sec.scenario]:
                md += [f"![{markdown(caption)}](<{file.replace('>', '%3E')}>)", ""]
                page.append(f"<figure><img src='{html_text(file)}' alt='{html_text(caption)}'>"
                            f"<figcaption>{html_text(caption)}</figcaption></figure>")
    rest = [(f, c) for s, items in by_scenario.items() if s not in {x.scenario for x in sections} for f, c in items]
    if rest:
        md += ["## Figures", ""] + [f"![{markdown(c)}](<{f.replace('>', '%3E')}>)" for f, c in rest] + [""]
        page.append("<h2>Figures</h2>")
        page += [f"<figure><img src='{html_text(f)}' alt='{html_text(c)}'><figcaption>{html_text(c)}</figcaption>"
                 "</figure>" for f, c in rest]
    page += [_SORT_JS, "</body></html>"]
    for name, text in (("leaderboard.md", "\n".join(md)), ("leaderboard.tex", "\n\n".join(tex)),
                       ("leaderboard.html", "\n".join(page))):
        (out / name).write_text(text, encoding="utf-8")
        paths[name] = out / name
    return paths
