"""Artifacts: masks are exactly the pixels they change, placement, determinism, errors."""

from __future__ import annotations

import pytest
import torch

from hansbench.datasets.artifacts import CORNERS
from hansbench.datasets.scenarios import build_artifact
from hansbench.registry import UnknownNameError, artifacts

NAMES = ["postit", "watermark", "badnets", "blend"]


def _images(n: int = 6, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _boxes(n: int = 6, size: int = 32) -> torch.Tensor:
    """Different object boxes per image, so per-image placement is exercised."""
    x0 = torch.arange(n, dtype=torch.float32) % 4
    y0 = torch.arange(n, dtype=torch.float32) % 3 + 1
    return torch.stack([x0, y0, x0 + 16 + 2 * (torch.arange(n) % 3), y0 + 20 + torch.arange(n) % 5], 1)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_all_builtins_registered_with_docstrings():
    for name in NAMES:
        assert name in artifacts.names()
        assert artifacts.describe(name), f"{name} needs a docstring first line for `hansbench list`"


@pytest.mark.parametrize("name", NAMES)
def test_mask_is_exactly_the_changed_pixels(name):
    art = artifacts.get(name)()
    images = _images()
    stamped, masks = art.stamp(images, _boxes(), _gen())
    assert stamped.shape == images.shape and stamped.dtype == torch.float32
    assert masks.shape == (6, 32, 32) and masks.dtype == torch.bool
    assert stamped.min() >= 0 and stamped.max() <= 1
    if name == "blend":  # documented: changed by more than tol
        expected = ((stamped - images).abs() > art.tol).any(1)
    else:
        expected = (stamped != images).any(1)
    assert torch.equal(masks, expected)
    assert masks.flatten(1).any(1).all(), "every image must carry the artifact"
    assert not torch.equal(stamped, images)
    assert torch.equal(images, _images()), "stamp must not modify its input"


@pytest.mark.parametrize("name", ["postit", "badnets", "watermark"])
def test_mask_excludes_pixels_that_already_had_the_artifact_value(name):
    art = artifacts.get(name)()
    images = _images(2)
    first, _ = art.stamp(images, None, _gen())
    # stamp an image that already carries the artifact: nothing may change, so the mask is empty
    if name == "watermark":  # alpha blending keeps changing already-stamped pixels; use pure colour instead
        images = torch.ones_like(images)
        again, masks = art.stamp(images, None, _gen())
    else:
        again, masks = art.stamp(first, None, _gen())
    assert torch.equal(again, first if name != "watermark" else images)
    assert not masks.any()


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_generator_seed(name):
    art = artifacts.get(name)()
    a = art.stamp(_images(), _boxes(), _gen(3))
    b = art.stamp(_images(), _boxes(), _gen(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("name", NAMES)
def test_boxes_optional_and_shape_checked(name):
    art = artifacts.get(name)()
    _, masks = art.stamp(_images(3, 24), None, _gen())
    assert masks.shape == (3, 24, 24)
    with pytest.raises(ValueError, match="boxes"):
        art.stamp(_images(3), torch.zeros(2, 4), _gen())
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        art.stamp(torch.rand(3, 32, 32), None, _gen())


def test_postit_is_a_yellow_square_at_the_bottom_inside_the_box():
    art = artifacts.get("postit")()
    boxes = _boxes()
    stamped, masks = art.stamp(_images(), boxes, _gen())
    for i in range(len(boxes)):
        x0, y0, x1, y1 = boxes[i].tolist()
        ys, xs = torch.nonzero(masks[i], as_tuple=True)
        assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1, "post-it leaves the box"
        assert ys.min() >= y0 + 0.6 * (y1 - y0), "post-it must sit in the bottom part of the box"
        side_x, side_y = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
        assert side_x == side_y, "post-it must be square"
        assert abs(side_x - art.size * (x1 - x0)) <= 1 or side_x == art.min_px
        pix = stamped[i][:, masks[i]]
        assert torch.allclose(pix, torch.tensor(art.colour).view(3, 1).expand_as(pix))


def test_postit_jitter_uses_the_generator():
    art = artifacts.get("postit")(jitter=0.3)
    boxes = torch.tensor([[0.0, 0.0, 32.0, 32.0]]).expand(16, 4)
    _, m1 = art.stamp(_images(16), boxes, _gen(0))
    cols = torch.nonzero(m1.any(1))[:, 1]
    assert len(set(cols.tolist())) > 8, "horizontal jitter should move the square between images"
    still = artifacts.get("postit")(jitter=0.0).stamp(_images(16), boxes, _gen(0))[1]
    assert (still == still[0]).all(), "without jitter every image gets the same square"


@pytest.mark.parametrize("corner", CORNERS)
def test_badnets_and_watermark_sit_in_their_corner(corner):
    for name in ("badnets", "watermark"):
        _, masks = artifacts.get(name)(corner=corner).stamp(_images(2, 48), None, _gen())
        ys, xs = torch.nonzero(masks[0], as_tuple=True)
        top, left = corner.startswith("top"), corner.endswith("left")
        assert (ys.float().mean() < 24) == top and (xs.float().mean() < 24) == left, (name, corner)


def test_badnets_is_a_checkerboard():
    art = artifacts.get("badnets")(size=0.2, margin=0)
    stamped, masks = art.stamp(torch.full((1, 3, 30, 30), 0.5), None, _gen())
    patch = stamped[0, 0][masks[0]].view(6, 6)
    assert set(patch.unique().tolist()) == {0.0, 1.0}
    assert patch[0, 0] != patch[0, 2] and patch[0, 0] != patch[2, 0] and patch[0, 0] == patch[2, 2]


def test_watermark_is_semi_transparent():
    art = artifacts.get("watermark")(alpha=0.5)
    images = torch.zeros(1, 3, 64, 64)
    stamped, masks = art.stamp(images, None, _gen())
    assert stamped[0][:, masks[0]].max() <= 0.5 + 1e-6, "alpha 0.5 over black never exceeds 0.5"
    assert masks.float().mean() < 0.1, "a watermark covers a small part of the image"


def test_blend_pattern_is_fixed_and_seeded():
    art = artifacts.get("blend")(alpha=0.2)
    images = _images()
    stamped, _ = art.stamp(images, None, _gen(0))
    trigger = (stamped - 0.8 * images) / 0.2
    assert torch.allclose(trigger, trigger[:1].expand_as(trigger), atol=1e-5), "the same pattern on every image"
    other = artifacts.get("blend")(alpha=0.2, seed=1).stamp(images, None, _gen(0))[0]
    assert not torch.allclose(other, stamped)


def test_unknown_artifact_and_option_errors_name_the_known_ones():
    with pytest.raises(UnknownNameError, match="postit"):
        artifacts.get("postet")
    with pytest.raises(TypeError, match=r"sise: unknown option; artifact 'postit' accepts \[.*'size'.*size=0\.18"):
        build_artifact("postit", {"sise": 0.2})
    with pytest.raises(ValueError, match="corner"):
        artifacts.get("badnets")(corner="middle")
    with pytest.raises(ValueError, match="cannot be drawn"):
        artifacts.get("watermark")(text="©")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name):
    art = artifacts.get(name)()
    cpu = art.stamp(_images(), _boxes(), _gen(1))
    gpu = art.stamp(_images().cuda(), _boxes().cuda(), _gen(1))
    assert torch.allclose(cpu[0], gpu[0].cpu(), atol=1e-6)
    assert (cpu[1] != gpu[1].cpu()).float().mean() < 1e-3
