"""The runner: suite -> data -> models -> maps -> clusterings -> metric rows in the store.

Work is planned as jobs (timing of an explainer, one clustering, one metric on one
combination), each keyed by a hash of everything that determines its rows. A job that
is done in the store is skipped; the expensive resources behind jobs (datasets,
trained models, maps, clusterings) are built lazily and cached on disk, so a second
run recomputes nothing and an interrupted run resumes where it stopped. A failing job
records its traceback and the run goes on.
"""

from __future__ import annotations

import inspect
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hansbench.bench.cache import Workspace, hash_key
from hansbench.bench.config import Suite
from hansbench.bench.device import resolve_device, seed_everything
from hansbench.bench.store import ResultsStore
from hansbench.bench.timing import gradient_pass, time_call
from hansbench.datasets.base import ScenarioData, Split
from hansbench.datasets.scenarios import make_scenario
from hansbench.methods.base import Clusterer, ClusteringResult, Explainer
from hansbench.metrics.base import EvalContext, Metric
from hansbench.models.training import build_model, split_config, train_model
from hansbench.registry import clusterers, explainers, metrics

ACTIVATIONS = "activations"  # the explainer column of clusterings of penultimate activations
TIMING_VALUES = {
    "ms-per-image": ("ms", False),
    "gradient-units": ("x fwd+bwd", False),
    "peak-memory-mb": ("MB", False),
}


@dataclass
class Job:
    key: str
    kind: str  # timing | clustering | metric
    ids: dict
    run: Callable[[], list[dict]]


@dataclass
class RunSummary:
    out: Path
    job_keys: list[str]
    done: int = 0
    skipped: int = 0
    failed: list[tuple[dict, str]] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False


class _Lazy:
    """Compute once on first use; remember a failure so dependants fail fast with its cause."""

    def __init__(self, fn: Callable[[], Any]):
        self.fn, self.done, self.value, self.error = fn, False, None, None

    def __call__(self) -> Any:
        if self.error is not None:
            raise RuntimeError(f"a prerequisite failed earlier: {self.error}")
        if not self.done:
            try:
                self.value = self.fn()
            except Exception as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                raise
            self.done = True
        return self.value


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    return t.to(device, non_blocking=True)


class ScenarioSession:
    """The lazily built resources of one (scenario, seed) and the jobs over them."""

    def __init__(self, runner: Runner, scenario: dict, seed: int):
        self.runner, self.scenario, self.seed = runner, scenario, seed
        self.suite, self.ws, self.device = runner.suite, runner.ws, runner.device
        self.name = scenario["name"]
        self.data = _Lazy(self._make_data)
        self._models: dict[str, _Lazy] = {}
        self._explainers: dict[tuple[str, str], _Lazy] = {}
        self._maps: dict[str, dict[str, torch.Tensor]] = {}
        self._clusterings: dict[tuple[str, str, str], _Lazy] = {}

    # -- keys -------------------------------------------------------------------
    def _scenario_key(self) -> dict:
        return {"scenario": self.scenario, "seed": self.seed}

    def model_key(self, kind: str) -> dict:
        return {**self._scenario_key(), "model": kind, "config": self.suite.models[kind]}

    def explainer_key(self, kind: str, name: str) -> dict:
        cls = explainers.get(name)
        return {**self.model_key(kind), "explainer": name, "options": self.suite.explainers[name],
                "version": cls.version}

    # -- resources ----------------------------------------------------------------
    def _make_data(self) -> ScenarioData:
        return make_scenario(**self.scenario, seed=self.seed)

    def model(self, kind: str) -> torch.nn.Module:
        if kind not in self._models:
            self._models[kind] = _Lazy(lambda: self._train(kind, self.data().train, self.model_key(kind)))
        return self._models[kind]()

    def _train(self, kind: str, train: Split, key: dict) -> torch.nn.Module:
        data, cfg = self.data(), self.suite.models[kind]
        common = dict(num_classes=data.num_classes, mean=data.mean, std=data.std)
        model_opts = split_config(kind, cfg)[0]

        def build() -> torch.nn.Module:
            self.runner.log(f"training {kind} for {self.name} seed {self.seed} on {len(train)} images")
            seed_everything(self.seed)
            return train_model(kind, train, **common, config=cfg, seed=self.seed, device=self.device,
                               progress=self.runner.progress)

        return self.ws.cached_module(key, build, init=lambda: build_model(kind, **common, **model_opts)).eval()

    def retrain(self, kind: str) -> Callable[[Split, str], torch.nn.Module]:
        """ctx.train_model: a fresh model of ``kind`` on another training set, cached by content."""

        def train_on(train: Split, tag: str = "") -> torch.nn.Module:
            key = {**self.model_key(kind), "train_images": train.images, "train_labels": train.labels}
            return self._train(kind, train, key)

        return train_on

    def explainer(self, kind: str, name: str) -> Explainer:
        k = (kind, name)
        if k not in self._explainers:
            def make() -> Explainer:
                obj = explainers.get(name)(**self.suite.explainers[name])
                obj.setup(self.model(kind), self.data(), self.ws)
                return obj

            self._explainers[k] = _Lazy(make)
        return self._explainers[k]()

    def explain(self, kind: str, name: str) -> Callable[..., torch.Tensor]:
        """ctx.explain for one (model, explainer): batched, cached in memory and on disk."""

        def fn(split: str, index: torch.Tensor | None = None, target: torch.Tensor | None = None) -> torch.Tensor:
            s = getattr(self.data(), split)
            index = torch.arange(len(s)) if index is None else torch.as_tensor(index).flatten()
            target = s.labels[index] if target is None else torch.as_tensor(target).expand(len(index))
            key = {**self.explainer_key(kind, name), "split": split, "index": index, "target": target}
            mem_key = hash_key(key)
            memo = self._maps.setdefault(f"{kind}/{name}", {})
            if mem_key not in memo:
                memo[mem_key] = self.ws.cached_tensors(key, lambda: {"maps": self._compute_maps(kind, name, s, index,
                                                                                                 target)})["maps"]
            return memo[mem_key]

        return fn

    def _compute_maps(self, kind: str, name: str, s: Split, index: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        model, exp = self.model(kind), self.explainer(kind, name)
        bs = int(self.suite.timing.get("explain_batch_size", 64))
        out = []
        chunks = range(0, len(index), bs)
        for i in tqdm(chunks, desc=f"{name} maps", leave=False, disable=not self.runner.progress or len(chunks) < 3):
            idx = index[i:i + bs]
            x = model.normalize(_to_device(s.images[idx], self.device))
            out.append(exp.explain(model, x, _to_device(target[i:i + bs], self.device)).detach().float().cpu())
        return torch.cat(out) if out else torch.empty(0)

    def cluster_index(self) -> torch.Tensor:
        data = self.data()
        return data.train.of_class(data.inspect_class)

    def views(self, kind: str, source: str) -> np.ndarray:
        """Clusterer input ``[N, V, D]``: downsampled maps, or penultimate activations."""
        data, idx = self.data(), self.cluster_index()
        if source == ACTIVATIONS:
            model = self.model(kind)
            with torch.no_grad():
                acts = [model.embed(model.normalize(_to_device(data.train.images[idx[i:i + 256]], self.device))).cpu()
                        for i in range(0, len(idx), 256)]
            return torch.cat(acts).unsqueeze(1).numpy()
        maps = self.explain(kind, source)("train", idx)
        size = self.suite.map_size or max(4, round(data.image_shape[-1] / 3))
        small = F.adaptive_avg_pool2d(maps, size)
        return small.flatten(2).numpy().astype(np.float64)

    def clustering_options(self, name: str) -> dict:
        """The clusterer's options with the run's seed and its one device choice filled in."""
        cls = clusterers.get(name)
        opts = {"random_state": self.seed, **self.suite.clusterers[name]}
        if "device" in inspect.signature(cls.__init__).parameters:
            opts.setdefault("device", str(self.device))
        return opts

    def clustering_key(self, kind: str, source: str, name: str) -> dict:
        """Everything that determines one clustering: model, maps (or activations), views, clusterer."""
        key = {**self.model_key(kind), "source": source, "clusterer": name, "options": self.clustering_options(name),
               "version": clusterers.get(name).version, "views": self.suite.clustering}
        if source != ACTIVATIONS:
            key["explainer"] = self.explainer_key(kind, source)
        return key

    def clustering(self, kind: str, source: str, name: str) -> ClusteringResult:
        k = (kind, source, name)
        if k not in self._clusterings:
            def make() -> ClusteringResult:
                est: Clusterer = clusterers.get(name)(**self.clustering_options(name))
                cached = self.ws.cached_tensors(self.clustering_key(kind, source, name),
                                                lambda: self._fit(est, kind, source))
                return ClusteringResult(cached["labels"].numpy(), int(cached["flagged"]), dict(cached["info"]))

            self._clusterings[k] = _Lazy(make)
        return self._clusterings[k]()

    def _fit(self, est: Clusterer, kind: str, source: str) -> dict:
        est.fit_predict(self.views(kind, source))
        res = est.result_
        return {"labels": torch.as_tensor(np.asarray(res.labels), dtype=torch.long), "flagged": res.flagged,
                "info": res.info}

    # -- jobs -----------------------------------------------------------------------
    def explainers_for(self, kind: str) -> list[str]:
        """The suite's explainers that support ``kind`` and are not filtered away from it."""
        return [e for e in self.suite.explainers
                if kind in explainers.get(e).model_kinds and self.suite.allows("explainers", e, model=kind)]

    def jobs(self) -> list[Job]:
        out: list[Job] = []
        base = {"scenario": self.name, "seed": self.seed}
        allows = self.suite.allows
        for kind in self.suite.models:
            mk = self.model_key(kind)
            exps = self.explainers_for(kind)
            map_clusterers = [c for c in self.suite.clusterers
                              if clusterers.get(c).input == "maps" and allows("clusterers", c, model=kind)]
            act_clusterers = [c for c in self.suite.clusterers
                              if clusterers.get(c).input == "activations" and allows("clusterers", c, model=kind)]
            for mname, mopts in self.suite.metrics.items():
                metric: Metric = metrics.get(mname)(**mopts)
                mkey = {"metric": mname, "options": mopts, "version": metric.version}
                if not allows("metrics", mname, model=kind):
                    continue
                if metric.level == "model" and metric.applies_to(kind):
                    ids = {**base, "model": kind, "explainer": "", "clusterer": "", "metric": mname}
                    out.append(self._metric_job({**mk, **mkey}, ids, metric, kind, "", ""))
                for e in exps if metric.level == "explainer" else []:
                    if metric.applies_to(kind, e) and allows("metrics", mname, explainer=e):
                        ids = {**base, "model": kind, "explainer": e, "clusterer": "", "metric": mname}
                        out.append(self._metric_job({**self.explainer_key(kind, e), **mkey}, ids, metric, kind, e, ""))
                if metric.level == "clustering":
                    pairs = [(e, c) for e in exps for c in map_clusterers
                             if allows("clusterers", c, explainer=e)] + [(ACTIVATIONS, c) for c in act_clusterers]
                    for e, c in pairs:
                        if metric.applies_to(kind, e, c) and allows("metrics", mname, explainer=e, clusterer=c):
                            ids = {**base, "model": kind, "explainer": e, "clusterer": c, "metric": mname}
                            key = {**self.clustering_key(kind, e, c), **mkey}
                            out.append(self._metric_job(key, ids, metric, kind, e, c))
            for e in exps:
                ids = {**base, "model": kind, "explainer": e, "clusterer": "", "metric": "timing"}
                key = {**self.explainer_key(kind, e), "timing": self.suite.timing}
                out.append(Job(hash_key({"job": "timing", **key}), "timing", ids, lambda k=kind, e=e: self._timing(k, e)))
        return out

    def _metric_job(self, key: dict, ids: dict, metric: Metric, kind: str, exp: str, clu: str) -> Job:
        def run() -> list[dict]:
            seed_everything(self.seed)
            ctx = EvalContext(
                data=self.data(), model=self.model(kind), seed=self.seed, device=self.device,
                explainer=exp, clusterer=clu,
                explain=self.explain(kind, exp) if exp and exp != ACTIVATIONS else None,
                clustering=self.clustering(kind, exp, clu) if clu else None,
                cluster_index=self.cluster_index() if clu else None,
                train_model=self.retrain(kind),
            )
            return metric.evaluate(ctx)

        return Job(hash_key({"job": "metric", **key}), "metric", ids, run)

    def _timing(self, kind: str, name: str) -> list[dict]:
        data, model, exp = self.data(), self.model(kind), self.explainer(kind, name)
        n = int(self.suite.timing.get("batch_size", 16))
        x = model.normalize(_to_device(data.clean_test.images[:n], self.device))
        t = _to_device(data.clean_test.labels[:n], self.device)
        reps = dict(warmup=int(self.suite.timing.get("warmup", 1)), repeats=int(self.suite.timing.get("repeats", 3)))
        t_exp = time_call(lambda: exp.explain(model, x, t), self.device, **reps)
        t_grad = time_call(gradient_pass(model, x, t), self.device, **reps)
        values = {
            "ms-per-image": t_exp.per_item_ms(len(x)),
            "gradient-units": t_exp.median_s / max(t_grad.median_s, 1e-12),
            "peak-memory-mb": t_exp.peak_memory_bytes / 2**20,
        }
        return [{"metric": k, "value": float(v), "unit": TIMING_VALUES[k][0], "higher_is_better": TIMING_VALUES[k][1],
                 "split": "", "stage": "", "detail": f"batch={len(x)}"} for k, v in values.items()]


class Runner:
    """Runs a validated suite into a results directory."""

    def __init__(self, suite: Suite, out: str | Path, *, progress: bool = True, log: Callable[[str], None] | None = None):
        self.suite = suite
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(suite.device)
        self.progress = progress
        self._log = log or (lambda msg: tqdm.write(msg))
        self.store = ResultsStore(self.out / "results.sqlite")
        self.ws = Workspace(self.out / "cache", self.device)
        self.sessions: list[ScenarioSession] = []

    def log(self, msg: str) -> None:
        self._log(f"[hansbench] {msg}")

    def plan(self) -> list[tuple[ScenarioSession, list[Job]]]:
        self.sessions = [ScenarioSession(self, sc, seed) for sc in self.suite.scenarios for seed in self.suite.seeds]
        return [(s, s.jobs()) for s in self.sessions]

    def run(self) -> RunSummary:
        t0 = time.perf_counter()
        plan = self.plan()
        keys = [j.key for _, jobs in plan for j in jobs]
        summary = RunSummary(self.out, keys)
        run_id = self.store.start_run(self.suite.name, self.suite.raw, str(self.device))
        status = "interrupted"
        bar = tqdm(total=len(keys), desc="jobs", disable=not self.progress, unit="job")
        try:
            for _session, jobs in plan:
                for job in jobs:
                    bar.set_postfix_str(f"{job.ids['scenario']} {job.ids['model']} {job.ids['explainer']} "
                                        f"{job.ids['clusterer']} {job.ids['metric']}".replace("  ", " "))
                    if self.store.is_done(job.key):
                        summary.skipped += 1
                    else:
                        self._execute(job, run_id, summary)
                    bar.update()
            status = "done" if not summary.failed else "failed"
        except KeyboardInterrupt:
            summary.interrupted = True
            self.log("interrupted: finished jobs are saved; run the same command again to resume")
        finally:
            bar.close()
            self.store.finish_run(run_id, status)
            summary.seconds = time.perf_counter() - t0
        return summary

    def _execute(self, job: Job, run_id: int, summary: RunSummary) -> None:
        t = time.perf_counter()
        try:
            rows = job.run()
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            err = "".join(traceback.format_exception(exc))
            self.store.record_job(job.key, run_id, {"kind": job.kind, **job.ids}, [],
                                  seconds=time.perf_counter() - t, error=err)
            summary.failed.append((job.ids, f"{type(exc).__name__}: {exc}"))
            self.log(f"FAILED {job.ids}: {type(exc).__name__}: {exc}")
            return
        self.store.record_job(job.key, run_id, {"kind": job.kind, **job.ids}, rows, seconds=time.perf_counter() - t)
        summary.done += 1
