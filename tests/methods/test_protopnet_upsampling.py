"""ProtoPNet upsampling maps and the 95th-percentile prototype box."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hansbench.methods.explainers.protopnet_upsampling import ProtoPNetUpsampling, prototype_box

TARGET = torch.tensor([0, 1, 2, 1])


@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
def test_maps_are_upsampled_similarity_maps_of_the_class(mode, tiny_protopnet, tiny_images):
    maps = ProtoPNetUpsampling(mode=mode).explain(tiny_protopnet, tiny_images, TARGET)
    sim = tiny_protopnet.similarity_maps(tiny_images).detach()
    for b in range(4):  # reference loop over images and prototypes
        for v, j in enumerate(tiny_protopnet.prototypes_of(int(TARGET[b])).tolist()):
            ref = F.interpolate(sim[b : b + 1, j : j + 1], size=(16, 16), mode=mode, align_corners=False)[0, 0]
            torch.testing.assert_close(maps[b, v], ref)


def test_modes_differ_and_unknown_mode_fails(tiny_protopnet, tiny_images):
    cubic = ProtoPNetUpsampling().explain(tiny_protopnet, tiny_images, TARGET)
    linear = ProtoPNetUpsampling(mode="bilinear").explain(tiny_protopnet, tiny_images, TARGET)
    assert not torch.allclose(cubic, linear)
    with pytest.raises(ValueError, match="bicubic"):
        ProtoPNetUpsampling(mode="nearest")


def test_pruned_prototypes_give_zero_maps_at_the_end(tiny_protopnet, tiny_images):
    tiny_protopnet.prototype_mask[4] = 0  # class 1 keeps 3 and 5
    maps = ProtoPNetUpsampling().explain(tiny_protopnet, tiny_images, TARGET)
    sim = tiny_protopnet.similarity_maps(tiny_images).detach()
    assert maps[1, 2].abs().sum() == 0 and maps[0, 2].abs().sum() > 0
    ref = F.interpolate(sim[1:2, 5:6], size=(16, 16), mode="bicubic", align_corners=False)[0, 0]
    torch.testing.assert_close(maps[1, 1], ref)


def test_prototype_box_hand_case():
    heat = torch.zeros(10, 10)
    heat[2:4, 5:8] = 1.0  # 6 of 100 pixels: exactly those are >= the 95th percentile
    heat[7, 1] = 0.5
    assert prototype_box(heat).tolist() == [2, 4, 5, 8]
    assert prototype_box(heat, percentile=93).tolist() == [2, 8, 1, 8]  # now includes (7, 1)
    assert prototype_box(heat, percentile=90).tolist() == [0, 10, 0, 10]  # threshold 0: every pixel
    batch = torch.stack([heat, heat.flip(-1)]).expand(3, 2, 10, 10)
    boxes = prototype_box(batch)
    assert boxes.shape == (3, 2, 4) and boxes.dtype == torch.int64
    assert boxes[2, 1].tolist() == [2, 4, 2, 5]
