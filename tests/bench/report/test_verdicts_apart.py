"""Computing and rendering stay apart (issue 27 item 3): the verdicts step (``hansbench/bench/report/verdicts/``)
turns rows into typed results; the table modules call it and only format its records. Read from the source with
``ast`` (nothing is imported), so a table module that starts testing, correcting or ranking on its own fails here
by name and line, not as a subtle disagreement between a table and the summary."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parents[3] / "hansbench" / "bench" / "report"
TABLE_MODULES = ("tables.py", "ranking_tables.py", "detection_tables.py", "controls.py", "summary.py")
VERDICTS = "hansbench.bench.report.verdicts"
# the statistics a verdict is made of: intervals, paired tests, the multiplicity correction, ranks; and the
# results' own constructors that run them (a cell's interval from rows or seeds)
STATISTICS = {"paired_test", "holm", "friedman_nemenyi", "t_interval", "bootstrap_interval", "compare", "correct",
              "rankdata", "binomtest", "cell", "cells_by", "seed_cell"}


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` outside ``if TYPE_CHECKING:`` blocks (annotations only: never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                stack.extend(child.orelse)
                continue
            stack.append(child)


def statistics_used(source: str) -> list[str]:
    """'line: calls|imports name', in line order, for each call of a statistic (``f(...)`` or ``mod.f(...)``) and each import of one."""
    found = []
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name in STATISTICS:
                found.append(f"{node.lineno}: calls {name}")
        elif isinstance(node, ast.ImportFrom):
            found += [f"{node.lineno}: imports {a.name}" for a in node.names if a.name in STATISTICS]
    return sorted(found, key=lambda x: int(x.split(":")[0]))


def imported_modules(source: str) -> set[str]:
    """The modules a source imports at run time (``from m import x`` -> m; ``from p import m`` -> p.m too)."""
    out = set()
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def _source(name: str) -> str:
    return (REPORT / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("module", TABLE_MODULES)
def test_a_table_module_calls_the_verdicts_step_and_no_statistic(module):
    source = _source(module)
    used = statistics_used(source)
    assert not used, (f"hansbench/bench/report/{module} computes: {'; '.join(used)}: move it into {VERDICTS} "
                      "and render its result here")
    assert any(m.startswith(f"{VERDICTS}.") for m in imported_modules(source)), \
        f"hansbench/bench/report/{module} does not call the verdicts step ({VERDICTS})"


def test_the_checker_finds_a_statistic_however_it_is_reached():
    planted = ("from scipy.stats import rankdata\nfrom hansbench.bench.report import cells, stats\n"
               "x = cells.correct([])\ny = stats.holm([0.1])\nz = compare(a, b)\n"
               "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from x import t_interval\n")
    assert statistics_used(planted) == ["1: imports rankdata", "3: calls correct", "4: calls holm", "5: calls compare"]


def test_the_statistics_live_in_the_verdicts_step_which_never_imports_a_table_module():
    verdicts = sorted((REPORT / "verdicts").glob("*.py"))
    assert {p.name for p in verdicts} >= {"__init__.py", "common.py", "stages.py", "explainers.py", "detection.py",
                                          "controls.py", "summary.py"}
    called = {u.split()[-1] for p in verdicts for u in statistics_used(p.read_text(encoding="utf-8"))}
    assert {"compare", "correct", "rankdata", "cells_by", "seed_cell"} <= called  # tests, Holm, ranks, cells: here
    tables = {f"hansbench.bench.report.{m.removesuffix('.py')}" for m in TABLE_MODULES}
    for p in verdicts:
        back = imported_modules(p.read_text(encoding="utf-8")) & tables
        assert not back, f"verdicts/{p.name} imports the table module(s) {sorted(back)}: the step is below them"
