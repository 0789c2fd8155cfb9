"""docs/architecture.md's module tree is generated from the package (tools/module_tree.py) and must be current;
its one diagram of the graph names the registered node types and nothing else."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "module_tree.py"


def test_module_tree_is_current():
    out = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 0, out.stderr.strip()


def test_module_tree_lists_every_module_and_a_new_one_makes_it_stale(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("module_tree", SCRIPT)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    block = tool.tree()
    for path in (ROOT / "hansbench").rglob("*.py"):
        if path.name != "__init__.py":
            assert f" {path.name}" in block or f"\n  {path.name}" in block, path
    package = tmp_path / "hansbench"
    (package / "bench").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Top."""\n')
    (package / "bench" / "__init__.py").write_text('"""Bench."""\n')
    (package / "bench" / "new_room.py").write_text('"""What the new room holds."""\n')
    monkeypatch.setattr(tool, "PACKAGE", package)
    assert "new_room.py" in tool.tree() and "What the new room holds." in tool.tree()


def test_the_graph_diagram_names_the_registered_node_types():
    from hansbench.bench.engine.nodes import node_types

    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    diagram = page.split("<!-- graph:start -->", 1)[1].split("<!-- graph:end -->", 1)[0]
    named = set(re.findall(r"\b([a-z][a-z-]+) \(", diagram))
    assert named == set(node_types.names()), (named, node_types.names())
