"""Executing one node: what each node type computes, with its inputs loaded or rebuilt.

:class:`NodeEnv` is all a process needs to run any node of a plan (the driver's for the
local executor, each worker's for Ray): the results directory's cache, the device, and a
small in-memory memo. ``output(node)`` serves a node's output from the memo, else the
cache, else computes it (an unreadable cache entry is recomputed: the cache heals). Work
done on demand inside a node (maps a metric asks for, an explainer's setup, a retrained
model) is recorded as its own sub-node with its own time, so every node's seconds are its own.
"""

from __future__ import annotations

import dataclasses
import json
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hansbench.bench import checks, keys
from hansbench.bench.cache import Workspace
from hansbench.bench.device import seed_everything
from hansbench.bench.graph import MAPS_VERSION, Node
from hansbench.datasets.base import ScenarioData, Split
from hansbench.methods.base import MAPS
from hansbench.methods.inputs import Maps
from hansbench.registry import clusterer_inputs, clusterers, explainers, metrics

TIMING_VALUES = {
    "ms-per-image": ("ms", False),
    "gradient-units": ("x fwd+bwd", False),
    "peak-memory-mb": ("MB", False),
}
CACHED_TYPES = ("data", "model", "maps", "clustering")  # resource nodes whose outputs live in the cache


@dataclass
class EnvSpec:
    """What a process needs to run nodes (picklable, sent to Ray workers)."""

    out: str
    device: str = "cpu"
    progress: bool = False
    threads: int | None = None  # torch intra-op threads (None: torch's default)


@dataclass
class NodeResult:
    key: str
    status: str  # done | failed | skipped
    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""  # one line
    traceback: str = ""
    records: list[dict] = field(default_factory=list)  # sub-nodes computed on demand: key, type, ids, seconds


class DependencyFailed(RuntimeError):
    """An input node failed earlier in this run."""


# -------------------------------------------------------------------------- data (de)serialisation
def data_state(data: ScenarioData) -> dict:
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


def encode_maps(maps: torch.Tensor) -> dict:
    """float16 with one float32 scale per (image, view): relative error <= 2**-11 of each map's largest |value|.

    Plain float16 would flush the small relevances of LRP-type maps (1e-8 and below) to zero;
    scaling each map to [-1, 1] first keeps 11 significant bits everywhere.
    """
    scale = maps.abs().amax(dim=(-2, -1), keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)
    return {"maps16": (maps / scale).half(), "scale": scale.squeeze(-1).squeeze(-1).float()}


def decode_maps(maps16: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return maps16.float() * scale[..., None, None]


class MapBank:
    """Every map computed once: one cache entry per (explainer node, split) holding maps per (image, class).

    A request for (index, target) pairs serves the stored ones and computes only the missing
    ones, in one batched pass; so the same image's map is never computed again for another
    index set. Stored as :func:`encode_maps` (half the bytes of float32). Under Ray two workers
    may extend the same bank at once: the entry is replaced atomically, the later writer wins,
    and maps the other added are recomputed when next asked for (never wrong, at worst repeated).
    """

    def __init__(self, env: NodeEnv, explainer_node: Node, split: str):
        self.env, self.node, self.split = env, explainer_node, split
        self.key = keys.node_key("maps-bank", {"split": split}, MAPS_VERSION, {"explainer": explainer_node.key})

    PAIR_BASE = 1_000_003  # (image, class) -> image * PAIR_BASE + class: one sortable integer per pair

    def get(self, index: torch.Tensor, target: torch.Tensor, batch_size: int = 64) -> tuple[torch.Tensor, float]:
        """Maps ``[n, V, H, W]`` float32 for ``(index[i], target[i])``; also the seconds spent computing."""
        env = self.env
        bank = env.ws.load("maps", self.key)
        want = index.long() * self.PAIR_BASE + target.long()
        have = bank["pairs"] if bank is not None else torch.empty(0, dtype=torch.long)
        new_pairs = torch.unique(want[~torch.isin(want, have)])  # a pair asked for twice is computed once
        seconds = 0.0
        if new_pairs.numel():
            data = env.output(self.node.inputs["model"].inputs["data"])
            t0 = time.perf_counter()
            new = env.compute_maps(self.node, data.split(self.split), new_pairs // self.PAIR_BASE,
                                   new_pairs % self.PAIR_BASE, batch_size)
            seconds = time.perf_counter() - t0
            enc = {"pairs": new_pairs, **encode_maps(new)}
            if bank is not None and bank["maps16"].shape[1:] == enc["maps16"].shape[1:]:
                enc = {k: torch.cat([bank[k], enc[k]]) for k in enc}
            bank = enc  # (a bank whose V no longer matches the explainer's is replaced)
            env.ws.save("maps", self.key, bank)
        order = torch.argsort(bank["pairs"]) if bank is not None else torch.empty(0, dtype=torch.long)
        if not want.numel():
            h, w = env.output(self.node.inputs["model"].inputs["data"]).split(self.split).images.shape[-2:]
            return torch.empty(0, 1, h, w), seconds
        rows = order[torch.searchsorted(bank["pairs"][order], want)]
        return decode_maps(bank["maps16"][rows], bank["scale"][rows]), seconds


class _Memo(OrderedDict):
    """A small LRU of loaded outputs (data, models, explainers, clusterings) by node key."""

    def __init__(self, size: int = 32):
        super().__init__()
        self.size = size

    def put(self, key: str, value: Any) -> Any:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
        return value


class NodeEnv:
    def __init__(self, spec: EnvSpec, log: Callable[[str], None] | None = None):
        self.spec = spec
        self.device = torch.device(spec.device)
        if spec.threads:
            torch.set_num_threads(int(spec.threads))
        self.log = log or (lambda msg: None)
        self.ws = Workspace(Path(spec.out) / "cache", self.device, log=self.log)
        self.memo = _Memo()
        self.failed: dict[str, str] = {}
        self._records: list[dict] = []

    # -- running one node ---------------------------------------------------------------------------
    def run(self, node: Node) -> NodeResult:
        """Compute ``node`` (its inputs loaded or rebuilt as needed); never raises except Ctrl-C."""
        self._records = []
        t0 = time.perf_counter()
        try:
            if node.produces_rows:
                rows = self._compute(node)
            else:
                self.output(node, top=True)
                rows = []
            status, err, tb = "done", "", ""
        except KeyboardInterrupt:
            raise
        except DependencyFailed as exc:
            rows, status, err, tb = [], "skipped", str(exc), ""
        except Exception as exc:
            rows, status = [], "failed"
            err = f"{type(exc).__name__}: {exc}".splitlines()[0]
            tb = "".join(traceback.format_exception(exc))
            self.failed[node.key] = err
        total = time.perf_counter() - t0
        own = max(total - sum(r["seconds"] for r in self._records), 0.0)
        return NodeResult(node.key, status, rows, own, err, tb, list(self._records))

    def _record(self, node: Node, seconds: float) -> None:
        self._records.append({"key": node.key, "type": node.type, "ids": node.ids, "seconds": float(seconds)})

    def output(self, node: Node, *, top: bool = False) -> Any:
        """The node's output: memo, else cache, else computed (and recorded as a sub-node unless ``top``)."""
        if node.key in self.failed:
            raise DependencyFailed(f"input {node.label()} failed: {self.failed[node.key]}")
        if node.key in self.memo:
            self.memo.move_to_end(node.key)
            return self.memo[node.key]
        if node.type in CACHED_TYPES:
            state = self.ws.load(node.type, node.key)
            if state is not None:
                return self.memo.put(node.key, self._from_state(node, state))
        t0 = time.perf_counter()
        n_before = len(self._records)
        try:
            value, state = self._compute(node)
        except DependencyFailed:
            raise
        except Exception as exc:
            if not top:  # an input computed on demand failed: its dependant is skipped because of it
                self.failed[node.key] = f"{type(exc).__name__}: {exc}".splitlines()[0]
                raise DependencyFailed(f"input {node.label()} failed: {self.failed[node.key]}") from exc
            raise
        if state is not None:
            self.ws.save(node.type, node.key, state)
        if not top:
            inner = sum(r["seconds"] for r in self._records[n_before:])
            self._record(node, time.perf_counter() - t0 - inner)
        return self.memo.put(node.key, value)

    # -- what each node type computes: (value, cache state or None) ----------------------------------
    def _compute(self, node: Node) -> Any:
        return getattr(self, f"_node_{node.type}")(node)

    def _from_state(self, node: Node, state: Any) -> Any:
        return getattr(self, f"_load_{node.type}")(node, state)

    def _node_data(self, node: Node):
        from hansbench.datasets.scenarios import make_scenario

        raw = dict(node.params["raw"])
        data = make_scenario(**raw, seed=node.params["seed"])
        checks.check_data(data, raw.get("name", ""))
        return data, data_state(data)

    def _load_data(self, node: Node, state: dict) -> ScenarioData:
        return data_from_state(state)

    def _model_from_state(self, kind: str, config: dict, data: ScenarioData, state: dict) -> torch.nn.Module:
        """The architecture of ``kind``/``config`` with a cached state dict, on the device, in eval mode."""
        from hansbench.models.kinds import build_model
        from hansbench.models.recipes import split_config

        model = build_model(kind, num_classes=data.num_classes, mean=data.mean, std=data.std,
                            **split_config(kind, config)[0])
        model.load_state_dict(state)
        return model.to(self.device).eval()

    def _train(self, kind: str, config: dict, train: Split, data: ScenarioData, seed: int, what: str):
        from hansbench.models.kinds import train_model

        self.log(f"training {what} on {len(train)} images")
        seed_everything(seed)
        model = train_model(kind, train, num_classes=data.num_classes, mean=data.mean, std=data.std, config=config,
                            seed=seed, device=self.device, progress=self.spec.progress)
        checks.check_model(model, what)
        return model.eval()

    def _node_model(self, node: Node):
        data = self.output(node.inputs["data"])
        kind = node.params["model_kind"]
        model = self._train(kind, node.params["raw"], data.train, data, node.ids["seed"],
                            f"{kind} for {node.ids['scenario']} seed {node.ids['seed']}")
        return model, model.state_dict()

    def _load_model(self, node: Node, state: dict) -> torch.nn.Module:
        return self._model_from_state(node.params["model_kind"], node.params["raw"], self.output(node.inputs["data"]), state)

    def retrainer(self, model_node: Node) -> Callable[[Split, str], torch.nn.Module]:
        """``ctx.train_model``: a fresh model of the node's kind and recipe on another training set."""

        def train_on(train: Split, tag: str = "") -> torch.nn.Module:
            data = self.output(model_node.inputs["data"])
            kind, config = model_node.params["model_kind"], model_node.params["raw"]
            params = {**model_node.params, "retrain_on": {"images": train.images, "labels": train.labels}}
            key = keys.node_key("model", params, model_node.code, {"data": model_node.inputs["data"].key})
            state = self.ws.load("model", key)
            if state is not None:
                return self._model_from_state(kind, config, data, state)
            t0 = time.perf_counter()
            model = self._train(kind, config, train, data, model_node.ids["seed"], f"{kind} ({tag or 'retrained'})")
            self.ws.save("model", key, model.state_dict())
            self._records.append({"key": key, "type": "model", "ids": {**model_node.ids, "model": kind},
                                  "seconds": time.perf_counter() - t0})
            return model

        return train_on

    def _set_up_explainer(self, node: Node, model: torch.nn.Module):
        """The node's explainer, built from its options and set up on ``model`` (blind to the ground truth)."""
        data = self.output(node.inputs["model"].inputs["data"])
        obj = explainers.get(node.params["name"])(**node.params["raw"])
        obj.setup(model, data.without_ground_truth(), self.ws)  # a method never sees the poisoned flags
        return obj

    def _node_explainer(self, node: Node):
        return self._set_up_explainer(node, self.output(node.inputs["model"])), None

    def compute_maps(self, explainer_node: Node, split: Split, index: torch.Tensor, target: torch.Tensor,
                     batch_size: int = 64) -> torch.Tensor:
        """Maps of ``split[index]`` explaining ``target``, batched on the device, checked."""
        model = self.output(explainer_node.inputs["model"])
        exp = self.output(explainer_node)
        name = explainer_node.params["name"]
        seed_everything(explainer_node.ids["seed"])
        out = []
        chunks = range(0, len(index), batch_size)
        for i in tqdm(chunks, desc=f"{name} maps", leave=False, disable=not self.spec.progress or len(chunks) < 3):
            idx = index[i:i + batch_size]
            x = model.normalize(split.images[idx].to(self.device, non_blocking=True))
            t = target[i:i + batch_size].to(self.device, non_blocking=True)
            out.append(exp.explain(model, x, t).detach().float().cpu())
        h, w = split.images.shape[-2:]
        maps = torch.cat(out) if out else torch.empty(0, 1, h, w)
        checks.check_maps(maps, n=len(index), height=h, width=w, views=exp.expected_views(model), explainer=name)
        return maps

    @staticmethod
    def targets(data: ScenarioData, split_name: str, index: torch.Tensor) -> torch.Tensor:
        """The classes to explain: the scenario's poisoning decides (``ScenarioData.explain_targets``)."""
        return data.explain_targets(split_name, index)

    def _node_maps(self, node: Node):
        """The clusterers' input: the inspected class's training maps (kept in the bank; the entry holds the index)."""
        exp_node = node.inputs["explainer"]
        data = self.output(exp_node.inputs["model"].inputs["data"])
        index = self.cluster_index(data)
        target = self.targets(data, "train", index)
        maps, _ = MapBank(self, exp_node, "train").get(index, target, node.params["explain_batch_size"])
        return maps, {"index": index, "target": target}

    def _load_maps(self, node: Node, state: dict) -> torch.Tensor:
        bank = MapBank(self, node.inputs["explainer"], "train")
        maps, seconds = bank.get(state["index"], state["target"], node.params["explain_batch_size"])
        if seconds:  # the bank had lost them (removed or corrupt): recomputed, and recorded
            self._record(node, seconds)
        return maps

    def explain_fn(self, explainer_node: Node, batch_size: int = 64) -> Callable[..., torch.Tensor]:
        """``ctx.explain(split, index=None, target=None)``: maps on demand, cached, recorded as maps nodes."""

        def fn(split: str, index: torch.Tensor | None = None, target: torch.Tensor | None = None) -> torch.Tensor:
            data = self.output(explainer_node.inputs["model"].inputs["data"])
            s = data.split(split)
            index = torch.arange(len(s)) if index is None else torch.as_tensor(index, dtype=torch.long).flatten()
            target = self.targets(data, split, index) if target is None else \
                torch.as_tensor(target, dtype=torch.long).expand(len(index))
            n_before = len(self._records)
            bank = MapBank(self, explainer_node, split)
            maps, seconds = bank.get(index, target, batch_size)
            if seconds:
                inner = sum(r["seconds"] for r in self._records[n_before:])
                key = keys.node_key("maps", {"split": split, "index": index, "target": target}, MAPS_VERSION,
                                    {"explainer": explainer_node.key})
                self._records.append({"key": key, "type": "maps", "ids": explainer_node.ids,
                                      "seconds": max(seconds - inner, 0.0)})
            return maps

        return fn

    @staticmethod
    def cluster_index(data: ScenarioData) -> torch.Tensor:
        return data.train.of_class(data.inspect_class)

    @staticmethod
    def input_kind(node: Node) -> str:
        """The clustering node's input kind: its source when that names one, else ``maps`` (an explainer)."""
        return MAPS if "maps" in node.inputs else node.params["source"]

    def views(self, node: Node) -> np.ndarray:
        """Clusterer input ``[N, V, D]`` of the inspected class's training images, from the node's input kind.

        The kind sees the data without ground truth; the map kind gets the explainer's maps from the bank.
        """
        kind = self.input_kind(node)
        settings = node.params["views"]
        if kind == MAPS:
            return Maps.from_maps(self.output(node.inputs["maps"]), settings)
        obj = clusterer_inputs.get(kind)()
        model_node = node.inputs.get("model")
        data_node = model_node.inputs["data"] if model_node is not None else node.inputs["data"]
        data = self.output(data_node)
        model = self.output(model_node) if model_node is not None and obj.uses_model else None
        index = self.cluster_index(data)
        seed_everything(node.ids["seed"])  # a kind that samples (e.g. blending partners) is seeded per run
        views = obj.views(model=model, data=data.without_ground_truth(), index=index, device=self.device,
                          settings=dict(settings))
        return checks.check_views(views, n=len(index), kind=kind)

    def _node_clustering(self, node: Node):
        name = node.params["clusterer"]
        est = clusterers.get(name)(**node.params["options"])
        views = self.views(node)
        est.fit_predict(views)
        res = est.result_
        labels = np.asarray(res.labels)
        checks.check_clustering(labels, res.flagged, n=views.shape[0], n_clusters=getattr(est, "n_clusters", None),
                                clusterer=name)
        scores = checks.check_scores(getattr(res, "scores", None), n=views.shape[0], clusterer=name)
        state = {"labels": torch.as_tensor(labels.astype(np.int64)), "flagged": int(res.flagged),
                 "info": json.dumps(res.info, default=str)}
        if scores is not None:  # absent key = no scores (entries cached before scores existed load the same)
            state["scores"] = torch.as_tensor(scores, dtype=torch.float64)
        return self._load_clustering(node, state), state

    def _load_clustering(self, node: Node, state: dict):
        from hansbench.methods.base import ClusteringResult

        info = state["info"]
        scores = state.get("scores")
        return ClusteringResult(state["labels"].numpy(), int(state["flagged"]),
                                json.loads(info) if isinstance(info, str) else dict(info),
                                scores=None if scores is None else scores.numpy().astype(np.float64))

    def _node_metric(self, node: Node) -> list[dict]:
        from hansbench.metrics.base import EvalContext

        model_node = node.inputs["model"]
        data = self.output(model_node.inputs["data"])
        model = self.output(model_node)
        exp_node, clu_node = node.inputs.get("explainer"), node.inputs.get("clustering")
        clustering = self.output(clu_node) if clu_node is not None else None
        metric = metrics.get(node.params["metric"])(**node.params["options"])
        seed = node.ids["seed"]
        seed_everything(seed)
        ctx = EvalContext(
            data=data, model=model, seed=seed, device=self.device,
            explainer=node.ids["explainer"], clusterer=node.ids["clusterer"],
            explain=self.explain_fn(exp_node) if exp_node is not None else None,
            clustering=clustering, cluster_index=self.cluster_index(data) if clu_node is not None else None,
            train_model=self.retrainer(model_node),
            explain_model=self.explain_model_fn(exp_node) if exp_node is not None else None,
        )
        return checks.check_rows(metric.evaluate(ctx), node.params["metric"])

    def _node_timing(self, node: Node) -> list[dict]:
        from hansbench.bench.timing import gradient_pass, time_call

        exp_node = node.inputs["explainer"]
        model_node = exp_node.inputs["model"]
        data, model, exp = self.output(model_node.inputs["data"]), self.output(model_node), self.output(exp_node)
        settings = node.params["timing"]
        n = int(settings.get("batch_size", 16))
        x = model.normalize(data.clean_test.images[:n].to(self.device))
        t = data.clean_test.labels[:n].to(self.device)
        reps = dict(warmup=int(settings.get("warmup", 1)), repeats=int(settings.get("repeats", 3)))
        t_exp = time_call(lambda: exp.explain(model, x, t), self.device, **reps)
        t_grad = time_call(gradient_pass(model, x, t), self.device, **reps)
        values = {
            "ms-per-image": t_exp.per_item_ms(len(x)),
            "gradient-units": t_exp.median_s / max(t_grad.median_s, 1e-12),
            "peak-memory-mb": t_exp.peak_memory_bytes / 2**20,
        }
        return [{"metric": k, "value": float(v), "unit": TIMING_VALUES[k][0], "higher_is_better": TIMING_VALUES[k][1],
                 "split": "", "stage": "", "detail": f"batch={len(x)}"} for k, v in values.items()]

    def explain_model_fn(self, explainer_node: Node) -> Callable[[torch.nn.Module, torch.Tensor, torch.Tensor],
                                                                torch.Tensor]:
        """``ctx.explain_model(model, x, target)``: the node's explainer, built fresh, explaining another model.

        For checks that change the model (model randomisation). A new explainer is built from the
        node's raw options for each model object passed (the metric passes a new one per changed
        model) and its ``setup`` runs on that model, with the scenario data without ground truth:
        what ``setup`` derives from the model (CRP's concept channels) must come from the changed
        model, or the trained model's learned state would leak into the check. ``setup`` that
        trains a model of its own (ClaDec's decoder) is as expensive as it sounds: the metric says
        whether it applies. ``x`` is normalised; maps are computed on the run's device, uncached.
        """
        held: dict[str, Any] = {}
        name = explainer_node.params["name"]

        def fn(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            if held.get("model") is not model:
                seed_everything(explainer_node.ids["seed"])
                held.update(model=model, explainer=self._set_up_explainer(explainer_node, model))
            seed_everything(explainer_node.ids["seed"])
            maps = held["explainer"].explain(model, x.to(self.device), target.to(self.device)).detach().float()
            checks.check_maps(maps.cpu(), n=len(x), height=x.shape[-2], width=x.shape[-1],
                              views=held["explainer"].expected_views(model), explainer=name)
            return maps

        return fn
