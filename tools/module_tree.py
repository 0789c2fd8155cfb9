"""Write the module tree of docs/architecture.md from the package, so the map cannot miss a module.

Between the markers ``<!-- module-tree:start -->`` and ``<!-- module-tree:end -->`` the page holds one line
per package and module of ``hansbench`` (private helpers ``_*.py`` beside their public module included),
indented by depth, with the first line of its docstring. The tree is read from the files (``ast``, nothing
is imported), so it is the same on every machine.

    python tools/module_tree.py           # rewrite the tree in docs/architecture.md
    python tools/module_tree.py --check   # exit 1 if it is stale (tests/test_architecture_doc.py)
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hansbench"
DOC = ROOT / "docs" / "architecture.md"
START, END = "<!-- module-tree:start -->", "<!-- module-tree:end -->"
WIDTH = 34  # the name column


def _summary(path: Path) -> str:
    """The first line of a module's docstring ('' without one)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0].strip() if doc.strip() else ""


def _lines(folder: Path, depth: int) -> list[str]:
    out = []
    for path in sorted(folder.iterdir(), key=lambda p: (p.is_dir(), p.name)):
        indent = "  " * depth
        if path.is_dir() and (path / "__init__.py").is_file():
            name = f"{indent}{path.name}/"
            out.append(f"{name:<{WIDTH}}{_summary(path / '__init__.py')}".rstrip())
            out += _lines(path, depth + 1)
        elif path.suffix == ".py" and path.name != "__init__.py":
            name = f"{indent}{path.name}"
            out.append(f"{name:<{WIDTH}}{_summary(path)}".rstrip())
    return out


def tree() -> str:
    """The tree block, fenced, as it stands between the markers."""
    return "\n".join([START, "```", "hansbench/", *_lines(PACKAGE, 1), "```", END])


def render(page: str) -> str:
    """``page`` with its tree block replaced by the current one."""
    if START not in page or END not in page:
        raise SystemExit(f"{DOC}: no {START} ... {END} markers; put them where the module tree goes")
    head, rest = page.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + tree() + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/architecture.md's tree is stale")
    args = parser.parse_args(argv)
    page = DOC.read_text(encoding="utf-8")
    new = render(page)
    if args.check:
        if new != page:
            print(f"{DOC.relative_to(ROOT)}: the module tree is stale; run `python tools/module_tree.py`",
                  file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
