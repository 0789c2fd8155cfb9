"""The suite's scenarios: the hand-written ones and every sweep's points, each inheriting the ``[data]`` defaults
written for its dataset and artifact, checked by the one path ``make_scenario`` uses too, and typed once
(:class:`~hansbench.datasets.scenarios.Scenario`, defaults filled in here and nowhere else)."""

from __future__ import annotations

import difflib

from hansbench.bench.suite.errors import SuiteError
from hansbench.bench.suite.sweep import SWEEP_META, SweepError, inherited_data, point_path, scenarios_with_sweeps
from hansbench.datasets.poisonings import default_scenario_name
from hansbench.datasets.scenario_checks import ScenarioError, check_scenario
from hansbench.datasets.scenarios import SCENARIO_FILTER, SETTINGS, Scenario
from hansbench.registry import REGISTRIES

SCENARIO_KEYS = {*SETTINGS, SCENARIO_FILTER, SWEEP_META}  # what a [[scenarios]] entry may write
# ``only = { metrics = [...], ... }`` in a scenario: what runs there (e.g. a clean control that needs no ROAR).
ONLY_SECTIONS = ("models", "explainers", "clusterers", "flagging", "metrics")


def resolve_scenarios(raw: dict, origins: dict[str, str]) -> tuple[list[dict], tuple[Scenario, ...]]:
    """(the expanded scenario tables as written, with each sweep point's entry; the typed scenarios). Raises
    :class:`SuiteError` naming the scenario (or sweep point), the key and, for an inherited option, its suite."""
    defaults = raw.get("data", {})
    if not isinstance(defaults, dict):
        raise SuiteError(f"data: expected a table, got {type(defaults).__name__}")
    try:
        scenarios = scenarios_with_sweeps(raw)  # the hand-written scenarios, then every [[sweep]]'s points
    except SweepError as exc:
        raise SuiteError(str(exc)) from None
    if not isinstance(scenarios, list) or not scenarios:
        raise SuiteError("scenarios: a suite needs at least one [[scenarios]] entry or a [[sweep]]")
    resolved, wrote = [], []
    for i, own in enumerate(scenarios):
        sc = {**inherited_data(defaults, own), **own}
        where = point_path(own) or f"scenarios[{i}]"  # a sweep's point is named by its sweep and values
        bad = set(sc) - SCENARIO_KEYS
        if bad:
            raise SuiteError(f"{where}: unknown key(s) {sorted(bad)}; accepted: {sorted(SCENARIO_KEYS)}")
        filled = Scenario.filled(sc)
        try:
            check_scenario(filled, written=set(sc))
        except ScenarioError as exc:
            raise SuiteError(f"{where}.{exc.key}{_origin(exc.key, sc, own, origins)}: {exc.reason}") from None
        wrote.append(frozenset(sc) - {SCENARIO_FILTER, SWEEP_META})
        if not sc.get("name"):
            sc["name"] = default_scenario_name(filled["poisoning"], filled["fraction"])
        resolved.append(sc)
    names = [s["name"] for s in resolved]
    if len(set(names)) != len(names):
        raise SuiteError(f"scenarios: names must be unique, got {names}")
    for sc in resolved:
        _check_only(sc)
    return scenarios, tuple(Scenario.from_table(sc, w) for sc, w in zip(resolved, wrote))


def _origin(key: str, sc: dict, own: dict, origins: dict[str, str]) -> str:
    """Where a scenario's failing option came from, when the scenario itself did not write it."""
    table, _, option = key.partition(".")
    if not table.endswith("_options") or table in own or table not in sc:  # written in the scenario, or nowhere
        return ""
    keys = [option] if option else list(sc.get(table) or {})
    parents = sorted({origins[f"{table}.{k}"] for k in keys if f"{table}.{k}" in origins})
    return f" (inherited from [data] of suite {', '.join(map(repr, parents))})" if parents else " (from [data])"


def _check_only(sc: dict) -> None:
    """A scenario's ``only`` table names known sections and registered names. As with filters, a registered
    name this suite does not run is fine (an extending suite may drop what an inherited ``only`` names)."""
    only = sc.get("only")
    if only is None:
        return
    where = f"scenarios.{sc['name']}.only"
    if not isinstance(only, dict) or not only:
        raise SuiteError(f"{where}: expected a table such as {{ metrics = [\"cluster-detection\"] }} naming "
                         f"what runs in this scenario ({', '.join(ONLY_SECTIONS)})")
    for section, names in only.items():
        if section not in ONLY_SECTIONS:
            raise SuiteError(f"{where}.{section}: unknown section; use one of {list(ONLY_SECTIONS)}")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise SuiteError(f"{where}.{section}: expected a non-empty list of names from [{section}]")
        known = REGISTRIES[section].names()
        for n in names:
            if n not in known:
                close = difflib.get_close_matches(n, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise SuiteError(f"{where}.{section}: unknown name {n!r}{hint}; use one of {known}")
