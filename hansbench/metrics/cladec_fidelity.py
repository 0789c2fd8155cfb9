"""ClaDec's fidelity test (Schneider & Vlachos, Sec. 5; PAPERS.md section 6).

How much of the class evidence the classifier's layer keeps, seen through its decoder: two
fresh evaluation classifiers, seed-matched, are trained on ClaDec's and on the reference
auto-encoder's (RefAE) reconstructions of the training images and tested on the same
reconstructions of the clean test images. ``delta-acc = Acc(ClaDec) - Acc(RefAE)``: near 0
means the decoder's images carry the class information a plain auto-encoder keeps. The
ClaDec/RefAE pair is trained here with the explainer's recipe (``train_cladec``), so the
metric needs no explainer object (metrics never import methods).
"""

from __future__ import annotations

import json
from typing import Any

import torch

from hansbench.metrics.base import EvalContext, Metric
from hansbench.models import cladec  # the module, so tests can replace its functions
from hansbench.models.backbones import build_backbone
from hansbench.models.classifier import Classifier
from hansbench.registry import metrics


@metrics.register("cladec-fidelity")
class ClaDecFidelity(Metric):
    """ClaDec fidelity: accuracy of classifiers trained on ClaDec vs RefAE reconstructions (delta in points)."""

    level = "model"
    model_kinds = ("classifier",)
    values = {
        "delta-acc": ("accuracy points", True),
        "acc-cladec": ("%", True),
        "acc-refae": ("%", True),
        "recon-loss-cladec": ("mse", False),
        "recon-loss-refae": ("mse", False),
    }

    def __init__(self, *, decoder_epochs: int = 2, eval_epochs: int = 3, lr: float = 1e-3, alpha: float = 1e-3,
                 layer: str | None = None, max_train_images: int | None = 600, eval_widths: tuple = (8, 16),
                 **options: Any):
        super().__init__(**options)
        for name, v in (("decoder_epochs", decoder_epochs), ("eval_epochs", eval_epochs)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if max_train_images is not None and max_train_images < 2:
            raise ValueError(f"max_train_images must be >= 2 or None, got {max_train_images!r}")
        self.decoder_epochs, self.eval_epochs, self.lr, self.alpha = decoder_epochs, eval_epochs, float(lr), alpha
        self.layer, self.max_train_images, self.eval_widths = layer, max_train_images, tuple(eval_widths)

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Train ClaDec and RefAE, then classifiers on their reconstructions; rows of the accuracies and losses."""

        data, model = ctx.data, ctx.model
        train, test = data.train, data.clean_test
        n = len(train) if self.max_train_images is None else min(len(train), self.max_train_images)
        idx = torch.randperm(len(train), generator=ctx.generator(0xC1A))[:n].sort().values
        images, labels = train.images[idx], train.labels[idx]
        pair = cladec.train_cladec(model, images.to(ctx.device), labels.to(ctx.device), layer=self.layer,
                            epochs=self.decoder_epochs, lr=self.lr, alpha=self.alpha, seed=ctx.seed)

        def factory():
            return Classifier(build_backbone("small-resnet", widths=self.eval_widths), data.num_classes,
                              data.mean, data.std)

        norm = model.normalize
        res = cladec.cladec_fidelity(pair, model, factory, (norm(images.to(ctx.device)), labels),
                              (norm(test.images.to(ctx.device)), test.labels), epochs=self.eval_epochs,
                              seed=ctx.seed)
        detail = json.dumps({"n_train": int(n), "n_test": len(test), "decoder_epochs": self.decoder_epochs,
                             "eval_epochs": self.eval_epochs})
        return [
            self.row("delta-acc", 100 * res["delta_acc"], split="clean_test", detail=detail),
            self.row("acc-cladec", 100 * res["acc_cladec"], split="clean_test", detail=detail),
            self.row("acc-refae", 100 * res["acc_refae"], split="clean_test", detail=detail),
            self.row("recon-loss-cladec", res["recon_loss_cladec"], split="clean_test", detail=detail),
            self.row("recon-loss-refae", res["recon_loss_refae"], split="clean_test", detail=detail),
        ]
