"""The model node: a model kind trained with its recipe on the scenario's training set, cached as a state dict.

:func:`train` and :func:`model_from_state` are also what a metric's retraining uses
(:func:`hansbench.bench.engine.nodes.metric.retrainer`): a retrained model is the same kind and
recipe on another training set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from hansbench.bench.engine import checks, keys
from hansbench.bench.engine.nodes.base import Node, NodeType, node_types
from hansbench.bench.engine.seeding import seed_everything
from hansbench.datasets.base import ScenarioData, Split
from hansbench.models.kinds import DEFAULT_BACKBONE, build_model, train_model
from hansbench.models.precision import effective_config
from hansbench.models.recipes import split_config
from hansbench.registry import backbones, model_kinds

if TYPE_CHECKING:
    from hansbench.bench.engine.execute import NodeEnv
    from hansbench.bench.engine.planner import Planner


def model_from_state(kind: str, config: dict, data: ScenarioData, state: dict, device: torch.device) -> torch.nn.Module:
    """The architecture of ``kind``/``config`` with a cached state dict, on the device, in eval mode."""
    model = build_model(kind, num_classes=data.num_classes, mean=data.mean, std=data.std,
                        **split_config(kind, config)[0])
    model.load_state_dict(state)
    return model.to(device).eval()


def train(env: NodeEnv, kind: str, config: dict, split: Split, data: ScenarioData, seed: int,
          what: str) -> torch.nn.Module:
    """A fresh model of ``kind``/``config`` trained on ``split``, seeded, checked, in eval mode."""
    env.log(f"training {what} on {len(split)} images")
    seed_everything(seed)
    model = train_model(kind, split, num_classes=data.num_classes, mean=data.mean, std=data.std, config=config,
                        seed=seed, device=env.device, progress=env.spec.progress)
    checks.check_model(model, what)
    return model.eval()


@node_types.register("model")
class ModelNode(NodeType):
    """A trained model (the run's device is in the key: training on another device is another model)."""

    cached = True
    gpu = True
    order = 1

    @classmethod
    def plan(cls, planner: Planner, data: Node, kind: str) -> Node:
        def make() -> Node:
            cfg = effective_config(planner.suite.models[kind], planner.device_type)  # precision used; defaults dropped
            code = cls.code_version(keys.package_version("hansbench.models"), keys.code_version(model_kinds.get(kind)),
                                    keys.code_version(backbones.get(cfg.get("backbone", DEFAULT_BACKBONE))))
            return cls.node({"model_kind": kind, "config": keys.with_file_digests(cfg), "raw": cfg,
                             "device": planner.device_type}, {"data": data}, code, {**data.ids, "model": kind})

        return planner.once(("model", data.key, kind), make)

    @classmethod
    def compute(cls, node: Node, env: NodeEnv) -> tuple[torch.nn.Module, dict]:
        data = env.output(node.inputs["data"])
        kind = node.params["model_kind"]
        model = train(env, kind, node.params["raw"], data.train, data, node.seed,
                      f"{kind} for {node.inputs['data'].params['raw'].get('name', '')} seed {node.seed}")
        return model, model.state_dict()

    @classmethod
    def from_state(cls, node: Node, state: dict, env: NodeEnv) -> torch.nn.Module:
        return model_from_state(node.params["model_kind"], node.params["raw"], env.output(node.inputs["data"]),
                                state, env.device)
