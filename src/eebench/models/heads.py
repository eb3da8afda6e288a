"""Internal-classifier (IC) registry. An IC pools a block's output and classifies it."""
from __future__ import annotations

from torch import Tensor, nn

from eebench.registry import Registry

IC_TYPES: Registry = Registry("ic")


class GlobalPool(nn.Module):
    """Average over spatial positions ([B, C, H, W]) or tokens ([B, T, D]); flat features pass through."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4:
            return x.mean(dim=(2, 3))
        if x.dim() == 3:
            return x.mean(dim=1)
        return x


@IC_TYPES.register("linear")
def linear_head(in_features: int, num_classes: int) -> nn.Module:
    return nn.Sequential(GlobalPool(), nn.Linear(in_features, num_classes))


@IC_TYPES.register("mlp")
def mlp_head(in_features: int, num_classes: int, hidden: list[int]) -> nn.Module:
    layers: list[nn.Module] = [GlobalPool()]
    for width in hidden:
        layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True)]
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)
