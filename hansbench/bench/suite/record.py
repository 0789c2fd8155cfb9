"""The resolved run configuration as it is stored with a run, and read back.

:class:`~hansbench.bench.suite.config.Suite` is the one record of what a run was asked to do (validated,
defaults filled in, the command line applied). :func:`to_record` writes it as JSON-able data into the results
store; :func:`from_stored` reads it back as the same frozen ``Suite`` without validating it again, so a run
recorded with an older validator is still read as it ran. A store written before the record existed holds the
suite's TOML tables instead: those are validated once, here (the only place that still does it).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hansbench.bench.suite.config import Component, Suite, SuiteError, validate
from hansbench.bench.suite.sweep import SweepAxis
from hansbench.datasets.scenarios import Scenario

RECORD_VERSION = 1
RECORD_KEY = "resolved_run_config"  # present in a stored config that is a record (absent in a stored TOML)
# Suite fields with a layout of their own in the record; every other field is a plain value of ``suite``, found from
# the dataclass (a field added to Suite is stored without editing this module, and read back as its default from
# records written before it existed).
_STRUCTURED = {"seeds", "dev_seeds", "warnings", "scenarios", "sweep_axes", "models", "explainers", "clusterers",
               "flagging", "metrics", "clustering", "timing", "raw"}
NAMED = ("explainers", "clusterers", "flagging", "metrics")  # the sections of named components
_PLAIN = tuple(f.name for f in dataclasses.fields(Suite) if f.name not in _STRUCTURED)


def to_record(suite: Suite) -> dict[str, Any]:
    """The suite as JSON-able data. ``suite`` keeps the TOML's ``[suite]`` layout (name, seeds, dev_seeds, ...)
    so readers of a run's seeds need not know whether they hold a record or an old stored TOML."""
    return {
        RECORD_KEY: RECORD_VERSION,
        "suite": {**{k: getattr(suite, k) for k in _PLAIN}, "seeds": list(suite.seeds),
                  "dev_seeds": list(suite.dev_seeds), "warnings": list(suite.warnings)},
        "scenarios": [_scenario(s) for s in suite.scenarios],
        "sweep_axes": [dataclasses.asdict(a) for a in suite.sweep_axes],
        "models": suite.models,
        **{section: {n: {"options": c.options, "filters": {k: list(v) for k, v in c.filters.items()}}
                     for n, c in getattr(suite, section).items()} for section in NAMED},
        "clustering": suite.clustering,
        "timing": suite.timing,
        "raw": suite.raw,
    }


def _scenario(s: Scenario) -> dict[str, Any]:
    return {**s.settings(), "only": {k: list(v) for k, v in s.only.items()}, "sweep": s.sweep,
            "written": sorted(s.written)}


def is_record(config: dict) -> bool:
    """Whether a stored run config is a record (else: a suite's TOML tables, stored by older versions)."""
    return isinstance(config, dict) and config.get(RECORD_KEY) is not None


def from_record(record: dict[str, Any]) -> Suite:
    """The frozen :class:`Suite` of a record written by :func:`to_record` (no validation: it ran as it is)."""
    if record.get(RECORD_KEY) != RECORD_VERSION:
        raise SuiteError(f"the stored run configuration has version {record.get(RECORD_KEY)!r}, this hansbench "
                         f"reads version {RECORD_VERSION}; use the hansbench version that wrote it")
    meta = record["suite"]
    scenarios = tuple(Scenario(**{k: v for k, v in sc.items() if k not in ("only", "written")},
                               only={k: tuple(v) for k, v in (sc.get("only") or {}).items()},
                               written=frozenset(sc.get("written", ()))) for sc in record["scenarios"])
    axes = tuple(SweepAxis(a["sweep"], a["field"], tuple(tuple(kv) for kv in a["fixed"]),
                           tuple(tuple(p) for p in a["points"]), a["level"]) for a in record.get("sweep_axes", []))
    # a record written before flagging rules were a section has none: its detections had the smaller-cluster rule
    named = {section: {n: Component(n, dict(e["options"]), {k: tuple(v) for k, v in e["filters"].items()})
                       for n, e in record.get(section, {}).items()} for section in NAMED}
    plain = {f.name: meta[f.name] if f.name in meta or f.default is dataclasses.MISSING else f.default
             for f in dataclasses.fields(Suite) if f.name in _PLAIN}
    return Suite(**plain, seeds=tuple(meta["seeds"]), dev_seeds=tuple(meta["dev_seeds"]),
                 warnings=tuple(meta.get("warnings", ())), scenarios=scenarios, sweep_axes=axes,
                 models=record["models"], clustering=record["clustering"], timing=record["timing"],
                 raw=record.get("raw", {}), **named)


def from_stored(config: dict[str, Any]) -> Suite:
    """The run configuration of a stored run: a record read back, or an older run's TOML validated once.
    Raises :class:`SuiteError` (one line) when an older run's TOML no longer validates."""
    if is_record(config):
        return from_record(config)
    return validate(config)
