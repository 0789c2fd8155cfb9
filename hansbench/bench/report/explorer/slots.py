"""The nodes one explorer page shows: per (scenario, model kind, seed) of a plan, its data and model, every
clustering a row of that model reads and every flagging rule applied to each, and the figure inputs (whose
embeddings the first seed's page reuses).

Grouped by the row's own model, as the figures are (:meth:`FigureInputsNode.plan_after
<hansbench.bench.engine.nodes.figure_inputs.FigureInputsNode.plan_after>`): a clustering that ignores the model
(the raw pixels) is one node that every model kind's page shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hansbench.bench.engine.nodes.base import Node


@dataclass
class Slot:
    """One page's nodes: ``clusterings`` in plan order, ``rules`` per clustering key (the flagging nodes)."""

    scenario: str
    model: str
    seed: int
    model_node: Node
    clusterings: dict[str, Node] = field(default_factory=dict)
    rules: dict[str, dict[str, Node]] = field(default_factory=dict)
    figure: Node | None = None

    @property
    def data_node(self) -> Node:
        """The scenario's data at this seed."""
        return self.model_node.inputs["data"]


def _model_of(node: Node) -> Node | None:
    model = node.inputs.get("model")
    return model if model is not None else next((a for a in node.ancestors() if a.type == "model"), None)


def slots(plan) -> list[Slot]:
    """Every (scenario, model kind, seed) of ``plan`` with at least one clustering, in plan order."""
    found: dict[str, Slot] = {}
    for row in plan.nodes:
        model = _model_of(row)
        if model is None:
            continue
        ancestors = [*row.ancestors(), row]
        if not any(a.type == "clustering" for a in ancestors):
            continue
        s = found.setdefault(model.key, Slot(model.ids["scenario"], model.ids["model"], int(model.ids["seed"]), model))
        for a in ancestors:
            if a.type == "clustering":
                s.clusterings.setdefault(a.key, a)
            elif a.type == "flagging":
                s.clusterings.setdefault(a.inputs["clustering"].key, a.inputs["clustering"])
                s.rules.setdefault(a.inputs["clustering"].key, {}).setdefault(a.params["rule"], a)
    for f in plan.figures:
        s = found.get(f.inputs["model"].key)
        if s is not None:
            s.figure = f
    return list(found.values())


def plan_of_results(out: Path, device_type: str = "cpu", with_suite: bool = False):
    """The plan of the latest run recorded in ``out`` (``hansbench report`` and ``explore`` have no runner), or
    None when the store records no run or its configuration cannot be read back; ``with_suite``: (plan, suite),
    (None, None) for none."""
    plan, suite = _latest(out, device_type)
    return (plan, suite) if with_suite else plan


def _latest(out: Path, device_type: str):
    from hansbench.bench.engine.planner import Planner
    from hansbench.bench.engine.store import read_latest_run

    db = Path(out) / "results.sqlite"
    if not db.is_file():
        return None, None
    run = read_latest_run(db)
    if run is None:
        return None, None
    try:
        suite = run.run_config()
    except Exception:  # an old or foreign configuration: no explorer, never a failed report
        return None, None
    return Planner(suite, device_type).plan(), suite
