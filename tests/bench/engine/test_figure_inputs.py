"""Publishing only reads: what the session figures draw is a node of the run (timed, cached, recorded), and
drawing them computes nothing (issue 20)."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from hansbench.bench.engine.nodes import clustering, maps
from hansbench.bench.engine.nodes import figure_inputs as figures
from hansbench.bench.engine.planner import Planner
from hansbench.bench.engine.runner import Runner
from hansbench.bench.report.figures import session as figures_session
from hansbench.bench.suite.config import load_suite

TINY = """
[suite]
name = "tiny-figures"
seeds = [0, 1]
[data]
dataset = "signs"
image_size = 16
n_train = 120
n_test = 40
[[scenarios]]
name = "CH-50"
poisoning = "CH"
fraction = 0.5
[models.classifier]
backbone = "small-resnet"
backbone_options = { widths = [8, 16] }
epochs = 1
[explainers]
gradcam = {}
crp = { k = 2 }
[clusterers]
spray = {}
[metrics]
cluster-detection = {}
[timing]
batch_size = 4
repeats = 1
warmup = 0
"""


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    root = tmp_path_factory.mktemp("figs")
    (root / "s.toml").write_text(TINY)
    runner = Runner(load_suite(root / "s.toml"), root / "out", progress=False)
    summary = runner.run()
    assert not summary.failed
    return runner


def test_figure_inputs_are_planned_once_per_scenario_and_model_on_the_first_seed():
    suite = load_suite("quick")
    plan = Planner(suite).plan()
    got = sorted((n.ids["scenario"], n.ids["model"], n.ids["seed"]) for n in plan.figures)
    assert got == [("BD-A2O-10", "classifier", 3), ("BD-A2O-10", "protopnet", 3), ("CH-33", "classifier", 3),
                   ("CH-33", "protopnet", 3), ("clean", "classifier", 3)]
    used = {a.key for r in plan.nodes for a in r.ancestors()}
    assert all(n.key in used for f in plan.figures for n in f.inputs.values())  # nothing only a figure needs
    assert Planner(dataclasses.replace(suite, figures=False)).plan().figures == []  # hansbench run --no-figures


def test_the_run_computes_and_records_what_the_figures_draw(ran):
    with sqlite3.connect(ran.out / "results.sqlite") as db:
        jobs = db.execute("SELECT status, seconds FROM jobs WHERE node_type = 'figure-inputs'").fetchall()
    assert len(jobs) == 1 and jobs[0][0] == "done" and jobs[0][1] > 0
    (node,) = ran.last_plan.figures
    found = ran.env.cached_output(node)
    assert set(found["maps"]) == {"gradcam", "crp"} and found["maps"]["gradcam"].shape[0] == found["index"].numel()
    assert set(found["embeddings"]) == {"gradcam", "crp", "pixels"} and "crp" in found["concepts"]
    assert found["errors"] == {}


def test_drawing_the_figures_computes_nothing(ran, monkeypatch, tmp_path):
    def forbidden(*a, **k):
        raise AssertionError("publishing computed something")

    for module, name in ((maps, "compute_maps"), (clustering, "views"), (figures, "embed"),
                         (figures, "concept_shares"), (figures.FigureInputsNode, "compute")):
        monkeypatch.setattr(module, name, forbidden)
    logs: list[str] = []
    figs = figures_session.session_figures(ran, tmp_path, log=logs.append)
    names = sorted(f.file.split("-")[0] for f in figs)
    assert names == ["concepts", "embedding", "gallery"], logs
    assert not [line for line in logs if "skipped" in line]
    assert all((tmp_path / f.file).stat().st_size > 1000 for f in figs)


def test_figures_without_their_cached_inputs_are_skipped_not_computed(ran, monkeypatch, tmp_path):
    monkeypatch.setattr(figures.FigureInputsNode, "compute", lambda *a, **k: pytest.fail("computed while publishing"))
    fresh = Runner(ran.suite, tmp_path / "empty", progress=False)
    fresh.plan()
    logs: list[str] = []
    assert figures_session.session_figures(fresh, tmp_path, log=logs.append) == []
    assert logs and "not in the cache" in logs[0]


def test_each_model_kinds_figures_get_every_clustering_its_rows_use_shared_ones_included():
    """A clustering that ignores the model (the pixels control) is one node shared by the model kinds; each kind's
    figure inputs must still hold it (grouping by ids kept it for the last kind only)."""
    plan = Planner(load_suite("quick")).plan()
    for f in plan.figures:
        model = f.inputs["model"]
        used = {a.key for r in plan.nodes if r.inputs.get("model") is model for a in r.ancestors()
                if a.type == "clustering"}
        held = {n.key for role, n in f.inputs.items() if role.startswith("clustering:")}
        assert used and used == held, (f.ids, len(used), len(held))
