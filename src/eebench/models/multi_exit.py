"""The multi-exit network: blocks run in order, a head after some of them; the head after the last block is
the backbone's own classifier. Some IC types (GPF, ``gpf.py``) make every IC's logits from all ICs' outputs: they
bring a ``merge`` module that turns the ICs' outputs into their logits.

Parameters fall in two groups (paper B §2): the backbone (blocks and the final classifier) and the ICs (every
other head, and the merge module); training phases select parts of them (eebench.training.regimes).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from eebench.models.backbones import BACKBONES
from eebench.models.heads import IC_TYPES, set_token_pool

@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model; stored in every checkpoint. ``input_shape`` is one sample's shape:
    (C, H, W) for images, (2, T) or (3, T) for token inputs (int64 rows: input ids, attention mask[, token type
    ids]; see ``backbones.bert``); lists (JSON) become tuples."""

    backbone: str
    backbone_params: dict[str, Any]
    input_shape: tuple[int, ...]
    num_classes: int
    ic: dict[str, Any] = field(default_factory=lambda: {"type": "linear"})
    placement: list[int] | None = None  # 0-based block indices with an IC; None = after every block
    truncate_at: int | None = None  # static baseline: keep blocks up to this 0-based block and only its head

    def plain(self) -> "ModelSpec":
        """The same network without ICs: blocks and the backbone's own classifier (what phase 1 trains)."""
        return ModelSpec(self.backbone, self.backbone_params, self.input_shape, self.num_classes,
                         ic={"type": "linear"}, placement=[])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelSpec":
        data = dict(data)
        data["input_shape"] = tuple(data["input_shape"])
        return cls(**data)


class MultiExitNet(nn.Module):
    """``merge``, if given, is called with the ICs' outputs in depth order and returns their logits and an
    auxiliary loss; after each forward ``auxiliary_loss`` holds that loss (None without a merge module), for
    the training loop to add. ``example_input`` is the backbone's ``Blocks.example_input`` (see
    :meth:`example_input`)."""

    def __init__(self, blocks: nn.ModuleList, heads: dict[int, nn.Module], merge: nn.Module | None = None,
                 example_input: Callable[[tuple[int, ...]], Tensor] | None = None) -> None:
        super().__init__()
        last = len(blocks) - 1
        if last not in heads:
            raise ValueError("a multi-exit network needs a head after its last block")
        self.blocks = blocks
        self.head_blocks: list[int] = sorted(heads)
        # ModuleDict keys must be strings; keyed by block index.
        self.heads = nn.ModuleDict({str(b): heads[b] for b in self.head_blocks})
        self.merge = merge
        self.auxiliary_loss: Tensor | None = None
        self._example_input = example_input

    @property
    def num_heads(self) -> int:
        return len(self.head_blocks)

    def example_input(self, input_shape: tuple[int, ...], device: torch.device | str | None = None) -> Tensor:
        """One valid input sample batch [1, *input_shape] (for cost counting): the backbone's own (integer token
        ids for BERT), else float zeros."""
        if self._example_input is None:
            return torch.zeros((1, *input_shape), device=device)
        return self._example_input(tuple(input_shape)).to(device)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Logits of every head, in depth order."""
        outputs = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if str(index) in self.heads:
                outputs.append(self.heads[str(index)](x))
        self.auxiliary_loss = None
        if self.merge is not None:
            outputs[:-1], self.auxiliary_loss = self.merge(outputs[:-1])
        return outputs


def _resolve_placement(num_blocks: int, placement: list[int] | None) -> list[int]:
    if placement is None:
        return list(range(num_blocks))
    bad = [b for b in placement if not 0 <= b < num_blocks]
    if bad:
        raise ValueError(f"placement: block indices {bad} out of range 0..{num_blocks - 1}")
    return sorted(set(placement) | {num_blocks - 1})


def ic_seed(seed: int, block: int) -> int:
    """Seed of the IC after ``block``: a function of the run's seed and the block alone."""
    return int(np.random.SeedSequence([seed, block]).generate_state(1)[0])


def build_model(spec: ModelSpec, seed: int | None = None) -> MultiExitNet:
    """Build the network of ``spec``. With ``seed``, its initial weights are a function of the seed and the
    spec, drawn from a private generator (the global RNG is left as it was): the blocks and the final
    classifier first, from ``seed`` (so what phase 1 trains starts the same whatever ICs a variant has), then
    each IC from ``ic_seed(seed, block)`` (so an IC starts the same whatever other ICs exist; a static head is
    initialised like the same head of the full network), then the merge module, if the IC type brings one
    (an IC builder with a ``build_merge`` attribute, e.g. ``gpf``), from ``ic_seed(seed, len(blocks))``.
    Every head's GlobalPool pools tokens as the backbone says (``Blocks.token_pool``: mean, or class token)."""
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        built = BACKBONES.get(spec.backbone)(spec.input_shape, **spec.backbone_params)
        blocks, widths, example_input = built.blocks, built.widths, built.example_input
        placement = _resolve_placement(len(blocks), spec.placement)
        final = len(blocks) - 1
        # The final classifier is linear, unless the backbone brings its own type (MSDNet: Blocks.final_head).
        final_type = getattr(built, "final_head", "linear")
        heads: dict[int, nn.Module] = {final: IC_TYPES.get(final_type)(widths[final], spec.num_classes)}
        ic_params = dict(spec.ic)
        ic_type = ic_params.pop("type")
        if final_type != "linear" and len(placement) > 1 and ic_type != final_type:
            raise ValueError(f"backbone {spec.backbone!r} takes only ICs of its own type {final_type!r}, "
                             f"not {ic_type!r}")
        ic_builder = IC_TYPES.get(ic_type)
        for b in placement[:-1]:
            if seed is not None:
                torch.manual_seed(ic_seed(seed, b))
            heads[b] = ic_builder(widths[b], spec.num_classes, **ic_params)
        build_merge = getattr(ic_builder, "build_merge", None)
        merge = None
        if build_merge is not None and len(placement) > 1:
            if seed is not None:
                torch.manual_seed(ic_seed(seed, len(blocks)))  # no block has this index
            merge = build_merge(len(placement) - 1, spec.num_classes, **ic_params)
    for head in heads.values():
        set_token_pool(head, built.token_pool)
    if spec.truncate_at is not None:
        # Static baseline (paper A §3): the blocks up to truncate_at and the head there as the sole classifier.
        b = spec.truncate_at
        if b not in heads:
            raise ValueError(f"truncate_at: block {b} has no head (heads after blocks {placement})")
        if merge is not None and b != final:
            raise ValueError(f"truncate_at: IC type {spec.ic['type']!r} has no static form (an IC's logits "
                             f"combine every IC's output through the merge module)")
        model = MultiExitNet(nn.ModuleList(list(blocks)[: b + 1]), {b: heads[b]}, example_input=example_input)
    else:
        model = MultiExitNet(blocks, heads, merge, example_input=example_input)
    # Exits that read only part of a block's output (MSDNet: the coarsest scale) leave parameters without
    # gradient under most losses; the loop tells DDP so.
    model.partial_exits = bool(getattr(built, "partial_exits", False))
    return model


def backbone_state(model: MultiExitNet) -> dict[str, Tensor]:
    """The state of the parameter group ``backbone`` (blocks and final classifier), by state-dict key."""
    final = f"heads.{len(model.blocks) - 1}."
    return {k: v for k, v in model.state_dict().items() if k.startswith("blocks.") or k.startswith(final)}


def head_blocks(spec: ModelSpec) -> list[int]:
    """Block index of every head, built on the meta device so that it costs nothing at DAG-build time."""
    with torch.device("meta"):
        return build_model(spec).head_blocks
