"""Every fact the report reads from the run's configuration, as small functions.

The configuration is the run's resolved record (:class:`hansbench.bench.suite.config.Suite`, stored with the
run and read back by :func:`hansbench.bench.suite.record.from_stored`): the seeds the settings were tuned on,
the scenarios with their defaults filled in (to pair each backdoor with its controls) and the sweep axes come
from it as they were when the run was planned; nothing here merges defaults or expands sweeps again. A store
written before the record existed holds the suite's TOML, which is validated once; one that no longer validates
(a plugin gone, a weights file moved) is read as the report read it before the record (:func:`_legacy_settings`,
:func:`_legacy_axes`), so an old run publishes the same page. Each function also accepts None or {}.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any


def run_config(config: Any):
    """The run's resolved configuration (a frozen ``Suite``), or None when there is none or it cannot be read."""
    from hansbench.bench.suite.config import Suite

    if isinstance(config, Suite):
        return config
    if not config:
        return None
    return _read(json.dumps(config, sort_keys=True, default=str))


@lru_cache(maxsize=8)
def _read(text: str):
    from hansbench.bench.suite.config import SuiteError
    from hansbench.bench.suite.record import from_stored

    try:
        return from_stored(json.loads(text))
    except (SuiteError, ValueError, KeyError, TypeError):
        return None


def dev_seeds(config: Any) -> list[int]:
    """The seeds the suite's settings were tuned on (``dev_seeds``); [] when the run names none."""
    suite = run_config(config)
    if suite is not None:
        return [int(s) for s in suite.dev_seeds]
    table = (config or {}).get("suite", {}) if isinstance(config, dict) else {}
    return [int(s) for s in (table or {}).get("dev_seeds", []) or []]  # a bare {"suite": {...}} (cells' callers)


def scenario_settings(config: Any) -> dict[str, dict]:
    """Scenario name -> its settings, defaults filled in (as the run planned them); {} without a configuration."""
    suite = run_config(config)
    if suite is not None:
        return {s.name: s.settings() for s in suite.scenarios}
    return _legacy_settings(config) if isinstance(config, dict) and config else {}


def _legacy_settings(config: dict) -> dict[str, dict]:
    """An old run's stored TOML that no longer validates: its scenarios expanded and defaults merged leniently,
    as the report did before runs stored their record (only for such stores)."""
    from hansbench.bench.suite.sweep import SweepError, inherited_data, scenarios_with_sweeps
    from hansbench.datasets.poisonings import default_scenario_name
    from hansbench.datasets.scenarios import SCENARIO_DEFAULTS

    data = dict(config.get("data", {}) or {})
    try:
        tables = scenarios_with_sweeps(config)
    except SweepError:
        return {}
    out = {}
    for sc in tables if isinstance(tables, list) else []:
        s = {**SCENARIO_DEFAULTS, **inherited_data(data, sc), **sc}
        name = sc.get("name") or default_scenario_name(s["poisoning"], float(s["fraction"]))
        out[str(name)] = s
    return out


def _legacy_axes(config: dict) -> list:
    """An old run's stored TOML that no longer validates: its sweep axes expanded leniently ([] if they do not)."""
    from hansbench.bench.suite.sweep import SweepError, sweep_axes

    try:
        return list(sweep_axes(config))
    except SweepError:
        return []


def _poisoning(s: dict):
    from hansbench.datasets.poisonings import get_poisoning

    try:
        return get_poisoning(s["poisoning"])
    except Exception:  # an uninstalled plugin poisoning: no control relation known
        return None


def _is_clean(s: dict) -> bool:
    """Whether the scenario's poisoning poisons nothing in the inspected class (a clean control)."""
    p = _poisoning(s)
    try:
        return p is not None and not p.inspected_class_holds(float(s["fraction"]))[0]
    except Exception:
        return False


def _is_label_flip_of(o: dict, s: dict) -> bool:
    """Whether scenario ``o`` is the label-flip control of ``s``: its poisoning declares ``control_of`` = the
    poisoning of ``s``, at the same fraction and target."""
    p = _poisoning(o)
    return p is not None and getattr(p, "control_of", "") == s["poisoning"] and \
        float(o["fraction"]) == float(s["fraction"]) and o.get("target_class") == s.get("target_class")


def scenario_controls(config: Any, scenarios: list[str]) -> dict[str, dict[str, str]]:
    """Per scenario: {"label-flip": name, "clean": name} of the run's controls of it (where present).

    A label-flip control is a scenario whose poisoning declares ``control_of`` = this scenario's poisoning, at
    the same fraction and target; a clean control one whose poisoning poisons nothing in the inspected class."""
    settings = scenario_settings(config)
    clean = [n for n, s in settings.items() if _is_clean(s) and n in scenarios]
    out: dict[str, dict[str, str]] = {}
    for name, s in settings.items():
        if name not in scenarios or _is_clean(s):
            continue
        c: dict[str, str] = {}
        flip = next((o for o, os_ in settings.items() if o != name and o in scenarios and _is_label_flip_of(os_, s)),
                    None)
        if flip is not None:
            c["label-flip"] = flip
        if clean:
            c["clean"] = clean[0]
        out[name] = c
    return out


def sweep_axes_of(config: Any) -> list:
    """The sweep axes of the run, as its loader expanded them ([] without sweeps or without a readable
    configuration: the per-scenario sections are published all the same)."""
    suite = run_config(config)
    if suite is not None:
        return list(suite.sweep_axes)
    return _legacy_axes(config) if isinstance(config, dict) and config else []
