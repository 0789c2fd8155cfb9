"""The data node: one scenario at one seed (images, labels, poisoned flags), generated once and cached.

Its key holds the scenario's settings (defaults filled in by the suite loader, see
:class:`~hansbench.datasets.scenarios.Scenario`) with the files its options name replaced by their
digests, and the settings as written; a scenario's ``only`` filter and a sweep point's ``sweep``
entry plan and publish, never generate data, so they stay out of it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from hansbench.bench.engine import checks, keys
from hansbench.bench.engine.nodes.base import Node, NodeType, node_types
from hansbench.datasets import scenarios
from hansbench.datasets.base import ScenarioData, Split
from hansbench.datasets.scenarios import Scenario, make_scenario
from hansbench.registry import artifacts, datasets, poisonings

if TYPE_CHECKING:
    from hansbench.bench.engine.execute import NodeEnv
    from hansbench.bench.engine.planner import Planner

def data_settings(scenario: Scenario) -> dict:
    """The scenario's data settings as written (its ``only`` filter and a sweep point's ``sweep`` entry
    plan and publish, never generate data)."""
    return scenario.written_settings()


def scenario_params(scenario: Scenario) -> dict:
    """The scenario's settings (defaults filled in) with the files its options name replaced by their digests.

    Only option tables are searched for paths: a scenario or dataset *name* that happens to match
    a file in the working directory must not pull that file into the key.
    """
    return {k: keys.with_file_digests(v) if k.endswith("_options") else v for k, v in scenario.settings().items()}


def data_state(data: ScenarioData) -> dict:
    """The cache entry of a scenario's data: tensors as they are, ``meta`` as JSON, tuples as lists."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(data):
        v = getattr(data, f.name)
        if isinstance(v, Split):
            v = {g.name: getattr(v, g.name) for g in dataclasses.fields(v)}
        elif f.name == "meta":
            v = json.dumps(v, default=str)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def data_from_state(state: dict) -> ScenarioData:
    """:func:`data_state` read back (fields an older entry lacks keep their defaults)."""
    kwargs = {}
    for f in dataclasses.fields(ScenarioData):
        if f.name not in state:
            continue
        v = state[f.name]
        if isinstance(v, dict) and "images" in v:
            v = Split(**v)
        elif f.name == "meta":
            v = json.loads(v)
        elif f.name in ("mean", "std"):
            v = tuple(v)
        kwargs[f.name] = v
    return ScenarioData(**kwargs)


@node_types.register("data")
class DataNode(NodeType):
    """A scenario's data at one seed: no model, no accelerator; generated where the planner ran."""

    cached = True
    runs_on_driver = True  # the driver digested the files a folder dataset names; it is sure to see them
    order = 0

    @classmethod
    def plan(cls, planner: Planner, scenario: Scenario, seed: int) -> Node:
        def make() -> Node:
            code = cls.code_version(keys.code_version(datasets.get(scenario.dataset)),
                                    keys.code_version(artifacts.get(scenario.artifact)),
                                    keys.code_version(poisonings.get(scenario.poisoning)), keys.code_version(scenarios))
            return cls.node({"scenario": scenario_params(scenario), "raw": data_settings(scenario), "seed": seed},
                            {}, code, {"scenario": scenario.name, "seed": seed})

        return planner.once(("data", scenario.name, seed), make)

    @classmethod
    def compute(cls, node: Node, env: NodeEnv) -> tuple[ScenarioData, dict]:
        raw = dict(node.params["raw"])
        data = make_scenario(**raw, seed=node.params["seed"])
        checks.check_data(data, raw.get("name", ""))
        return data, data_state(data)

    @classmethod
    def from_state(cls, node: Node, state: dict, env: NodeEnv) -> ScenarioData:
        return data_from_state(state)
