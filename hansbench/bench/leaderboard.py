"""Leaderboard tables: views over the tidy metric rows, written as Markdown, CSV, LaTeX and HTML.

Per scenario: explainers x metrics with each metric's direction and a mean rank; the
explainer x clusterer detection table (the shape of PRP Table II); the pruning table
(PRP Table I); data cleaning; timing. Directions come from the rows themselves
(``higher_is_better``), so no metric needs a special case here.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# Metric families with a table of their own shape (PRP Tables I and II, cleaning, timing).
OWN_TABLES = {"model-accuracy", "cluster-detection", "prototype-pruning", "prototype-pruning-protopnet", "data-cleaning",
              "data-cleaning-baselines", "timing"}
DETECTION = ("cluster-acc", "cluster-f1")
PRUNING_METRICS = {"prototype-pruning", "prototype-pruning-protopnet"}


@dataclass
class Table:
    title: str
    frame: pd.DataFrame
    note: str = ""


def _label(row: pd.Series) -> str:
    parts = [row["metric"]] + [row[c] for c in ("split", "stage") if row[c]]
    return " / ".join(parts)


def _fmt(v: object) -> str:
    if isinstance(v, (float, np.floating)):
        if np.isnan(v):
            return "–"
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _ranked(d: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Wide table (model, explainer) x value column with arrows, and the per-column ranks within each model."""
    d = d.assign(column=d.apply(_label, axis=1))
    direction = d.groupby("column")["higher_is_better"].first()
    wide = d.pivot_table(index=["model", "explainer"], columns="column", values="value", aggfunc="mean")
    # Ranks within a model: raw scores (logits, similarities) are not comparable across models.
    by_model = wide.groupby(level="model")
    ranks = pd.DataFrame({c: by_model[c].rank(ascending=not direction[c]) for c in wide.columns
                          if wide[c].notna().sum() > 1}, index=wide.index)
    wide.columns = [f"{c} {'↑' if direction[c] else '↓'}" for c in wide.columns]
    return wide, ranks


def _explainer_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df.clusterer == "") & (df.explainer != "") & ~df.family.isin(OWN_TABLES)]


def method_tables(df: pd.DataFrame) -> list[Table]:
    """Per explainer-level metric: explainers x its values (mean over seeds and details), arrows = direction."""
    out = []
    for family, d in _explainer_rows(df).groupby("family", sort=False):
        wide, ranks = _ranked(d)
        wide["mean rank ↓"] = ranks.mean(axis=1) if not ranks.empty else np.nan
        out.append(Table(f"{family}", wide.sort_values("mean rank ↓").reset_index(),
                         "mean over seeds; ranked per column by the value's direction, within each model"))
    return out


def rank_table(df: pd.DataFrame) -> Table | None:
    """Explainers x metric families: the mean rank within each family, and overall."""
    d = _explainer_rows(df)
    if d.empty:
        return None
    per_family = {}
    for family, g in d.groupby("family", sort=False):
        _, ranks = _ranked(g)
        if not ranks.empty:
            per_family[family] = ranks.mean(axis=1)
    if not per_family:
        return None
    wide = pd.DataFrame(per_family)
    wide["overall ↓"] = wide.mean(axis=1)
    return Table("Mean rank per metric (1 = best)", wide.sort_values("overall ↓").reset_index(),
                 "each value ranked by its direction within its model, averaged within a metric, then over metrics")


def detection_table(df: pd.DataFrame) -> Table | None:
    """Explainer x clusterer: cluster ACC % / F1 (PRP Table II)."""
    d = df[df.metric.isin(DETECTION) & (df.clusterer != "")]
    if d.empty:
        return None
    m = d.pivot_table(index=["model", "explainer", "clusterer"], columns="metric", values="value", aggfunc="mean")
    cells = m.apply(lambda r: f"{_fmt(r.get('cluster-acc', np.nan))} / {_fmt(r.get('cluster-f1', np.nan))}", axis=1)
    wide = cells.unstack("clusterer").fillna("").reset_index()
    return Table("Cluster detection: ACC % / F1 of the artifact cluster", wide,
                 "best one-to-one matching of clusters to clean/poisoned; mean over seeds")


def pruning_table(df: pd.DataFrame) -> Table | None:
    d = df[df.family.isin(["prototype-pruning", "prototype-pruning-protopnet"]) & (df.split != "")]
    if d.empty:
        return None
    d = d.assign(column=d.apply(lambda r: " / ".join(x for x in (r["metric"], r["split"], r["stage"]) if x), axis=1))
    wide = d.pivot_table(index=["model", "explainer"], columns="column", values="value", aggfunc="mean").reset_index()
    return Table("Prototype pruning: affected-class accuracy % before, after pruning, after last-layer retraining", wide,
                 "explainer '' = ProtoPNet's own pruning rule")


def cleaning_table(df: pd.DataFrame) -> Table | None:
    d = df[df.family.isin(["data-cleaning", "data-cleaning-baselines"])]
    if d.empty:
        return None
    d = d.assign(column=d.apply(lambda r: " / ".join(x for x in (r["metric"], r["split"]) if x), axis=1),
                 strategy=d.apply(lambda r: r["stage"] if r["stage"] in ("none", "oracle") else
                                  f"{r['explainer']} + {r['clusterer']}", axis=1))
    wide = d.pivot_table(index=["model", "strategy"], columns="column", values="value", aggfunc="mean").reset_index()
    return Table("Data cleaning + retraining", wide, "none = poisoned model, oracle = truly poisoned samples removed")


def model_table(df: pd.DataFrame) -> Table | None:
    """The trained models: did the poisoning take?"""
    d = df[df.family == "model-accuracy"]
    if d.empty:
        return None
    d = d.assign(column=d.apply(lambda r: f"{r['metric']} / {r['split']}", axis=1))
    wide = d.pivot_table(index="model", columns="column", values="value", aggfunc="mean").reset_index()
    return Table("Trained models: accuracy % (class-acc = affected class; asr = backdoor success)", wide,
                 "compared with the images' true classes; mean over seeds")


def timing_table(df: pd.DataFrame) -> Table | None:
    d = df[df.family == "timing"]
    if d.empty:
        return None
    wide = d.pivot_table(index=["model", "explainer"], columns="metric", values="value", aggfunc="mean")
    wide = wide.sort_values("ms-per-image").reset_index()
    return Table("Timing", wide, "median over repeats; gradient units = time / one forward+backward of the same batch")


def build_tables(rows: pd.DataFrame) -> dict[str, list[Table]]:
    """Tables per scenario: mean ranks, Table II, Table I, cleaning, timing, then one per metric."""
    out = {}
    for scenario, df in rows.groupby("scenario", sort=False):
        tables = [model_table(df), rank_table(df), detection_table(df), pruning_table(df), cleaning_table(df), timing_table(df)]
        out[scenario] = [t for t in tables if t is not None] + method_tables(df)
    return out


# -- writers ----------------------------------------------------------------------
def to_markdown(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in frame.iterrows():
        lines.append("| " + " | ".join(esc(_fmt(v)) for v in r.values) + " |")
    return "\n".join(lines)


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "↑": r"$\uparrow$", "↓": r"$\downarrow$",
        "–": "--", "×": r"$\times$"}


def _tex(s: object) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(s))


def to_latex(frame: pd.DataFrame, caption: str) -> str:
    cols = list(frame.columns)
    body = [" & ".join(_tex(_fmt(v)) for v in r.values) + r" \\" for _, r in frame.iterrows()]
    return "\n".join([
        r"\begin{table}[t]", r"\centering", rf"\caption{{{_tex(caption)}}}",
        r"\begin{tabular}{" + "l" * 2 + "r" * (len(cols) - 2) + "}", r"\toprule",
        " & ".join(_tex(c) for c in cols) + r" \\", r"\midrule", *body, r"\bottomrule", r"\end{tabular}",
        r"\end{table}",
    ])


def write_leaderboard(rows: pd.DataFrame, out: Path, *, suite: str, figures: list[str] | None = None) -> dict[str, Path]:
    """Write leaderboard.md/.tex/.html and leaderboard-<scenario>-<n>.csv; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    tables = build_tables(rows)
    md = [f"# hansbench leaderboard: suite `{suite}`", ""]
    tex, page = [], [f"<!doctype html><html><head><meta charset='utf-8'><title>hansbench: {html.escape(suite)}</title>"
                     "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
                     "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head><body>",
                     f"<h1>hansbench leaderboard: suite {html.escape(suite)}</h1>"]
    paths = {}
    if not tables:
        md.append("No finished results yet.")
    for scenario, tabs in tables.items():
        md += [f"## {scenario}", ""]
        page.append(f"<h2>{html.escape(str(scenario))}</h2>")
        for i, t in enumerate(tabs):
            md += [f"### {t.title}", "", to_markdown(t.frame), "", f"*{t.note}*" if t.note else "", ""]
            tex.append(to_latex(t.frame, f"{scenario}: {t.title}"))
            page += [f"<h3>{html.escape(t.title)}</h3>", t.frame.to_html(index=False, escape=True, na_rep="–",
                                                                          float_format=_fmt)]
            if t.note:
                page.append(f"<p><em>{html.escape(t.note)}</em></p>")
            safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(scenario))
            p = out / f"leaderboard-{safe}-{i + 1}.csv"
            t.frame.to_csv(p, index=False)
            paths[p.name] = p
    for fig in figures or []:
        page.append(f"<img src='{html.escape(fig, quote=True)}' alt='{html.escape(fig, quote=True)}' style='max-width:100%'>")
    page.append("</body></html>")
    for name, text in (("leaderboard.md", "\n".join(md)), ("leaderboard.tex", "\n\n".join(tex)),
                       ("leaderboard.html", "\n".join(page))):
        (out / name).write_text(text)
        paths[name] = out / name
    return paths
