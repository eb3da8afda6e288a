"""The multi-exit network: blocks run in order, a head after some of them; the head after the last block is
the backbone's own classifier.

Parameters fall in two groups (paper B §2): ``backbone`` (blocks and the final classifier) and ``ics``
(every other head). Training phases name these groups.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from eebench.models.backbones import BACKBONES
from eebench.models.heads import IC_TYPES

PARAMETER_GROUPS = ("backbone", "ics")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model; stored in every checkpoint."""

    backbone: str
    backbone_params: dict[str, Any]
    input_shape: tuple[int, ...]
    num_classes: int
    ic: dict[str, Any] = field(default_factory=lambda: {"type": "linear"})
    placement: list[int] | None = None  # 0-based block indices with an IC; None = after every block
    truncate_at: int | None = None  # static baseline: keep blocks up to this block and only its head

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelSpec":
        data = dict(data)
        data["input_shape"] = tuple(data["input_shape"])
        return cls(**data)


class MultiExitNet(nn.Module):
    def __init__(self, blocks: nn.ModuleList, heads: dict[int, nn.Module]) -> None:
        super().__init__()
        last = len(blocks) - 1
        if last not in heads:
            raise ValueError("a multi-exit network needs a head after its last block")
        self.blocks = blocks
        self.head_blocks: list[int] = sorted(heads)
        # ModuleDict keys must be strings; keyed by block index.
        self.heads = nn.ModuleDict({str(b): heads[b] for b in self.head_blocks})

    @property
    def num_heads(self) -> int:
        return len(self.head_blocks)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Logits of every head, in depth order."""
        outputs = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if str(index) in self.heads:
                outputs.append(self.heads[str(index)](x))
        return outputs

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        final = str(len(self.blocks) - 1)
        backbone = list(self.blocks.parameters()) + list(self.heads[final].parameters())
        ics = [p for key, head in self.heads.items() if key != final for p in head.parameters()]
        return {"backbone": backbone, "ics": ics}

    def group_modules(self) -> dict[str, list[nn.Module]]:
        final = str(len(self.blocks) - 1)
        return {
            "backbone": [self.blocks, self.heads[final]],
            "ics": [head for key, head in self.heads.items() if key != final],
        }


def _resolve_placement(num_blocks: int, placement: list[int] | None) -> list[int]:
    if placement is None:
        return list(range(num_blocks))
    bad = [b for b in placement if not 0 <= b < num_blocks]
    if bad:
        raise ValueError(f"placement: block indices {bad} out of range 0..{num_blocks - 1}")
    return sorted(set(placement) | {num_blocks - 1})


def build_model(spec: ModelSpec) -> MultiExitNet:
    built = BACKBONES.get(spec.backbone)(spec.input_shape, **spec.backbone_params)
    blocks, widths = built.blocks, built.widths
    placement = _resolve_placement(len(blocks), spec.placement)
    ic_params = dict(spec.ic)
    ic_builder = IC_TYPES.get(ic_params.pop("type"))
    final = len(blocks) - 1
    heads: dict[int, nn.Module] = {}
    for b in placement:
        if b == final:
            heads[b] = IC_TYPES.get("linear")(widths[b], spec.num_classes)
        else:
            heads[b] = ic_builder(widths[b], spec.num_classes, **ic_params)
    if spec.truncate_at is not None:
        # Static baseline (paper A §3): only the blocks head h needs, and head h as the sole classifier.
        b = placement[spec.truncate_at]
        return MultiExitNet(nn.ModuleList(list(blocks)[: b + 1]), {b: heads[b]})
    return MultiExitNet(blocks, heads)


def head_blocks(spec: ModelSpec) -> list[int]:
    """Block index of every head, built on the meta device so that it costs nothing at DAG-build time."""
    with torch.device("meta"):
        return build_model(spec).head_blocks
