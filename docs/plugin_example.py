# my_method/__init__.py
import torch

from hansbench.methods.base import Explainer
from hansbench.models.modes import eval_mode
from hansbench.registry import explainers


def register():
    @explainers.register("my-method")
    class MyMethod(Explainer):
        """Gradient times input, scaled (a plugin's example)."""

        model_kinds = ("classifier", "protopnet")   # what it can explain
        multiview = False                            # True: one map per view, [B, V, H, W]
        version = "1"                                # bump to invalidate cached maps

        def __init__(self, strength: float = 1.0):   # options come from the suite's table
            self.strength = strength

        def explain(self, model, x, target):         # x normalised [B, C, H, W]; target [B]
            self.check_model(model)                  # an unsupported model kind fails before any work
            x = x.detach().requires_grad_(True)
            with eval_mode(model):                   # BatchNorm on running statistics; mode restored after
                logits = model(x).gather(1, target[:, None]).sum()
                (grad,) = torch.autograd.grad(logits, x)   # the input's gradient only: no .grad on parameters
            return (self.strength * grad * x).sum(1, keepdim=True).detach()   # [B, 1, H, W] float32
