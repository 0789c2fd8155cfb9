"""The bench stays readable: no module over 400 lines, no function over 80 (issue 27's limits, kept by a test so
that growth shows up as a failure naming the place, not as a slow drift)."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "hansbench" / "bench"
MAX_MODULE, MAX_FUNCTION = 400, 80


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_no_bench_module_over_400_lines_and_no_function_over_80():
    problems = []
    for path in sorted(BENCH.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(BENCH.parent.parent)
        if len(text.splitlines()) > MAX_MODULE:
            problems.append(f"{rel}: {len(text.splitlines())} lines (> {MAX_MODULE}): split it by what it holds")
        for fn in _functions(ast.parse(text)):
            n = fn.end_lineno - fn.lineno + 1
            if n > MAX_FUNCTION:
                problems.append(f"{rel}:{fn.lineno} {fn.name}: {n} lines (> {MAX_FUNCTION})")
    assert not problems, "\n".join(problems)
