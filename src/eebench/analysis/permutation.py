"""Permutation symmetries of a multi-exit network and weight matching (paper B §3.2, after Ainsworth et al.,
"Git Re-Basin: Merging Models modulo Permutation Symmetries", ICLR 2023, §3.2 and Algorithm 1).

Permuting the hidden units of a layer (a conv's output channels, with its BN's weight, bias, running mean and
running variance) and, consistently, the input axis of every layer that reads them leaves the network's function
unchanged. A *permutation spec* lists, for every permutation group, the axes it acts on: ``Axis(key, axis,
positions, inner)`` = the state-dict tensor ``key`` along ``axis``, at ``positions`` of that axis (a residual
stream padded with zero channels carries an earlier stage's permutation on part of its channels only), each
position a run of ``inner`` consecutive entries (SDN's IC flattens a [C, 4, 4] map: channel c owns 16 entries).

Specs are registries: ``PERMUTATION_SPECS`` by backbone (the blocks' own tensors, and which permutation acts on
each channel of each block's output), ``HEAD_SPECS`` by IC type (a head reads a block output, so its first
layer's input axis follows that block's output permutation; an MLP head's hidden units are groups of their own).
The final classifier is a ``linear`` head; its output (the classes) is never permuted.

Weight matching (Algorithm 1) finds Π* = argmin_Π ||Θ_A − ΠΘ_B||_F (paper B §3.2) by coordinate descent: for
each group in turn (a random order per pass), with every other group fixed, the best permutation is a linear
assignment (``scipy.optimize.linear_sum_assignment``) maximising Σ <W_A, P W_B> over the tensors it acts on;
passes repeat until none improves (or ``iterations`` passes). Which tensors enter the objective is the caller's
choice: the parameters Θ (paper B's Θ), not BN's running statistics (buffers, which only follow the permutation).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from eebench.registry import Registry

# A channel axis as permutation groups: (group name, the positions of that axis it permutes) per segment.
Stream = tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True)
class Axis:
    key: str
    axis: int
    positions: tuple[int, ...]
    inner: int = 1


@dataclass
class PermutationSpec:
    """``perm_to_axes``: group -> the axes it acts on; ``sizes``: group -> number of units it permutes."""

    perm_to_axes: dict[str, list[Axis]] = field(default_factory=lambda: defaultdict(list))
    sizes: dict[str, int] = field(default_factory=dict)

    def new(self, name: str, size: int) -> Stream:
        """A new group permuting ``size`` units; returns the stream of a channel axis it alone permutes."""
        if name in self.sizes:
            raise ValueError(f"permutation group {name!r} defined twice")
        self.sizes[name] = int(size)
        return ((name, tuple(range(size))),)

    def carry(self, key: str, axis: int, stream: Stream, inner: int = 1) -> None:
        """Axis ``axis`` of tensor ``key`` holds the channels of ``stream`` (each ``inner`` entries wide)."""
        for name, positions in stream:
            if len(positions) != self.sizes[name]:
                raise ValueError(f"permutation group {name!r} permutes {self.sizes[name]} units, but {key} axis "
                                 f"{axis} gives it {len(positions)}")
            self.perm_to_axes[name].append(Axis(key, axis, positions, inner))

    def batch_norm(self, prefix: str, stream: Stream) -> None:
        """A BatchNorm's weight, bias, running mean and running variance, all per channel."""
        for suffix in ("weight", "bias", "running_mean", "running_var"):
            self.carry(f"{prefix}.{suffix}", 0, stream)

    def keys(self) -> set[str]:
        return {axis.key for axes in self.perm_to_axes.values() for axis in axes}

    def axes_of(self, key: str) -> list[tuple[str, Axis]]:
        return [(name, axis) for name, axes in self.perm_to_axes.items() for axis in axes if axis.key == key]


def width(stream: Stream) -> int:
    return sum(len(positions) for _, positions in stream)


def padded(stream: Stream, before: int, after: int, spec: PermutationSpec, name: str) -> Stream:
    """The stream of a channel axis made of ``before`` new channels, ``stream``'s channels, ``after`` new
    channels (ResNet option A's zero-padding shortcut): the carried channels keep their groups (shifted), the
    new ones form group ``name`` (any permutation among them keeps the padding's zeros zero)."""
    n = width(stream)
    fresh = tuple(range(before)) + tuple(range(before + n, before + n + after))
    spec.new(name, len(fresh))
    return ((name, fresh), *((group, tuple(before + p for p in positions)) for group, positions in stream))


# --- Registries ---------------------------------------------------------------------------------------------

# backbone name -> (blocks, spec) -> the stream of each block's output; keys are the model's ("blocks.<i>....").
BackboneSpec = Callable[[nn.ModuleList, PermutationSpec], list[Stream]]
PERMUTATION_SPECS: Registry[BackboneSpec] = Registry("permutation spec")
# IC type -> (state-dict prefix of the head, the head module, stream of the block output it reads, spec).
HeadSpec = Callable[[str, nn.Module, Stream, PermutationSpec], None]
HEAD_SPECS: Registry[HeadSpec] = Registry("head permutation spec")


@PERMUTATION_SPECS.register("cnn")
def _cnn(blocks: nn.ModuleList, spec: PermutationSpec) -> list[Stream]:
    """Block i = conv-BN-ReLU: one group per block, its conv's output channels (and BN), the next conv's input."""
    streams: list[Stream] = []
    for i, block in enumerate(blocks):
        conv = block[0]
        stream = spec.new(f"block{i}", conv.out_channels)
        spec.carry(f"blocks.{i}.0.weight", 0, stream)
        if streams:
            spec.carry(f"blocks.{i}.0.weight", 1, streams[-1])
        spec.batch_norm(f"blocks.{i}.1", stream)
        streams.append(stream)
    return streams


@PERMUTATION_SPECS.register("resnet20")
def _resnet20(blocks: nn.ModuleList, spec: PermutationSpec) -> list[Stream]:
    """ResNet-20 (backbones.py): the residual stream has one permutation per stage, shared along the residual
    path (the stem, every block's conv2 + bn2 output, every conv1 input); each block's inner channels (conv1 +
    bn1 output, conv2 input) are a group of their own, as in Ainsworth et al.'s ``resnet20_permutation_spec``.

    Where the width changes, option A's shortcut subsamples and zero-pads (``_PadShortcut.pad`` channels in front
    and behind): the new stage's stream is the old stream's channels (same groups, shifted) between the padded
    channels, which form a new group; so a stage-3 channel may follow stage 1's, stage 2's or stage 3's group.
    Option B's 1x1 projection + BN makes a new stream with a group of its own (Ainsworth et al.'s
    ``shortcutblock``)."""
    from eebench.models.backbones import CifarBasicBlock, _PadShortcut

    stem = blocks[0][0]
    stream = spec.new("stage_stem", stem[0].out_channels)
    spec.carry("blocks.0.0.0.weight", 0, stream)
    spec.batch_norm("blocks.0.0.1", stream)
    streams: list[Stream] = []
    for i in range(len(blocks)):
        prefix, block = ("blocks.0.1", blocks[0][1]) if i == 0 else (f"blocks.{i}", blocks[i])
        if not isinstance(block, CifarBasicBlock):
            raise TypeError(f"resnet20 permutation spec: block {i} is a {type(block).__name__}, not a basic block")
        inner = spec.new(f"block{i}_inner", block.conv1.out_channels)
        spec.carry(f"{prefix}.conv1.weight", 1, stream)
        spec.carry(f"{prefix}.conv1.weight", 0, inner)
        spec.batch_norm(f"{prefix}.bn1", inner)
        spec.carry(f"{prefix}.conv2.weight", 1, inner)
        if isinstance(block.shortcut, _PadShortcut):
            stream = padded(stream, *block.shortcut.pad, spec, f"block{i}_padded")
        elif isinstance(block.shortcut, nn.Sequential):  # option B: conv 1x1 + BN
            projected = spec.new(f"block{i}_projected", block.shortcut[0].out_channels)
            spec.carry(f"{prefix}.shortcut.0.weight", 1, stream)
            spec.carry(f"{prefix}.shortcut.0.weight", 0, projected)
            spec.batch_norm(f"{prefix}.shortcut.1", projected)
            stream = projected
        spec.carry(f"{prefix}.conv2.weight", 0, stream)
        spec.batch_norm(f"{prefix}.bn2", stream)
        streams.append(stream)
    return streams


@HEAD_SPECS.register("linear")
def _linear_head(prefix: str, head: nn.Module, stream: Stream, spec: PermutationSpec) -> None:
    """GlobalPool + Linear: pooling is per channel, so the linear layer's input axis is the block's channels."""
    spec.carry(f"{prefix}.1.weight", 1, stream)


@HEAD_SPECS.register("mlp")
def _mlp_head(prefix: str, head: nn.Module, stream: Stream, spec: PermutationSpec) -> None:
    """GlobalPool, then Linear(-ReLU) layers: the first reads the block's channels, each hidden layer's units are
    a group (its weight's rows and bias, the next layer's input)."""
    linears = [(index, module) for index, module in enumerate(head) if isinstance(module, nn.Linear)]
    for (index, linear), following in zip(linears, [*linears[1:], None]):
        spec.carry(f"{prefix}.{index}.weight", 1, stream)
        if following is None:
            break
        stream = spec.new(f"{prefix}.hidden{index}", linear.out_features)
        spec.carry(f"{prefix}.{index}.weight", 0, stream)
        spec.carry(f"{prefix}.{index}.bias", 0, stream)


@HEAD_SPECS.register("sdn")
def _sdn_head(prefix: str, head: nn.Module, stream: Stream, spec: PermutationSpec) -> None:
    """SDN's IC: per-channel mixed pooling to pool_size x pool_size (one scalar alpha), flattened channel-major, so
    the linear input axis is the block's channels, each pool_size**2 entries wide."""
    spec.carry(f"{prefix}.linear.weight", 1, stream, inner=head.pool_size ** 2)


def require_permutation_spec(entry: Mapping[str, Any]) -> None:
    """Raise ValueError unless a resolved model entry's backbone and IC type have permutation specs (checked at
    DAG build for mode-connectivity figures)."""
    backbone, ic = entry["backbone"], entry["ic"]["type"]
    if backbone not in PERMUTATION_SPECS:
        raise ValueError(f"backbone {backbone!r} has no permutation spec for mode connectivity (weight matching "
                         f"permutes its units); specs exist for: {', '.join(PERMUTATION_SPECS.names())} "
                         f"(eebench.analysis.permutation.PERMUTATION_SPECS)")
    if entry.get("placement") != [] and ic not in HEAD_SPECS:
        raise ValueError(f"IC type {ic!r} has no permutation spec for mode connectivity; specs exist for: "
                         f"{', '.join(HEAD_SPECS.names())} (eebench.analysis.permutation.HEAD_SPECS)")


def permutation_spec(model: nn.Module, backbone: str, ic_type: str) -> PermutationSpec:
    """The spec of a built multi-exit network (``MultiExitNet``) of ``backbone`` with ICs of ``ic_type`` (its
    final classifier is ``linear``). Every tensor the spec names must be in the model's state dict."""
    if getattr(model, "merge", None) is not None:
        raise ValueError(f"IC type {ic_type!r} merges the ICs' outputs (a merge module): no permutation spec")
    require_permutation_spec({"backbone": backbone, "ic": {"type": ic_type},
                              "placement": None if len(model.head_blocks) > 1 else []})
    spec = PermutationSpec()
    streams = PERMUTATION_SPECS.get(backbone)(model.blocks, spec)
    last = len(model.blocks) - 1
    for block in model.head_blocks:
        kind = "linear" if block == last else ic_type
        HEAD_SPECS.get(kind)(f"heads.{block}", model.heads[str(block)], streams[block], spec)
    state = model.state_dict()
    unknown = sorted(spec.keys() - state.keys())
    if unknown:
        raise ValueError(f"permutation spec of backbone {backbone!r} names tensors the model lacks: {unknown[:3]}")
    for name, axes in spec.perm_to_axes.items():
        for axis in axes:
            if max(axis.positions, default=-1) * axis.inner >= state[axis.key].shape[axis.axis]:
                raise ValueError(f"permutation group {name!r}: {axis.key} axis {axis.axis} is shorter than its "
                                 f"positions")
    return spec


# --- Applying and finding permutations ---------------------------------------------------------------------


def _unflat(tensor: Tensor, axis: Axis) -> Tensor:
    if axis.inner == 1:
        return tensor
    size = tensor.shape[axis.axis]
    return tensor.unflatten(axis.axis, (size // axis.inner, axis.inner))


def permute_axis(tensor: Tensor, axis: Axis, perm: Tensor) -> Tensor:
    """``tensor`` with the units at ``axis.positions`` reordered: unit j takes unit perm[j]'s values (Ainsworth
    et al.'s ``jnp.take(w, perm, axis)`` on those positions)."""
    view = _unflat(tensor, axis)
    positions = torch.as_tensor(axis.positions, dtype=torch.long)
    out = view.clone()
    out.index_copy_(axis.axis, positions, view.index_select(axis.axis, positions[perm]))
    return out.flatten(axis.axis, axis.axis + 1) if axis.inner > 1 else out


def _units(tensor: Tensor, axis: Axis) -> Tensor:
    """The units ``axis`` permutes as rows: [n, everything else] (float64)."""
    view = _unflat(tensor, axis).index_select(axis.axis, torch.as_tensor(axis.positions, dtype=torch.long))
    return view.movedim(axis.axis, 0).reshape(len(axis.positions), -1).double()


def permuted(spec: PermutationSpec, perms: Mapping[str, Tensor], key: str, tensor: Tensor,
             skip: str | None = None) -> Tensor:
    for name, axis in spec.axes_of(key):
        if name != skip:
            tensor = permute_axis(tensor, axis, perms[name])
    return tensor


def apply_permutation(spec: PermutationSpec, perms: Mapping[str, Tensor], state: Mapping[str, Tensor]
                      ) -> dict[str, Tensor]:
    """ΠΘ: every tensor of ``state`` with the spec's permutations applied (the others unchanged)."""
    keys = spec.keys()
    return {key: permuted(spec, perms, key, value) if key in keys else value for key, value in state.items()}


def identity(spec: PermutationSpec) -> dict[str, Tensor]:
    return {name: torch.arange(size) for name, size in spec.sizes.items()}


def random_permutations(spec: PermutationSpec, seed: int) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randperm(size, generator=generator) for name, size in spec.sizes.items()}


def weight_matching(spec: PermutationSpec, state_a: Mapping[str, Tensor], state_b: Mapping[str, Tensor], *,
                    keys: Iterable[str] | None = None, iterations: int = 100, seed: int = 0) -> dict[str, Tensor]:
    """Π aligning ``state_b`` to ``state_a`` (Ainsworth et al., Algorithm 1): the permutations maximising
    Σ_k <A_k, (ΠB)_k> over the tensors ``keys`` (default: every tensor the spec names), i.e. minimising
    ||Θ_A − ΠΘ_B||_F. Starts from the identity; each pass visits the groups in an order drawn from
    (``seed``, pass) and stops after a pass without improvement, or after ``iterations`` passes."""
    from scipy.optimize import linear_sum_assignment

    matched = spec.keys() if keys is None else set(keys) & spec.keys()
    perms = identity(spec)
    names = list(spec.sizes)
    for iteration in range(iterations):
        progress = False
        for index in np.random.default_rng([seed, iteration]).permutation(len(names)):
            name = names[index]
            n = spec.sizes[name]
            cost = torch.zeros((n, n), dtype=torch.float64)
            for axis in spec.perm_to_axes[name]:
                if axis.key not in matched:
                    continue
                b = permuted(spec, perms, axis.key, state_b[axis.key], skip=name)
                cost += _units(state_a[axis.key], axis) @ _units(b, axis).T
            rows, columns = linear_sum_assignment(cost.numpy(), maximize=True)
            assert (rows == np.arange(n)).all()
            old = float(cost[torch.arange(n), perms[name]].sum())
            new = float(cost.numpy()[rows, columns].sum())
            progress = progress or new > old + 1e-12 * max(1.0, abs(old))
            perms[name] = torch.as_tensor(columns, dtype=torch.long)
        if not progress:
            break
    return perms


__all__ = ["Axis", "HEAD_SPECS", "PERMUTATION_SPECS", "PermutationSpec", "apply_permutation", "padded",
           "permutation_spec", "random_permutations", "require_permutation_spec", "weight_matching"]
