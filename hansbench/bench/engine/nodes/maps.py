"""The maps node and the map bank: every explanation map computed once, stored compactly.

A maps node is the clusterers' input: the maps of the inspected class's training images.
Its cache entry holds only which (image, class) pairs it is; the maps themselves live in the
explainer's :class:`MapBank`, which also serves the maps a metric asks for (``ctx.explain``).
The bank's key carries this module's code version, so editing how maps are computed or
stored reruns them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from hansbench.bench.engine import checks, keys
from hansbench.bench.engine.nodes.base import Node, NodeType, node_types
from hansbench.bench.engine.seeding import seed_everything
from hansbench.datasets.base import ScenarioData, Split

if TYPE_CHECKING:
    from hansbench.bench.engine.execute import NodeEnv
    from hansbench.bench.engine.planner import Planner


def encode_maps(maps: torch.Tensor) -> dict:
    """float16 with one float32 scale per (image, view): relative error <= 2**-11 of each map's largest |value|.

    Plain float16 would flush the small relevances of LRP-type maps (1e-8 and below) to zero;
    scaling each map to [-1, 1] first keeps 11 significant bits everywhere.
    """
    scale = maps.abs().amax(dim=(-2, -1), keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)
    return {"maps16": (maps / scale).half(), "scale": scale.squeeze(-1).squeeze(-1).float()}


def decode_maps(maps16: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Float32 maps from :func:`encode_maps`."""
    return maps16.float() * scale[..., None, None]


def targets(data: ScenarioData, split_name: str, index: torch.Tensor) -> torch.Tensor:
    """The classes to explain: the scenario's poisoning decides (``ScenarioData.explain_targets``)."""
    return data.explain_targets(split_name, index)


def cluster_index(data: ScenarioData) -> torch.Tensor:
    """The images a clusterer sees: the inspected class's training images."""
    return data.train.of_class(data.inspect_class)


def compute_maps(env: NodeEnv, explainer_node: Node, split: Split, index: torch.Tensor, target: torch.Tensor,
                 batch_size: int = 64) -> torch.Tensor:
    """Maps of ``split[index]`` explaining ``target``, batched on the device, checked (uncached)."""
    model = env.output(explainer_node.inputs["model"])
    exp = env.output(explainer_node)
    name = explainer_node.params["name"]
    seed_everything(explainer_node.seed)
    out = []
    chunks = range(0, len(index), batch_size)
    for i in tqdm(chunks, desc=f"{name} maps", leave=False, disable=not env.spec.progress or len(chunks) < 3):
        idx = index[i:i + batch_size]
        x = model.normalize(split.images[idx].to(env.device, non_blocking=True))
        t = target[i:i + batch_size].to(env.device, non_blocking=True)
        out.append(exp.explain(model, x, t).detach().float().cpu())
    h, w = split.images.shape[-2:]
    maps = torch.cat(out) if out else torch.empty(0, 1, h, w)
    checks.check_maps(maps, n=len(index), height=h, width=w, views=exp.expected_views(model), explainer=name)
    return maps


class MapBank:
    """Every map computed once: one cache entry per (explainer node, split) holding maps per (image, class).

    A request for (index, target) pairs serves the stored ones and computes only the missing
    ones, in one batched pass; so the same image's map is never computed again for another
    index set. Stored as :func:`encode_maps` (half the bytes of float32). Under Ray two workers
    may extend the same bank at once: the entry is replaced atomically, the later writer wins,
    and maps the other added are recomputed when next asked for (never wrong, at worst repeated).
    """

    PAIR_BASE = 1_000_003  # (image, class) -> image * PAIR_BASE + class: one sortable integer per pair

    def __init__(self, env: NodeEnv, explainer_node: Node, split: str):
        self.env, self.node, self.split = env, explainer_node, split
        self.key = keys.node_key("maps-bank", {"split": split}, MapsNode.code_version(),
                                 {"explainer": explainer_node.key})

    def data(self) -> ScenarioData:
        """The scenario data the explainer's model was trained on (loaded only when maps are missing)."""
        return self.env.output(self.node.inputs["model"].inputs["data"])

    def get(self, index: torch.Tensor, target: torch.Tensor, batch_size: int = 64,
            record: Node | None = None) -> torch.Tensor:
        """Maps ``[n, V, H, W]`` float32 for ``(index[i], target[i])``; time spent computing missing ones
        is recorded as the sub-node ``record`` (None: the caller's own time)."""
        env = self.env
        bank = env.ws.load("maps", self.key)
        want = index.long() * self.PAIR_BASE + target.long()
        have = bank["pairs"] if bank is not None else torch.empty(0, dtype=torch.long)
        new_pairs = torch.unique(want[~torch.isin(want, have)])  # a pair asked for twice is computed once
        env.counts["maps asked"] += torch.unique(want).numel()  # distinct (image, class) pairs of this request
        if new_pairs.numel():
            split = self.data().split(self.split)
            with env.sub_node(record) if record is not None else nullcontext():
                new = compute_maps(env, self.node, split, new_pairs // self.PAIR_BASE, new_pairs % self.PAIR_BASE,
                                   batch_size)
            env.counts["maps computed"] += new_pairs.numel()
            enc = {"pairs": new_pairs, **encode_maps(new)}
            if bank is not None and bank["maps16"].shape[1:] == enc["maps16"].shape[1:]:
                enc = {k: torch.cat([bank[k], enc[k]]) for k in enc}
            bank = enc  # (a bank whose V no longer matches the explainer's is replaced)
            env.ws.save("maps", self.key, bank)
        if not want.numel():
            h, w = self.data().split(self.split).images.shape[-2:]
            return torch.empty(0, 1, h, w)
        order = torch.argsort(bank["pairs"])
        rows = order[torch.searchsorted(bank["pairs"][order], want)]
        return decode_maps(bank["maps16"][rows], bank["scale"][rows])


def explain_fn(env: NodeEnv, explainer_node: Node, batch_size: int = 64) -> Callable[..., torch.Tensor]:
    """``ctx.explain(split, index=None, target=None)``: maps on demand, from the bank, new ones recorded as
    maps sub-nodes."""

    def fn(split: str, index: torch.Tensor | None = None, target: torch.Tensor | None = None) -> torch.Tensor:
        data = env.output(explainer_node.inputs["model"].inputs["data"])
        s = data.split(split)
        index = torch.arange(len(s)) if index is None else torch.as_tensor(index, dtype=torch.long).flatten()
        target = targets(data, split, index) if target is None else \
            torch.as_tensor(target, dtype=torch.long).expand(len(index))
        record = MapsNode.node({"split": split, "index": index, "target": target}, {"explainer": explainer_node},
                               MapsNode.code_version(), explainer_node.ids)
        return MapBank(env, explainer_node, split).get(index, target, batch_size, record=record)

    return fn


@node_types.register("maps")
class MapsNode(NodeType):
    """The inspected class's training maps of one explainer: the clusterers' input (entry: the pairs)."""

    cached = True
    gpu = True
    order = 3

    @classmethod
    def plan(cls, planner: Planner, explainer: Node) -> Node:
        def make() -> Node:
            batch = int(planner.suite.timing.get("explain_batch_size", 64))
            return cls.node({"split": "train", "select": "inspect-class", "explain_batch_size": batch},
                            {"explainer": explainer}, cls.code_version(), dict(explainer.ids))

        return planner.once(("maps", explainer.key), make)

    @classmethod
    def compute(cls, node: Node, env: NodeEnv) -> tuple[torch.Tensor, dict]:
        exp_node = node.inputs["explainer"]
        data = env.output(exp_node.inputs["model"].inputs["data"])
        index = cluster_index(data)
        target = targets(data, "train", index)
        maps = MapBank(env, exp_node, "train").get(index, target, node.params["explain_batch_size"])
        return maps, {"index": index, "target": target}

    @classmethod
    def from_state(cls, node: Node, state: dict, env: NodeEnv) -> torch.Tensor:
        # a bank that lost them (removed or corrupt) recomputes them, recorded as this node's time
        return MapBank(env, node.inputs["explainer"], "train").get(state["index"], state["target"],
                                                                   node.params["explain_batch_size"], record=node)
