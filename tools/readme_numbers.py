"""Check (or, with ``--fix``, rewrite) every number the README quotes from a published table.

The README marks each number it takes from a CSV with an HTML comment right before it (invisible when rendered)::

    LRP × SpRAy <!-- num: results/seeds/CH-50.cluster-detection.csv | model=classifier explainer=lrp
    clusterer=spray metric=cluster-f1-unsup | mean .3f -->0.966 ± <!-- num: ... | ci_half .3f -->0.033

- the CSV, relative to the repository root;
- the row: ``column=value`` pairs separated by spaces, which must pick exactly one row;
- the value: a column of the CSV (``mean``, ``ci_low``, ...) or ``ci_half`` (half the interval's width, the
  "± h" of a symmetric interval), then a Python format spec (``.3f``, ``.1f``, ``.0f``).

The number follows the comment directly. A marker that picks no row or several, names a missing column or file,
or whose number differs from the table's is reported with its line; the exit status is 1 when any is.
When a run is republished, ``--fix`` rewrites the numbers (the prose around them is the author's to restate);
to move a number, move its marker with it. Run: ``python tools/readme_numbers.py [README.md] [--fix]``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!--\s*num:\s*(?P<file>[^|]+?)\s*\|\s*(?P<where>[^|]*?)\s*\|\s*(?P<column>\S+)\s+(?P<fmt>\S+)"
                    r"\s*-->(?P<number>-?\d+(?:\.\d+)?)")


def table_value(root: Path, file: str, where: str, column: str, cache: dict) -> float:
    """The value a marker names; ValueError naming the problem and the fix."""
    path = root / file
    if path not in cache:
        if not path.is_file():
            raise ValueError(f"no table {file}; correct the marker's file")
        cache[path] = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = cache[path]
    pairs = [p.split("=", 1) for p in where.split()]
    bad = [p[0] for p in pairs if len(p) != 2 or p[0] not in frame.columns]
    if bad:
        raise ValueError(f"{file} has no column {bad[0]!r} to select by; use column=value with its columns")
    hit = frame
    for k, v in pairs:
        hit = hit[hit[k] == v]
    if len(hit) != 1:
        raise ValueError(f"'{where}' picks {len(hit)} rows of {file}, not one; add column=value pairs")
    row = hit.iloc[0]
    if column == "ci_half":
        return (float(row["ci_high"]) - float(row["ci_low"])) / 2
    if column not in frame.columns:
        raise ValueError(f"{file} has no column {column!r}; name one of its columns or ci_half")
    return float(row[column])


def check(text: str, root: Path = ROOT) -> tuple[str, list[str]]:
    """(the text with every marked number as its table says, the problems: one line each)."""
    problems, cache = [], {}

    def one(m: re.Match) -> str:
        line = text.count("\n", 0, m.start()) + 1
        try:
            want = format(table_value(root, m["file"], m["where"], m["column"], cache), m["fmt"])
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
            return m[0]
        if want != m["number"]:
            problems.append(f"line {line}: {m['number']} but {m['file']} says {want} ({m['where']}, {m['column']})")
        return m[0][: -len(m["number"])] + want

    return MARKER.sub(one, text), problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("readme", nargs="?", default=str(ROOT / "README.md"))
    ap.add_argument("--fix", action="store_true", help="rewrite the marked numbers from their tables")
    ap.add_argument("--root", default=str(ROOT), help="where the markers' files are (the repository root)")
    args = ap.parse_args(argv)
    path = Path(args.readme)
    text = path.read_text(encoding="utf-8")
    fixed, problems = check(text, Path(args.root))
    for p in problems:
        print(f"{path.name} {p}", file=sys.stderr)
    if args.fix and fixed != text:
        path.write_text(fixed, encoding="utf-8")
        print(f"{path}: marked numbers rewritten from their tables")
    print(f"{len(MARKER.findall(text))} marked numbers, {len(problems)} problems")
    unfixable = [p for p in problems if " but " not in p]
    return 1 if (unfixable if args.fix else problems) else 0


if __name__ == "__main__":
    sys.exit(main())
