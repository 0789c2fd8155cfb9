"""eval_mode: the one way to evaluate a model for a while and hand it back exactly as it came."""

from __future__ import annotations

import pytest
from torch import nn

from hansbench.models.modes import eval_mode


def _partly_frozen() -> nn.Module:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Sequential(nn.BatchNorm2d(4)))
    model.train()
    model[1].eval()  # a frozen BatchNorm inside a training model
    return model


def test_every_flag_is_restored_not_just_the_root():
    model = _partly_frozen()
    before = [m.training for m in model.modules()]
    with eval_mode(model) as inside:
        assert inside is model and not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == before  # model.train(was_training) would unfreeze model[1]


def test_flags_are_restored_when_the_body_raises():
    model = _partly_frozen()
    before = [m.training for m in model.modules()]
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        raise RuntimeError("boom")
    assert [m.training for m in model.modules()] == before
