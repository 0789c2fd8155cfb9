"""The one way to run a model in eval mode for a while and give it back as it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the duration; every submodule's own ``training`` flag is restored on exit.

    Per submodule, not ``module.train(was_training)``: a model handed over partly frozen (BatchNorm
    kept in eval while the rest trains) must come back the same, even when the body raises.
    """
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, flag in flags:
            m.training = flag
