"""Which hansbench modules a source file imports, read from its text with ``ast`` (nothing is imported).

Two users, one reading: the output digest of :mod:`hansbench.bench.report.publish` hashes the report
package and everything it imports, transitively (so no hand-kept list can miss a module), and the
layering test checks that no import points up. Every ``import`` statement counts, at module level or
inside a function (lazy); those under ``if TYPE_CHECKING:`` are marked, since they never run.

A package's ``__init__`` runs whenever one of its modules is imported, so it counts as imported
too; an ``__init__`` that calls ``import_submodules`` (:mod:`hansbench._autoload`) imports every
public module beside it, and those count as well.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import hansbench

ROOT = Path(hansbench.__file__).resolve().parent  # the package's folder: module names are read against it
AUTOLOAD = "import_submodules"


@dataclass(frozen=True)
class Import:
    """One hansbench module an ``import`` statement loads."""

    module: str  # dotted name, e.g. "hansbench.bench.engine.keys"
    line: int
    statement: str  # the statement as written
    lazy: bool  # inside a function: runs when the function is called
    type_checking: bool  # under ``if TYPE_CHECKING:``: never runs


def module_name(path: Path, root: Path = ROOT) -> str:
    """``root/bench/cli.py`` -> ``hansbench.bench.cli``; a package's ``__init__.py`` -> the package."""
    parts = path.resolve().relative_to(root.resolve()).with_suffix("").parts
    return ".".join(("hansbench", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The source file of module ``name`` under ``root``, or None when it is not a module there."""
    rel = Path(*name.split(".")[1:])
    for candidate in (root / rel / "__init__.py", root / f"{rel}.py" if rel.parts else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, root: Path) -> list[str]:
    """The hansbench modules a statement loads: ``from a.b import c`` loads ``a.b.c`` when that is a module."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "hansbench"]
    if node.level or not node.module or node.module.split(".")[0] != "hansbench":
        return []
    subs = [f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}", root)]
    return subs or [node.module]


def imports_of(path: Path, root: Path = ROOT) -> list[Import]:
    """Every hansbench module the file at ``path`` imports, with where and how."""
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool, checking: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            text = ast.unparse(node)
            found.extend(Import(m, node.lineno, text, lazy, checking) for m in _targets(node, root))
        inner_lazy = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for field, value in ast.iter_fields(node):
            inner_checking = checking or (isinstance(node, ast.If) and field == "body" and _is_type_checking(node.test))
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST) and not isinstance(child, ast.expr):  # imports are statements
                    visit(child, inner_lazy, inner_checking)

    visit(ast.parse(path.read_text(), filename=str(path)), False, False)
    return found


def _loaded_with(name: str, root: Path) -> list[Path]:
    """The files that run when ``name`` is imported: the module and the ``__init__`` of each package above it."""
    parts = name.split(".")
    files = [module_file(".".join(parts[:i]), root) for i in range(1, len(parts) + 1)]
    return [f for f in files if f is not None]


def _autoloaded(init: Path) -> list[Path]:
    """The public modules beside a package ``__init__`` that calls ``import_submodules``."""
    if init.name != "__init__.py" or not any(
            isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", "")) == AUTOLOAD
            for n in ast.walk(ast.parse(init.read_text()))):
        return []
    return sorted([*(p for p in init.parent.glob("*.py") if not p.name.startswith("_")),
                   *(p / "__init__.py" for p in init.parent.iterdir()
                     if not p.name.startswith("_") and (p / "__init__.py").is_file())])


def import_closure(files: Iterable[Path], root: Path = ROOT) -> list[Path]:
    """``files`` plus every hansbench module they import, transitively (``TYPE_CHECKING`` imports left out)."""
    todo, seen = [p.resolve() for p in files], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for imp in imports_of(path, root):
            if not imp.type_checking:
                todo += [f.resolve() for f in _loaded_with(imp.module, root)]
        todo += [f.resolve() for f in _autoloaded(path)]
    return sorted(seen)


def package_files(package: str, root: Path = ROOT) -> list[Path]:
    """Every module of a package, its sub-packages included: ``hansbench.bench.report`` -> its ``*.py`` files."""
    init = module_file(package, root)
    if init is None or init.name != "__init__.py":
        raise ValueError(f"{package!r} is not a package under {root}")
    return sorted(init.parent.rglob("*.py"))
