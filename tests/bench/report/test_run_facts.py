"""What the report reads from a run's configuration: the record as it ran, and an old run's stored TOML that no
longer validates read as before (its sweeps and controls are not lost)."""

from __future__ import annotations

from hansbench.bench.report import run_facts
from hansbench.bench.suite.config import load_suite
from hansbench.bench.suite.record import to_record


def test_an_old_stored_toml_that_no_longer_validates_keeps_its_sweeps_and_controls():
    sweep = dict(load_suite("sweep").raw)
    sweep["metrics"] = {**sweep.get("metrics", {}), "a-plugin-no-longer-installed": {}}
    assert run_facts.run_config(sweep) is None  # it does not validate today
    assert run_facts.sweep_axes_of(sweep) == list(load_suite("sweep").sweep_axes)
    controls = dict(load_suite("controls").raw)
    controls["metrics"] = {**controls.get("metrics", {}), "a-plugin-no-longer-installed": {}}
    names = [s.name for s in load_suite("controls").scenarios]
    assert run_facts.scenario_controls(controls, names) == run_facts.scenario_controls(
        to_record(load_suite("controls")), names)
    assert run_facts.scenario_controls(controls, names)["BD-30"] == {"label-flip": "LF-30", "clean": "clean"}


def test_the_record_is_read_as_the_run_planned_it():
    suite = load_suite("quick", seeds=[5, 6])
    record = to_record(suite)
    assert run_facts.dev_seeds(record) == list(suite.dev_seeds)
    assert run_facts.scenario_settings(record) == {s.name: s.settings() for s in suite.scenarios}
    assert run_facts.sweep_axes_of(record) == [] and run_facts.sweep_axes_of(None) == []
