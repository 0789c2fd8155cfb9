"""docs/catalogue.md is generated from the registries (tools/catalogue.py) and must be current.

The check runs the script as a user would (a subprocess, so only installed plugins, never a
test's registrations, are seen); the stale case edits a copy, expects the one-line failure, rewrites it and expects a pass.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from hansbench.bench.report.escape import markdown
from hansbench.registry import REGISTRIES

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "catalogue.py"
CATALOGUE = ROOT / "docs" / "catalogue.md"


def test_catalogue_is_current():
    out = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr.strip()


def _script():
    spec = importlib.util.spec_from_file_location("catalogue_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stale_catalogue_fails_with_one_line(tmp_path, capsys):
    stale = tmp_path / "catalogue.md"
    stale.write_text(CATALOGUE.read_text(encoding="utf-8").replace("| ↑ higher is better |", "| ↓ lower is better |", 1),
                     encoding="utf-8")
    script = _script()
    assert script.main(["--check", "--path", str(stale)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "stale" in lines[0] and "tools/catalogue.py" in lines[0], lines
    assert script.main(["--path", str(stale)]) == 0 and script.main(["--check", "--path", str(stale)]) == 0


def test_every_builtin_name_and_declared_value_is_listed():
    text = CATALOGUE.read_text(encoding="utf-8")
    for key, registry in REGISTRIES.items():
        for name, obj in registry.items():
            if obj.__module__.startswith("hansbench.") and obj.__module__ != "hansbench.testing":
                assert f"### `{name}`" in text, (key, name)
    for name, metric in REGISTRIES["metrics"].items():
        if metric.__module__.startswith("hansbench."):
            section = text.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
            for value, (unit, higher) in metric.values.items():
                arrow = "—" if value in metric.presentation.undirected else ("↑" if higher else "↓")
                assert f"| `{value}` | {markdown(unit) or '—'} | {arrow}" in section, (name, value)
