"""The Decoy patch (Ross et al. 2017): a size x size square of one grey level in a corner, nothing else changed."""

from __future__ import annotations

import pytest
import torch

from hansbench.datasets.artifacts import CORNERS
from hansbench.registry import artifacts


def stamp(n=64, size=28, seed=0, **options):
    images = torch.zeros(n, 3, size, size)
    return images, *artifacts.get("decoy")(**options).stamp(images, None, torch.Generator().manual_seed(seed))


def test_patch_is_a_square_of_the_level_and_the_mask_is_exactly_what_changed():
    images, stamped, masks = stamp(size=28, level=0.412)
    assert torch.equal(masks, (stamped != images).any(1))
    assert masks.sum((1, 2)).tolist() == [16] * len(masks)  # 4 x 4 pixels, each image
    assert torch.allclose(stamped[masks.unsqueeze(1).expand_as(stamped)], torch.tensor(0.412))


def test_random_corners_are_seeded_and_cover_all_four():
    _, a, ma = stamp(seed=1)
    _, b, mb = stamp(seed=1)
    _, _, mc = stamp(seed=2)
    assert torch.equal(a, b) and not torch.equal(ma, mc)
    corners = {(bool(m[0].any()), bool(m[:, 0].any())) for m in ma}  # (top row touched, left column touched)
    assert corners == {(True, True), (True, False), (False, True), (False, False)}


@pytest.mark.parametrize("corner", CORNERS)
def test_a_fixed_corner_with_margin(corner):
    _, _, masks = stamp(n=2, size=20, corner=corner, margin=1)
    ys, xs = torch.nonzero(masks[0], as_tuple=True)
    top = corner.startswith("top")
    left = corner.endswith("left")
    assert (ys.min().item() == 1) if top else (ys.max().item() == 18)
    assert (xs.min().item() == 1) if left else (xs.max().item() == 18)
    assert torch.equal(masks[0], masks[1])


def test_bad_options_and_a_patch_that_does_not_fit_are_refused():
    with pytest.raises(ValueError, match="corner"):
        artifacts.get("decoy")(corner="middle")
    with pytest.raises(ValueError, match="level"):
        artifacts.get("decoy")(level=1.5)
    with pytest.raises(ValueError, match="does not fit"):
        stamp(size=16, **{"margin": 14})
