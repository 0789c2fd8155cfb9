"""``hansbench explain``: the maps of one image from every named method, from a finished run's cache.

Never trains: the models, explainers and their setup come from the results directory's cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hansbench.bench.engine.nodes import maps as maps_node
from hansbench.bench.report.escape import slug
from hansbench.bench.report.figures.image_maps import draw_image_maps
from hansbench.bench.report.figures.maps import class_name
from hansbench.bench.report.figures.styles import page_style, save


class ExplainError(RuntimeError):
    """What ``hansbench explain`` cannot do, in one line for the user."""


def _load_image(path: Path, size: int) -> torch.Tensor:
    from PIL import Image

    try:
        img = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    except OSError as exc:
        raise ExplainError(f"cannot read image {str(path)!r}: {exc}") from None
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def _explainer_nodes(suite, run, scenario: str | None, model: str | None, methods: list[str] | None,
                     seed: int | None) -> list:
    """The explainer nodes of one scenario and seed, planned from the run's record alone: for each model kind only
    its data -> model -> explainer chain (the whole graph is never planned)."""
    from hansbench.bench.engine.planner import Planner

    scenario = scenario or suite.scenarios[0].name
    sc = suite.scenario(scenario)
    if sc is None:
        raise ExplainError(f"scenario {scenario!r} is not in suite {suite.name!r} "
                           f"({', '.join(s.name for s in suite.scenarios)})")
    if model is not None and model not in suite.models:
        raise ExplainError(f"model kind {model!r} is not in suite {suite.name!r} ({', '.join(suite.models)})")
    seed = suite.seeds[0] if seed is None else seed
    planner = Planner(suite, torch.device(run.device or "cpu").type)
    data = planner.node("data", sc, seed)
    kinds = [k for k in suite.models if (model is None or k == model) and sc.runs_in("models", k)]
    nodes = [planner.node("explainer", planner.node("model", data, k), e) for k in kinds for e in planner.explainers_for(k)
             if sc.runs_in("explainers", e)]
    known = sorted({n.ids["explainer"] for n in nodes})
    if methods:
        unknown = [m for m in methods if m not in known]
        if unknown:
            raise ExplainError(f"method(s) {', '.join(unknown)} not in the run for {scenario}"
                               f"{' ' + model if model else ''}; known: {', '.join(known) or '(none)'}")
        nodes = [n for n in nodes if n.ids["explainer"] in methods]
    if not nodes:
        raise ExplainError(f"no explainer of suite {suite.name!r} applies to {scenario} {model or ''}".rstrip())
    return nodes


def explain_image(image: str, *, results: str | None = None, scenario: str | None = None, model: str | None = None,
                  methods: list[str] | None = None, out: str | None = None, seed: int | None = None,
                  split: str = "artifact_test") -> Path:
    """One figure of the maps of ``image`` (a file, or an index into ``split`` of the scenario) by every
    named method, from the cached models of the finished run in ``results``. Never trains."""
    from hansbench.bench.engine.device import resolve_device
    from hansbench.bench.engine.execute import EnvSpec, NodeEnv
    from hansbench.bench.engine.store import read_latest_run
    from hansbench.bench.suite.config import SuiteError

    results_dir = Path(results or "hansbench-out/quick")
    db = results_dir / "results.sqlite"
    if not db.is_file():
        raise ExplainError(f"no results store at {str(db)!r}; run `hansbench run --out {results_dir}` first "
                           "(or give --results DIR of a finished run)")
    run = read_latest_run(db)  # read only: explaining never writes the store
    if run is None:
        raise ExplainError(f"{str(db)!r} records no run; run `hansbench run --out {results_dir}` first")
    try:
        suite = run.run_config()  # the run's own resolved configuration, not re-validated
    except (SuiteError, ValueError, KeyError, TypeError) as exc:
        raise ExplainError(f"cannot read the run configuration of the latest run in {str(results_dir)!r}: {exc}; "
                           f"rerun it with this hansbench (`hansbench run --out {results_dir}`)") from None
    nodes = _explainer_nodes(suite, run, scenario, model, methods, seed)
    scenario, seed = nodes[0].ids["scenario"], nodes[0].ids["seed"]
    env = NodeEnv(EnvSpec(out=str(results_dir), device=str(resolve_device("auto"))))
    missing = [n.inputs["model"] for n in nodes if not env.ws.has("model", n.inputs["model"].key)]
    if missing:
        kinds = ", ".join(sorted({m.ids["model"] for m in missing}))
        raise ExplainError(f"no cached {kinds} model for {scenario} seed {seed} in {str(results_dir)!r}: run "
                           f"`hansbench run --suite {suite.name} --out {results_dir}` first (explain never trains)")
    data = env.output(nodes[0].inputs["model"].inputs["data"])
    mask = None
    if Path(image).is_file():
        x = _load_image(Path(image), data.train.images.shape[-1])
        label = Path(image).name
    else:
        try:
            i = int(image)
        except ValueError:
            raise ExplainError(f"{image!r} is neither an image file nor an index into {split}") from None
        s = data.split(split)
        if not 0 <= i < len(s):
            raise ExplainError(f"index {i} is outside {scenario}'s {split} (0..{len(s) - 1})")
        x, mask = s.images[i:i + 1], s.masks[i]
        label = f"{scenario} {split}[{i}]"
    maps, explained, predicted = _maps_by_model(env, nodes, data, split, image, x, mask is not None)
    target_out = Path(out or f"explain-{slug(Path(image).stem if Path(image).is_file() else image)}.png")
    target_out.parent.mkdir(parents=True, exist_ok=True)
    with page_style():
        fig = draw_image_maps(x[0], maps, explained_class=explained, predicted=predicted, mask=mask,
                              title=f"{label} (seed {seed}): maps by model kind and explainer")
        save(fig, target_out.parent, target_out.name)
    return target_out


def _maps_by_model(env, nodes, data, split: str, image: str, x: torch.Tensor, indexed: bool):
    """Per model kind: each explainer's map of ``x``, the class explained (the split's target for an indexed
    image, a backdoor's target included; else the model's prediction) and the model's prediction."""
    from hansbench.datasets.base import Split

    maps: dict[str, dict[str, torch.Tensor | None]] = {}
    explained: dict[str, str] = {}
    predicted: dict[str, str] = {}
    for n in nodes:
        kind = n.ids["model"]
        m = env.output(n.inputs["model"])
        with torch.no_grad():
            pred = m(m.normalize(x.to(env.device))).argmax(1).cpu()
        t = maps_node.targets(data, split, torch.tensor([int(image)])) if indexed else pred
        one = Split(x, t, t, torch.zeros(1, dtype=torch.bool), torch.zeros(1, *x.shape[-2:], dtype=torch.bool))
        maps.setdefault(kind, {})[n.ids["explainer"]] = maps_node.compute_maps(env, n, one, torch.arange(1), t)[0]
        explained[kind], predicted[kind] = class_name(data, int(t[0])), class_name(data, int(pred[0]))
    return maps, explained, predicted
