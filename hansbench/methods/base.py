"""The contracts a plugin author implements: Explainer and Clusterer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin
from torch import nn

# Names of built-in input kinds (hansbench.methods.inputs, registry ``clusterer_inputs``) for ``Clusterer.input``.
ACTIVATIONS = "activations"  # penultimate activations (and the rows' explainer column of their clusterings)
MAPS = "maps"  # explanation maps (the runner pairs the kind with every explainer)


class UnsupportedModelError(TypeError):
    """An explainer was asked to explain a model kind it does not support."""


class Explainer:
    """Maps a batch to signed relevance at input resolution.

    ``explain(model, x, target) -> [B, V, H, W]`` float32, colour channels summed,
    ``x`` in the model's normalised input space. ``V = 1`` unless ``multiview``.
    Configure once (``__init__`` keyword options from the suite), call many times.
    ``setup`` is called once per trained model before ``explain`` for methods that need
    auxiliary training (ClaDec decoders) or statistics (CRP concept sets).

    Parameters
    ----------
    **options
        The suite's ``[explainers.<name>]`` keys. A subclass declares them as keyword arguments of
        its ``__init__`` with defaults and stores each under its own name (:attr:`options` hashes
        them into cache keys); the base class takes none.

    Raises
    ------
    TypeError
        An option the explainer does not take (suite validation reports it before any work).

    Attributes
    ----------
    name : str
        The registered name (set by ``@explainers.register``).
    model_kinds : tuple of str
        The model kinds it explains; others raise :class:`UnsupportedModelError` before any forward.
    multiview : bool
        Whether ``explain`` returns ``V > 1`` maps per image.
    views : str
        What the views are: ``"single"``, ``"prototypes"`` or ``"concepts"`` (derived from
        ``multiview`` when not set).
    version : str
        Bump when the maps change: it invalidates cached maps.

    Examples
    --------
    >>> import torch
    >>> from hansbench.methods.base import Explainer
    >>> class Gradient(Explainer):
    ...     model_kinds = ("classifier",)
    ...     def explain(self, model, x, target):
    ...         self.check_model(model)
    ...         x = x.detach().requires_grad_(True)
    ...         score = model(x).gather(1, target[:, None]).sum()
    ...         (grad,) = torch.autograd.grad(score, x)
    ...         return grad.sum(1, keepdim=True)  # [B, 1, H, W]

    Register it with ``@explainers.register("gradient")`` (docs/plugins.md).
    """

    name: ClassVar[str] = ""
    model_kinds: ClassVar[tuple[str, ...]] = ("classifier",)
    multiview: ClassVar[bool] = False
    # What the V views are: "single" (V = 1), "prototypes" (view v = prototype v of the explained
    # class, in ``model.prototypes_of(target)`` order) or "concepts" (e.g. CRP channels).
    views: ClassVar[str] = ""
    version: ClassVar[str] = "1"  # bump when the maps change: invalidates cached maps

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("views"):
            cls.views = "concepts" if cls.multiview else "single"

    def expected_views(self, model: nn.Module) -> int | None:
        """The number of views ``explain`` must return for ``model`` (``None``: not declared).

        Parameters
        ----------
        model : nn.Module
            The model to be explained (``prototypes_per_class`` is read for prototype views).

        Returns
        -------
        int or None
            1 for single-view explainers, the prototypes per class for ``views = "prototypes"``,
            ``None`` where the count is the explainer's own (concepts); the runner's checks use it.
        """
        if self.views == "single":
            return 1
        if self.views == "prototypes" and hasattr(model, "prototypes_per_class"):
            return int(model.prototypes_per_class)
        return None

    def __init__(self, **options: Any):
        if options:
            raise TypeError(f"explainer {self.name!r} takes no options, got {sorted(options)}")

    @property
    def options(self) -> dict[str, Any]:
        """Everything that determines the maps (hashed into cache keys); fitted ``x_`` state excluded."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and not k.endswith("_")}

    def check_model(self, model: nn.Module) -> None:
        """Refuse a model of a kind not in :attr:`model_kinds`; call it first in ``setup`` and ``explain``.

        Parameters
        ----------
        model : nn.Module
            A model carrying its registered kind as ``model.kind``.

        Raises
        ------
        UnsupportedModelError
            ``model.kind`` is not one this explainer explains.
        """
        kind = getattr(model, "kind", None)
        if kind not in self.model_kinds:
            raise UnsupportedModelError(
                f"explainer {self.name!r} explains {', '.join(self.model_kinds)} models, not {kind!r}"
            )

    def setup(self, model: nn.Module, data: Any, workspace: Any) -> None:
        """Optional one-off preparation per model (default: nothing).

        Parameters
        ----------
        model : nn.Module
            The trained model, in eval mode; leave its weights and BatchNorm statistics unchanged.
        data : ScenarioData
            The scenario *without* ground truth (``ScenarioData.without_ground_truth``): training
            images and labels, never the poisoned flags or artifact masks.
        workspace : Workspace or None
            The run's cache (:class:`hansbench.bench.engine.workspace.Workspace`), for auxiliary models
            (``workspace.cached_module``); ``None`` outside a run.

        Raises
        ------
        UnsupportedModelError
            A model of a kind the explainer does not support (call :meth:`check_model`).
        """

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Signed relevance maps of ``x`` for the classes ``target``.

        Parameters
        ----------
        model : nn.Module
            The model to explain, in eval mode; must be left as it was (eval mode, state dict,
            ``requires_grad`` flags, no ``.grad``).
        x : torch.Tensor
            ``[B, C, H, W]`` images in the model's normalised input space, on the model's device.
        target : torch.Tensor
            ``[B]`` int64 class indices to explain (the scenario's poisoning chose them).

        Returns
        -------
        torch.Tensor
            ``[B, V, H, W]`` float32 on ``x``'s device, colour channels summed; ``V`` is
            :meth:`expected_views` where declared. Deterministic, and batched equal to per sample
            (``tests/methods/test_explainer_contract.py`` checks every registered explainer).

        Raises
        ------
        UnsupportedModelError
            Before any forward, when ``model.kind`` is not in :attr:`model_kinds`.
        """
        raise NotImplementedError


@dataclass
class ClusteringResult:
    """Labels of one clustering plus the cluster flagged as the artifact without labels.

    ``scores``: an optional per-sample suspicion score, higher = more suspicious (oriented so the
    flagged cluster scores high), one finite float per clustered sample; ``None`` when the method
    has none. It is what threshold-free metrics (AUROC, AUPRC) rank by.
    """

    labels: np.ndarray  # [N] int
    flagged: int  # the cluster flagged without looking at ground truth
    info: dict = field(default_factory=dict)  # e.g. {"eigengap_k": 3}
    scores: np.ndarray | None = None  # [N] float, higher = more suspicious

    @property
    def flagged_mask(self) -> np.ndarray:
        """``[N]`` bool: the samples in the flagged cluster."""
        return self.labels == self.flagged


def flag_cluster(labels: np.ndarray, rule: str = "smaller") -> int:
    """The cluster flagged as artifact without labels. Rules: ``smaller`` (default), ``larger``."""
    ids, counts = np.unique(labels, return_counts=True)
    if rule == "smaller":
        return int(ids[np.argmin(counts)])
    if rule == "larger":
        return int(ids[np.argmax(counts)])
    raise ValueError(f"unknown flag rule {rule!r}; use 'smaller' or 'larger'")


class Clusterer(ClusterMixin, BaseEstimator):
    """A scikit-learn estimator: parameters in ``__init__``, work in ``fit`` / ``fit_predict``.

    ``fit_predict(views)`` takes ``[N, V, D]`` (each view's map flattened) and returns
    ``[N]`` labels; afterwards ``labels_`` holds them and ``result_`` a :class:`ClusteringResult`.
    ``fit(views)`` does the same and returns ``self``. A subclass implements either one.
    ``input`` names the registered input kind the runner feeds (:mod:`hansbench.methods.inputs`):
    ``"maps"`` (explanations, per explainer; a single-view maps clusterer also runs on ``"pixels"``,
    the raw-image control), ``"activations"`` (penultimate activations, ``V = 1``), ``"pixels"``, or
    a plugin's kind.

    A clusterer may give every sample a suspicion score: ``result_.scores`` ``[N]`` float, higher =
    more suspicious, oriented so the flagged cluster scores high (e.g. SpRAy's distance to the clean
    centroid minus the distance to the flagged one); ``None`` if it has none. Threshold-free metrics
    (``cluster-detection``'s ``auroc`` / ``auprc``) use it.

    Every ``__init__`` parameter must be stored unchanged under its own name (scikit-learn's
    ``get_params`` reads them back by introspecting ``__init__``), so ``sklearn.base.clone``,
    ``get_params`` / ``set_params`` and grid searches work; validate in ``fit``, not ``__init__``.

    Parameters
    ----------
    n_clusters : int, default 2
        The number of clusters.
    random_state : int, default 0
        Seed of every random choice: the same value gives the same labels.
    flag_rule : {"smaller", "larger"}, default "smaller"
        Which cluster is flagged as the artifact without labels (:func:`flag_cluster`).

    Attributes
    ----------
    labels_ : np.ndarray
        ``[N]`` int labels of the last fit.
    result_ : ClusteringResult
        Labels, the flagged cluster, JSON-safe ``info`` diagnostics and optional ``scores``.
    input, multiview, pixels_control, version
        Class attributes: the input kind, whether the views are clustered jointly, whether the
        raw-pixel control also runs it, and the version that enters cache keys.
    detects_by : {"clusters", "scores", "set"}
        Class attribute: what the result is, so the flagging rules that apply to it are chosen
        (:mod:`hansbench.methods.flagging`, PAPERS.md §9). ``"clusters"`` (default): a partition, read
        by the cluster rules (smaller cluster, relative size, silhouette, exclusionary reclassification);
        ``"scores"``: a score detector whose ``result_.scores`` rank suspicion, read by the budget rules;
        ``"set"``: the labels already are the detector's verdict (label ``result_.flagged`` = flagged, possibly
        no sample), read by ``own-flag``.

    Examples
    --------
    >>> from hansbench.registry import clusterers
    >>> from hansbench.testing import planted_views
    >>> views, groups = planted_views(n=60, seed=0)
    >>> est = clusterers.get("spray")(n_clusters=2, random_state=0)
    >>> est.fit_predict(views).shape
    (60,)
    >>> est.result_.flagged in (0, 1)
    True

    A plugin usually subclasses :class:`hansbench.methods.clusterers._base.BaseClusterer` and
    implements ``_fit``, which gets the input checks and the all-identical shortcut for free.
    """

    name: ClassVar[str] = ""
    input: ClassVar[str] = MAPS
    version: ClassVar[str] = "1"
    # Clusters the V views jointly (Co-Reg, WMSC, MCGC, SiMVC/CoMVC); False: one vector per sample (SpRAy).
    multiview: ClassVar[bool] = False
    # A single-view maps clusterer also runs on "pixels" (the raw-image control); False where the
    # method's distance needs heatmaps (e.g. Wasserstein SpRAy's mass distributions on a square grid).
    pixels_control: ClassVar[bool] = True
    # What the result is, for the flagging rules: "clusters" (a partition), "scores" (a score detector's ranking)
    # or "set" (the labels are the detector's own flagged set); see the class docstring.
    detects_by: ClassVar[str] = "clusters"

    def __init__(self, n_clusters: int = 2, random_state: int = 0, flag_rule: str = "smaller"):
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.flag_rule = flag_rule

    def fit(self, views: np.ndarray, y: Any = None) -> Clusterer:
        """Cluster ``views``; sets ``labels_`` and ``result_``. ``y`` is ignored (scikit-learn API).

        Parameters
        ----------
        views : np.ndarray
            ``[N, V, D]`` float64 (each view's map flattened), or a list of ``[N, D_v]`` arrays.
        y : ignored

        Returns
        -------
        Clusterer
            ``self``, fitted.

        Raises
        ------
        NotImplementedError
            The subclass implements neither ``fit`` nor ``fit_predict``.
        """
        if type(self).fit_predict is Clusterer.fit_predict:
            raise NotImplementedError(f"{type(self).__name__} must implement fit or fit_predict")
        self.fit_predict(views)
        return self

    def fit_predict(self, views: np.ndarray, y: Any = None) -> np.ndarray:
        """Cluster ``views`` and return the ``[N]`` labels. ``y`` is ignored (scikit-learn API).

        Parameters
        ----------
        views : np.ndarray
            ``[N, V, D]`` float64, or a list of ``[N, D_v]`` arrays.
        y : ignored

        Returns
        -------
        np.ndarray
            ``[N]`` int labels in ``0..n_clusters-1``; ``labels_`` and ``result_`` are set.
        """
        if type(self).fit is Clusterer.fit:
            raise NotImplementedError(f"{type(self).__name__} must implement fit or fit_predict")
        return self.fit(views).labels_
