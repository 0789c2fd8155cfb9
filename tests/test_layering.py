"""Imports go one way (issue 27, item 1; docs/architecture.md): the layering, stated as rules and checked on
every module of ``hansbench`` by reading its imports with ``ast`` (nothing is imported).

Every ``import`` statement counts: at module level, inside a function (lazy) and under ``if TYPE_CHECKING:``.
Annotation-only imports are not exempt: a lower layer that names an upper layer's type depends on it all the
same, and the day the annotation is evaluated (``typing.get_type_hints``, a dataclass, a plugin's validator)
it imports it. The registry's discovery of built-ins and plugins by *name* (``importlib.import_module`` of a
string, entry points) is not a static import and is not read here: it is how the lower layers are found
without importing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from hansbench.bench.engine.source_imports import ROOT, imports_of, module_name

BENCH = "hansbench.bench"


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@dataclass(frozen=True)
class Rule:
    name: str
    importers: tuple[str, ...]  # the modules the rule binds (a prefix each); () = every module
    forbidden: tuple[str, ...]  # what they never import (a prefix each)
    why: str
    except_importers: tuple[str, ...] = ()

    def binds(self, module: str) -> bool:
        return (not self.importers or any(_under(module, p) for p in self.importers)) and not any(
            _under(module, p) for p in self.except_importers)

    def forbids(self, imported: str) -> bool:
        return any(_under(imported, p) for p in self.forbidden)


RULES = [
    Rule("nothing-imports-bench", (), (BENCH,), "bench orchestrates and imports the rest; nothing imports bench",
         except_importers=(BENCH,)),
    Rule("methods-not-metrics", ("hansbench.methods",), ("hansbench.metrics",),
         "methods and metrics are siblings (a metric receives maps, labels and models, not explainers)"),
    Rule("metrics-not-methods", ("hansbench.metrics",), ("hansbench.methods",),
         "methods and metrics are siblings (a metric receives maps, labels and models, not explainers)"),
    Rule("registry-stands-alone", ("hansbench.registry",), ("hansbench",),
         "everything stands on the registry; a plugin needs only hansbench.registry and the interfaces"),
    Rule("suite-below-engine-and-report", (f"{BENCH}.suite",), (f"{BENCH}.engine", f"{BENCH}.report"),
         "the suite yields one frozen run configuration; the engine and the report read it, not the reverse"),
    Rule("report-not-executors", (f"{BENCH}.report",), (f"{BENCH}.engine.executors", f"{BENCH}.engine.runner"),
         "the report reads results and the run configuration, never the executors or the driver"),
    Rule("cli-on-top", (), (f"{BENCH}.cli",), "the CLI is on top: only the commands import it",
         except_importers=(f"{BENCH}.cli", f"{BENCH}.explain")),
]


def violations(rule: Rule, root: Path = ROOT) -> list[str]:
    """``file:line: statement`` for every import under ``root`` that breaks ``rule``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        importer = module_name(path, root)
        if not rule.binds(importer):
            continue
        for imp in imports_of(path, root):
            if rule.forbids(imp.module):
                how = " (lazy)" if imp.lazy else " (TYPE_CHECKING)" if imp.type_checking else ""
                found.append(f"{path.relative_to(root.parent)}:{imp.line}: {imp.statement}{how}")
    return found


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_no_import_points_up(rule):
    found = violations(rule)
    assert not found, f"{rule.name}: {rule.why}; upward imports:\n  " + "\n  ".join(found)


def test_every_kind_of_import_statement_is_seen_with_its_file_and_line(tmp_path):
    """The checker itself: planted upward imports, one of each kind, are each reported where they are."""
    root = tmp_path / "hansbench"
    for package in ("", "bench", "bench/suite", "metrics"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("")
    (root / "bench" / "cli.py").write_text("")
    (root / "bench" / "suite" / "config.py").write_text("")
    (root / "metrics" / "base.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import hansbench.bench.cli\n"  # 2: module level
        "from hansbench import bench\n"  # 3: a package imported by its parent's name
        "if TYPE_CHECKING:\n"
        "    from hansbench.bench.suite.config import Suite\n"  # 5: annotations only
        "def f():\n"
        "    from hansbench.bench.suite import config\n")  # 7: lazy
    found = violations(RULES[0], root)
    assert found == ["hansbench/metrics/base.py:2: import hansbench.bench.cli",
                     "hansbench/metrics/base.py:3: from hansbench import bench",
                     "hansbench/metrics/base.py:5: from hansbench.bench.suite.config import Suite (TYPE_CHECKING)",
                     "hansbench/metrics/base.py:7: from hansbench.bench.suite import config (lazy)"]
    assert violations(RULES[-1], root) == ["hansbench/metrics/base.py:2: import hansbench.bench.cli"]
