"""Sweeps: a grid over scenario settings that expands into ordinary scenarios named by their values.

A suite's ``[[sweep]]`` table fixes some scenario settings and sweeps others::

    [[sweep]]
    poisoning = "CH"
    grid = { fraction = [0.05, 0.1, 0.2], "artifact_options.size" = [0.2, 0.3] }

expands into the full grid of scenarios ``CH-5-size0.2``, ``CH-5-size0.3``, ``CH-10-size0.2``, ... (the
poisoning's own name for the fraction, then ``-<field><value>`` for every other swept field; a string value is
appended as it is). Each point is a scenario like any hand-written one: validated, keyed and cached the same
way; the ``sweep`` entry it carries (which sweep, which values) only plans and publishes, it never enters a
key. The suite loader expands the sweeps once and keeps their axes (:func:`axes_of_points`) in the run's
record (``Suite.sweep_axes``), which the leaderboard's dose-response curves and breakdown tables read
(:mod:`hansbench.bench.report.sweep_report`); :func:`sweep_axes` expands an old run's stored TOML.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
from dataclasses import dataclass
from typing import Any

from hansbench.bench.names import slug
from hansbench.datasets.poisonings import default_scenario_name, get_poisoning
from hansbench.datasets.scenarios import SCENARIO_DEFAULTS, SWEEP_META
from hansbench.registry import REGISTRIES, UnknownNameError

OPTION_TABLES = ("dataset_options", "artifact_options")  # fields inside these are swept as "<table>.<key>"
# Scenario settings a grid may sweep (the option tables by their keys, see OPTION_TABLES).
SWEEPABLE = ("poisoning", "fraction", "dataset", "artifact", "image_size", "n_train", "n_test", "affected_class",
             "target_class")
SWEEP_KEYS = ("name", "prefix", "grid", "level") + SWEEPABLE + OPTION_TABLES + ("only",)
DEFAULT_LEVEL = 0.8  # the label-free detection headline (F1 of the flagged cluster) a breakdown point reaches


class SweepError(ValueError):
    """A sweep that cannot expand; the message names the key path and the fix (the suite loader re-raises it
    as a :class:`hansbench.bench.suite.config.SuiteError`)."""


@dataclass(frozen=True)
class SweepAxis:
    """One line set of a sweep: the scenarios along one swept field, the sweep's other swept fields held fixed."""

    sweep: str
    field: str
    fixed: tuple[tuple[str, Any], ...]
    points: tuple[tuple[Any, str], ...]  # (value, scenario name), ascending for numbers, grid order otherwise
    level: float = DEFAULT_LEVEL

    @property
    def numeric(self) -> bool:
        return all(_is_number(v) for v, _ in self.points)

    @property
    def title(self) -> str:
        held = ", ".join(f"{k} = {value_text(v)}" for k, v in self.fixed)
        return f"{self.sweep}: {self.field}" + (f" ({held})" if held else "")

    @property
    def stem(self) -> str:
        parts = [self.sweep, self.field.split(".")[-1]] + [f"{k.split('.')[-1]}{value_text(v)}" for k, v in self.fixed]
        return "sweep-" + "-".join(slug(p) for p in parts)


def inherited_data(data: dict, sc: dict) -> dict:
    """The ``[data]`` settings a scenario (or a sweep's fixed fields) inherits: all but an option table written for
    another plugin than the one it names (its own option tables always apply)."""
    out = dict(data)
    for kind in ("dataset", "artifact"):
        if kind in sc and sc[kind] != data.get(kind, SCENARIO_DEFAULTS[kind]):
            out.pop(f"{kind}_options", None)
    return out


# -- expansion ------------------------------------------------------------------------------------------------
def scenarios_with_sweeps(raw: dict) -> list[dict]:
    """The suite's scenarios: the hand-written ``[[scenarios]]`` followed by every sweep's points (each with
    its ``sweep`` entry). Raises :class:`SweepError` for a malformed sweep, a value out of range, or a point
    whose name another scenario already has."""
    written = raw.get("scenarios", [])
    if not isinstance(written, list):
        return written  # the suite loader reports the malformed [[scenarios]]
    data = raw.get("data", {}) if isinstance(raw.get("data", {}), dict) else {}
    taken: dict[str, str] = {}
    for i, sc in enumerate(written):
        if isinstance(sc, dict):
            if SWEEP_META in sc:
                raise SweepError(f"scenarios[{i}].{SWEEP_META}: not a scenario setting; a sweep is its own "
                                 "[[sweep]] table (see docs/sweeps.md)")
            taken[_name({**SCENARIO_DEFAULTS, **data, **sc})] = f"scenarios[{i}]"
    points, sweep_names = [], []
    for j, sweep in enumerate(_sweeps(raw)):
        expanded = _expand(f"sweep[{j}]", sweep, data, j)
        label = expanded[0][SWEEP_META]["sweep"]
        if label in sweep_names:
            raise SweepError(f"sweep[{j}].name: {label!r} names an earlier sweep too; give each sweep its own name")
        sweep_names.append(label)
        for sc in expanded:
            name = sc["name"]
            if name in taken:
                raise SweepError(f"sweep[{j}]: its point {_values_text(sc[SWEEP_META]['values'])} is named "
                                 f"{name!r}, the name of {taken[name]}; drop one of them or give the sweep a "
                                 f"prefix (prefix = \"sw\" names it 'sw-{name}')")
            taken[name] = f"sweep[{j}] ({_values_text(sc[SWEEP_META]['values'])})"
            points.append(sc)
    return list(written) + points


def _sweeps(raw: dict) -> list[dict]:
    """``[sweep]`` (one table) or ``[[sweep]]`` (several), as a list."""
    sweeps = raw.get("sweep", [])
    sweeps = [sweeps] if isinstance(sweeps, dict) else sweeps
    if not isinstance(sweeps, list) or not all(isinstance(s, dict) for s in sweeps):
        raise SweepError(f"sweep: expected [[sweep]] tables, got {sweeps!r}")
    return sweeps


def _expand(path: str, sweep: dict, data: dict, index: int) -> list[dict]:
    bad = sorted(set(sweep) - set(SWEEP_KEYS))
    if bad:
        raise SweepError(f"{path}.{bad[0]}: unknown key{_close(bad[0], SWEEP_KEYS)}; a sweep takes {list(SWEEP_KEYS)}")
    grid = _grid(path, sweep.get("grid"))
    fixed = {k: v for k, v in sweep.items() if k not in ("name", "prefix", "grid", "level")}
    for field in grid:
        table, _, key = field.partition(".")
        if field in fixed or (key and key in (fixed.get(table) or {})):
            raise SweepError(f"{path}.grid.{field}: also set as a fixed value of the sweep; set it in one place")
    level = sweep.get("level", DEFAULT_LEVEL)
    if not _is_number(level) or not 0 < level <= 1:
        raise SweepError(f"{path}.level: {level!r}; expected the detection level a breakdown point reaches, "
                         f"a number in (0, 1] (default {DEFAULT_LEVEL})")
    prefix = sweep.get("prefix", "")
    if not isinstance(prefix, str):
        raise SweepError(f"{path}.prefix: expected a string put before every point's name, got {prefix!r}")
    name = sweep.get("name") or str(fixed.get("poisoning") or f"sweep{index}")
    if not isinstance(name, str):
        raise SweepError(f"{path}.name: expected a string, got {name!r}")
    fields = list(grid)
    out = []
    for combo in itertools.product(*grid.values()):
        sc = copy.deepcopy(fixed)
        values = dict(zip(fields, combo))
        for field, value in values.items():
            table, _, key = field.partition(".")
            if key:  # [data]'s option table applies only when the point keeps [data]'s plugin
                base = fixed.get(table, inherited_data(data, fixed).get(table, {}))
                sc[table] = {**copy.deepcopy(base), **sc.get(table, {}), key: value}
            else:
                sc[field] = value
        settings = {**SCENARIO_DEFAULTS, **data, **sc}
        sc["name"] = (f"{prefix}-" if prefix else "") + _point_name(settings, values)
        sc[SWEEP_META] = {"sweep": name, "values": values, "level": float(level), "path": path}
        out.append(sc)
    seen: dict[str, dict] = {}
    for sc in out:
        values = sc[SWEEP_META]["values"]
        if sc["name"] in seen:
            raise SweepError(f"{path}: points {_values_text(seen[sc['name']])} and {_values_text(values)} would both "
                             f"be named {sc['name']!r} (the poisoning's name does not show what differs); split the "
                             "sweep into sweeps whose points the name tells apart")
        seen[sc["name"]] = values
    return out


def point_path(scenario: dict) -> str:
    """Where a sweep's point came from, for errors: ``sweep[0] point fraction = 0.5 ('CH-50')``; '' otherwise."""
    meta = scenario.get(SWEEP_META)
    if not isinstance(meta, dict) or "path" not in meta:
        return ""
    return f"{meta['path']} point {_values_text(meta['values'])} ({scenario.get('name', '')!r})"


def _grid(path: str, grid: Any) -> dict[str, list]:
    """The grid as {field: values}; nested option tables flattened to ``table.key``; every value checked."""
    if not isinstance(grid, dict) or not grid:
        raise SweepError(f"{path}.grid: expected a non-empty table of field = [values], e.g. "
                         "grid = { fraction = [0.05, 0.1, 0.2] }")
    flat: dict[str, Any] = {}
    for field, values in grid.items():
        if field in OPTION_TABLES and isinstance(values, dict):
            flat.update({f"{field}.{k}": v for k, v in values.items()})
        else:
            flat[field] = values
    for field, values in flat.items():
        table, _, key = field.partition(".")
        if not (field in SWEEPABLE or (table in OPTION_TABLES and key)):
            known = list(SWEEPABLE) + [f"{t}.<option>" for t in OPTION_TABLES]
            raise SweepError(f"{path}.grid.{field}: not a sweepable field{_close(field, list(SWEEPABLE))}; a grid "
                             f"sweeps {known} (e.g. \"artifact_options.size\")")
        if not isinstance(values, list) or not values:
            raise SweepError(f"{path}.grid.{field}: expected a non-empty list of values, got {values!r}")
        if len({repr(v) for v in values}) != len(values):
            raise SweepError(f"{path}.grid.{field}: a value is listed twice in {values!r}; list each once")
        for i, v in enumerate(values):
            problem = _check_value(field, v)
            if problem:
                raise SweepError(f"{path}.grid.{field}[{i}]: {v!r}; {problem}")
    return flat


def _check_value(field: str, v: Any) -> str:
    """Why one grid value cannot run ('' when it can); what only the built scenario can tell is checked when the
    suite validates the expanded point."""
    if field == "fraction" and not (_is_number(v) and 0 <= v <= 1):
        return "expected a share between 0 and 1"
    if field == "image_size" and not (isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= 512):
        return "expected an integer pixel size between 16 and 512"
    if field in ("n_train", "n_test") and not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
        return "expected a positive number of images"
    if field == "poisoning":
        try:
            get_poisoning(v)
        except (UnknownNameError, TypeError) as exc:
            return str(exc)
    if field in ("dataset", "artifact"):
        try:
            REGISTRIES[f"{field}s"].check(v)
        except (UnknownNameError, TypeError) as exc:
            return str(exc)
    if field.partition(".")[2] and isinstance(v, (dict, list)):
        return "expected a single option value (a sweep varies one option at a time)"
    return ""


def _point_name(settings: dict, values: dict) -> str:
    name = _name(settings)
    for field, value in values.items():
        if field in ("poisoning", "fraction"):
            continue
        name += f"-{value}" if isinstance(value, str) else f"-{field.split('.')[-1]}{value_text(value)}"
    return name


def _name(settings: dict) -> str:
    """A scenario's name: its own, or its poisoning's default for the fraction (as the suite loader names it)."""
    if settings.get("name"):
        return str(settings["name"])
    try:
        return default_scenario_name(settings["poisoning"], float(settings["fraction"]))
    except (UnknownNameError, TypeError, ValueError):
        return f"{settings.get('poisoning')}-{settings.get('fraction')}"  # the loader reports the bad setting


# -- reading a run's sweeps back -------------------------------------------------------------------------------
def sweep_axes(config: dict | None) -> list[SweepAxis]:
    """The axes of every sweep in a run config (the suite's TOML tables as stored with the run): per sweep and
    swept field, one axis per combination of the other swept fields' values; [] without sweeps."""
    if not config or not config.get("sweep"):
        return []
    return axes_of_points(scenarios_with_sweeps(config))


def axes_of_points(scenarios: list) -> list[SweepAxis]:
    """The sweep axes of already expanded scenarios (the suite loader's, once; :func:`sweep_axes` for a stored
    TOML of a run recorded before the resolved configuration was stored)."""
    axes = []
    for sc_list in _points_by_sweep(scenarios).values():
        fields = list(sc_list[0][SWEEP_META]["values"])
        level = sc_list[0][SWEEP_META]["level"]
        sweep = sc_list[0][SWEEP_META]["sweep"]
        for field in fields:
            groups: dict[tuple, list[tuple[Any, str]]] = {}
            for sc in sc_list:
                values = sc[SWEEP_META]["values"]
                held = tuple((k, v) for k, v in values.items() if k != field)
                groups.setdefault(held, []).append((values[field], sc["name"]))
            for held, pts in groups.items():
                if all(_is_number(v) for v, _ in pts):
                    pts = sorted(pts, key=lambda p: p[0])
                axes.append(SweepAxis(sweep, field, held, tuple(pts), level))
    return axes


def _points_by_sweep(scenarios: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for sc in scenarios:
        if isinstance(sc, dict) and SWEEP_META in sc:
            out.setdefault(sc[SWEEP_META]["sweep"], []).append(sc)
    return out


# -- small helpers ------------------------------------------------------------------------------------------
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def value_text(v: Any) -> str:
    """A swept value as a label: numbers by ``:g`` (0.1, not 0.1000000001), strings as they are."""
    return f"{v:g}" if _is_number(v) else str(v)


def _values_text(values: dict) -> str:
    return ", ".join(f"{k} = {value_text(v)}" for k, v in values.items())


def _close(value: str, known: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
