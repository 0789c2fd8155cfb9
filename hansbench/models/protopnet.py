"""ProtoPNet (Chen et al. 2019) as PAPERS.md section 2 fixes it.

backbone -> add-on (1x1 conv, ReLU, 1x1 conv, Sigmoid) -> latent z [B, D, h, w]
-> PrototypeLayer: similarity maps a_j = log((d_j + 1) / (d_j + eps)) [B, P, h, w]
-> global max-pool (winner takes all) -> scores s_j [B, P] -> last layer (no bias) -> logits.

Each stage is its own module so that LRP/PRP rules attach with hooks (zennit style)
instead of model surgery.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hansbench.models.classifier import ImageModel


def squared_distances(z: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """||z(h,w) - p_j||^2 as ||z||^2 - 2 z.p + ||p||^2, clamped at 0: ``[B, P, h, w]``.

    Always in float32, also under bf16 autocast (training): the expansion cancels, and bf16's 8-bit
    mantissa would leave the small distances that ``log_similarity`` magnifies (epsilon 1e-4) as noise.
    """
    with torch.autocast(device_type=z.device.type, enabled=False):
        z = z.float()
        z2 = (z * z).sum(dim=1, keepdim=True)
        zp = F.conv2d(z, prototypes)
        p2 = (prototypes * prototypes).sum(dim=(1, 2, 3)).view(1, -1, 1, 1)
        return F.relu(z2 - 2 * zp + p2)


def log_similarity(d: torch.Tensor, epsilon: float) -> torch.Tensor:
    """ProtoPNet's similarity ``log((d + 1) / (d + epsilon))`` of squared distances ``d``."""
    return torch.log((d + 1) / (d + epsilon))


class PrototypeLayer(nn.Module):
    """Latent map -> similarity map of every prototype; PRP's prototype rule attaches here."""

    def __init__(self, num_prototypes: int, dim: int, epsilon: float = 1e-4):
        super().__init__()
        self.prototypes = nn.Parameter(torch.rand(num_prototypes, dim, 1, 1))  # uniform [0, 1) [C]
        self.epsilon = epsilon

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """Squared distances of every latent patch to every prototype ``[B, P, h, w]``."""
        return squared_distances(z, self.prototypes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Similarity maps ``[B, P, h, w]``."""
        return log_similarity(self.distances(z), self.epsilon)


class ProtoPNet(ImageModel):
    """``forward`` takes normalised images and returns logits ``[B, K]``."""

    kind = "protopnet"
    has_prototypes = True

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        prototypes_per_class: int = 10,
        prototype_dim: int = 128,
        epsilon: float = 1e-4,
    ):
        super().__init__(backbone, num_classes, mean, std)
        c = backbone.out_channels
        self.add_on = nn.Sequential(
            nn.Conv2d(c, prototype_dim, 1), nn.ReLU(), nn.Conv2d(prototype_dim, prototype_dim, 1), nn.Sigmoid()
        )
        num_prototypes = num_classes * prototypes_per_class
        self.prototype_layer = PrototypeLayer(num_prototypes, prototype_dim, epsilon)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten()
        self.last_layer = nn.Linear(num_prototypes, num_classes, bias=False)
        identity = torch.zeros(num_prototypes, num_classes)
        identity[torch.arange(num_prototypes), torch.arange(num_prototypes) // prototypes_per_class] = 1
        self.register_buffer("prototype_class_identity", identity)  # [P, K] one-hot
        self.register_buffer("prototype_mask", torch.ones(num_prototypes))  # 0 = pruned
        # Push records: source image index in the push set and latent location (row, col); -1 = not pushed.
        self.register_buffer("push_image_index", torch.full((num_prototypes,), -1, dtype=torch.long))
        self.register_buffer("push_location", torch.full((num_prototypes, 2), -1, dtype=torch.long))
        self.prototypes_per_class = prototypes_per_class
        self.set_last_layer_incorrect_connection(-0.5)

    # -- construction helpers ------------------------------------------------
    def set_last_layer_incorrect_connection(self, incorrect: float = -0.5) -> None:
        """+1 to the own class, ``incorrect`` to the others [P]."""
        pos = self.prototype_class_identity.t()
        with torch.no_grad():
            self.last_layer.weight.copy_(pos + incorrect * (1 - pos))

    @property
    def prototypes(self) -> torch.Tensor:
        """The prototype vectors ``[P, D, 1, 1]``."""
        return self.prototype_layer.prototypes

    @property
    def num_prototypes(self) -> int:
        """P, pruned prototypes included."""
        return self.prototypes.shape[0]

    @property
    def epsilon(self) -> float:
        """The similarity's epsilon."""
        return self.prototype_layer.epsilon

    def prototypes_of(self, cls: int) -> torch.Tensor:
        """Indices of the (unpruned) prototypes of class ``cls``."""
        own = (self.prototype_class_identity[:, cls] > 0) & (self.prototype_mask > 0)
        return torch.nonzero(own).flatten()

    # -- forward pieces ------------------------------------------------------
    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """z = add_on(backbone(x)): ``[B, D, h, w]``."""
        return self.add_on(self.backbone(x))

    def similarity_maps(self, x: torch.Tensor) -> torch.Tensor:
        """a_j(h, w) for every prototype: ``[B, P, h, w]``."""
        return self.prototype_layer(self.latent(x))

    def min_distances(self, x: torch.Tensor) -> torch.Tensor:
        """Smallest squared distance of each prototype to any latent patch: ``[B, P]`` (training losses)."""
        d = self.prototype_layer.distances(self.latent(x))
        return -F.adaptive_max_pool2d(-d, 1).flatten(1)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Prototype similarity scores s_j (max over positions) ``[B, P]``; pruned prototypes score 0."""
        return self.flatten(self.pool(self.similarity_maps(x))) * self.prototype_mask

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations = prototype scores (activation clustering)."""
        return self.scores(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, K]`` of normalised images (last layer over the prototype scores)."""
        return self.last_layer(self.scores(x))

    def forward_with_min_distances(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and min distances from one pass (training)."""
        z = self.latent(x)
        d = self.prototype_layer.distances(z)
        min_d = -F.adaptive_max_pool2d(-d, 1).flatten(1)
        logits = self.last_layer(log_similarity(min_d, self.epsilon) * self.prototype_mask)
        return logits, min_d
