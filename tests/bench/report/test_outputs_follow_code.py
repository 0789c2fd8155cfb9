"""Outputs follow the code (issue 27, item 5): the output digest covers every module of the report package and
every hansbench module they import, transitively, computed from the imports (no hand-kept list), so a warm
``hansbench run`` rewrites the leaderboard after any change to the code that shapes it, and only then."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hansbench
from hansbench.bench.cli import main
from hansbench.bench.engine import source_imports
from hansbench.bench.report.publish import MANIFEST, output_code

pytestmark = pytest.mark.filterwarnings("ignore")

PACKAGE = Path(hansbench.__file__).resolve().parent
EDITED = "bench/report/stats.py"  # the Holm correction: a report module the old hand-written list missed
TINY = """
[suite]
name = "tiny-outputs"
seeds = [0]
device = "cpu"
[data]
dataset = "signs"
artifact = "postit"
image_size = 16
n_train = 120
n_test = 40
[[scenarios]]
name = "CH-50"
poisoning = "CH"
fraction = 0.5
[models.classifier]
backbone = "small-resnet"
backbone_options = { widths = [4, 8] }
epochs = 1
[explainers]
gradcam = {}
[metrics]
model-accuracy = {}
[timing]
batch_size = 4
repeats = 1
warmup = 0
"""


def _copy_package(dst: Path) -> Path:
    """A copy of the ``hansbench`` package under ``dst`` (to edit without touching the working tree)."""
    shutil.copytree(PACKAGE, dst / "hansbench", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst / "hansbench"


def _edit(root: Path, module: str) -> None:
    with (root / module).open("a") as f:
        f.write("\n# an edit that changes no behaviour\n")


def test_the_output_code_is_the_report_package_and_what_it_imports_transitively():
    files = source_imports.import_closure(source_imports.package_files("hansbench.bench.report"))
    names = {source_imports.module_name(f) for f in files}
    for module in ("hansbench.bench.report.stats", "hansbench.bench.report.escape",
                   "hansbench.bench.report.figures.cd_diagram",  # sub-packages too
                   "hansbench.bench.suite.sweep", "hansbench.metrics.presentation"):  # imported, outside the report
        assert module in names, module
    assert not {"hansbench.bench.engine.runner", "hansbench.bench.cli"} & names  # not every module


def test_the_output_code_digest_moves_with_any_module_it_covers_and_no_other(tmp_path):
    root = _copy_package(tmp_path)
    before = output_code(root)
    assert before == output_code()  # modules enter by name and content: a copy elsewhere has the same digest
    _edit(root, "bench/engine/runner.py")  # the report never imports the runner
    assert output_code(root) == before
    for module in (EDITED, "metrics/presentation.py", "bench/suite/sweep.py"):
        _edit(root, module)
        after = output_code(root)
        assert after != before, module
        before = after


def _warm_run(package: Path, suite: Path, out: Path) -> None:
    """``hansbench run`` with the code of ``package`` (first on the path, checked), in a fresh interpreter."""
    code = ("import sys, hansbench; assert hansbench.__file__.startswith(sys.argv[1]), hansbench.__file__; "
            "from hansbench.bench.cli import main; sys.exit(main(sys.argv[2:]))")
    env = {**os.environ, "PYTHONPATH": str(package.parent), "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", code, str(package), "run", "--suite", str(suite), "--out", str(out),
                           "--no-progress", "--no-figures"], env=env, cwd=package.parent, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_warm_rerun_rewrites_the_leaderboard_after_a_report_module_changed_and_only_then(tmp_path):
    suite, out = tmp_path / "tiny.toml", tmp_path / "out"
    suite.write_text(TINY)
    assert main(["run", "--suite", str(suite), "--out", str(out), "--no-progress", "--no-figures"]) == 0
    board = out / "leaderboard.md"
    digest, stamp, text = json.loads((out / MANIFEST).read_text())["digest"], board.stat().st_mtime_ns, board.read_text()
    package = _copy_package(tmp_path / "copy")

    _warm_run(package, suite, out)  # the same code, in another place: nothing to rewrite
    assert json.loads((out / MANIFEST).read_text())["digest"] == digest
    assert board.stat().st_mtime_ns == stamp

    _edit(package, EDITED)
    _warm_run(package, suite, out)
    assert json.loads((out / MANIFEST).read_text())["digest"] != digest
    assert board.stat().st_mtime_ns != stamp  # rewritten ...
    # ... with the same content: the edit changed no behaviour (the provenance lists the new run, and only it differs)
    assert board.read_text().split("## How this run was made")[0] == text.split("## How this run was made")[0]
