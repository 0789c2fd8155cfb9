"""A suite's scenario as one typed value: its settings with defaults filled in once, by the suite loader.

Every setting's default comes from :data:`~hansbench.datasets.scenarios.SCENARIO_DEFAULTS` (read from
``make_scenario``'s signature); :func:`hansbench.bench.config.validate` builds each :class:`Scenario` after
its checks, and nothing downstream merges defaults again. A scenario also reads as a read-only mapping
(``scenario["poisoning"]``, ``scenario.get("fraction")``) for metrics' ``not_applicable(scenario=...)`` and
other code written against the plain dicts scenarios used to be.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hansbench.bench.sweep import SWEEP_META
from hansbench.datasets.scenarios import SCENARIO_DEFAULTS

SCENARIO_FILTER = "only"  # a scenario's own filter table: which models, explainers, clusterers, metrics run there
_D = SCENARIO_DEFAULTS


@dataclass(frozen=True, eq=False)  # eq from Mapping: a scenario equals the dict of its items
class Scenario(Mapping):
    """One scenario: its data settings (typed, defaults filled in), its ``only`` filter, a sweep point's entry."""

    name: str
    dataset: str = _D["dataset"]
    poisoning: str = _D["poisoning"]
    fraction: float = _D["fraction"]
    artifact: str = _D["artifact"]
    image_size: int = _D["image_size"]
    n_train: int = _D["n_train"]
    n_test: int = _D["n_test"]
    affected_class: str | int = _D["affected_class"]
    target_class: str | int | None = _D["target_class"]
    dataset_options: dict[str, Any] = field(default_factory=dict)
    artifact_options: dict[str, Any] = field(default_factory=dict)
    only: dict[str, tuple[str, ...]] = field(default_factory=dict)  # section -> the names that run here
    sweep: dict[str, Any] | None = None  # a sweep point's {"sweep", "values", "path"}: plans and publishes only
    written: frozenset[str] = frozenset()  # the settings the suite (or its [data]) wrote, before any default

    @classmethod
    def from_table(cls, table: Mapping[str, Any], written: frozenset[str] | None = None) -> Scenario:
        """The scenario of a checked suite table (``name`` set); settings it leaves out take their defaults.
        ``written``: the settings the suite wrote (default: the table's own)."""
        only = {section: tuple(names) for section, names in (table.get(SCENARIO_FILTER) or {}).items()}
        given = {k: v for k, v in table.items() if k in SETTINGS}
        return cls(**given, only=only, sweep=table.get(SWEEP_META),
                   written=frozenset(table) - {SCENARIO_FILTER, SWEEP_META} if written is None else written)

    @staticmethod
    def default(setting: str) -> Any:
        """The default of one data setting (``Scenario.default("dataset")``)."""
        return {} if setting.endswith("_options") else _D[setting]

    @classmethod
    def filled(cls, table: Mapping[str, Any]) -> dict[str, Any]:
        """A table's data settings with the defaults filled in, for the checks that run before the scenario is
        built (unknown keys and ``only``/``sweep`` left out; ``name`` as written, else "")."""
        return {k: table[k] if k in table else ("" if k == "name" else cls.default(k)) for k in SETTINGS}

    def settings(self) -> dict[str, Any]:
        """Every data setting, defaults filled in: what ``make_scenario(**...)`` takes (no ``only``/``sweep``)."""
        return {k: getattr(self, k) for k in SETTINGS}

    def written_settings(self) -> dict[str, Any]:
        """The data settings as the suite wrote them, plus the name: the data node's ``raw`` parameter (part
        of its key since before defaults were filled in here, so it stays as it was)."""
        return {k: getattr(self, k) for k in SETTINGS if k in self.written or k == "name"}

    def runs_in(self, section: str, name: str) -> bool:
        """Whether the scenario's ``only = { <section> = [...] }`` lets ``name`` run here (absent: everything)."""
        allowed = self.only.get(section)
        return allowed is None or name in allowed

    # -- the read-only mapping: the settings, then ``only`` and ``sweep`` where the scenario has them ------------
    def _keys(self) -> list[str]:
        return [*SETTINGS, *([SCENARIO_FILTER] if self.only else []), *([SWEEP_META] if self.sweep is not None else [])]

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


SETTINGS = ("name", *SCENARIO_DEFAULTS)  # the data settings, in make_scenario's order
if {f.name for f in dataclasses.fields(Scenario)} - {SCENARIO_FILTER, SWEEP_META, "written"} != set(SETTINGS):
    raise TypeError("hansbench.bench.scenario.Scenario's fields no longer match make_scenario's settings: "
                    "give Scenario one field per make_scenario keyword")
