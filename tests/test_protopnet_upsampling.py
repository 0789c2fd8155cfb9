"""ProtoPNet upsampling maps and the 95th-percentile prototype box."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hansbench.methods.base import UnsupportedModelError
from hansbench.methods.explainers.protopnet_upsampling import ProtoPNetUpsampling, prototype_box
from hansbench.registry import explainers

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


# -- the contract ------------------------------------------------------------------------------


def test_contract(tiny_protopnet, tiny_images):
    explainer = explainers.get("protopnet-upsampling")()
    assert explainer.multiview
    maps = explainer.explain(tiny_protopnet, tiny_images, TARGET)
    assert maps.shape == (4, 3, 16, 16) and maps.dtype == torch.float32 and torch.isfinite(maps).all()
    assert torch.equal(maps, explainer.explain(tiny_protopnet, tiny_images, TARGET))
    single = torch.cat([explainer.explain(tiny_protopnet, tiny_images[i : i + 1], TARGET[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(maps, single, rtol=1e-5, atol=1e-5)


def test_wrong_model_kind_fails_before_work(tiny_classifier, tiny_images):
    tiny_classifier.register_forward_pre_hook(lambda *a: pytest.fail("work started before the model check"))
    with pytest.raises(UnsupportedModelError):
        explainers.get("protopnet-upsampling")().explain(tiny_classifier, tiny_images, TARGET)


def test_cpu_and_cuda_agree(tiny_protopnet, tiny_images):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    explainer = explainers.get("protopnet-upsampling")()
    cpu = explainer.explain(tiny_protopnet, tiny_images, TARGET)
    gpu = explainer.explain(tiny_protopnet.cuda(), tiny_images.cuda(), TARGET.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5)
