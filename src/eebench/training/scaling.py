"""Loss and gradient scaling of the heads (paper B §4.4, Tables 5 and 19): the alpha_k of eq. (2) and (3).

Each entry gives the weight of every head's loss at an epoch and whether gradient equilibrium rescales the
backbone's gradients. Scaling applies to a loss that sums several heads (eq. 2, 3); a single-head loss (eq. 1,
a branch-wise step) is left as it is, so phase 1 is the same run whatever scaling a variant uses.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Annotated, Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from eebench.declare import Param, declared_parameters, entry_description
from eebench.registry import Registry
from eebench.training.hooks import PhaseHook, Step


@dataclass(frozen=True)
class HeadLayout:
    head_blocks: tuple[int, ...]  # 0-based block of each head; the last head is the final classifier
    num_blocks: int

    @property
    def depth(self) -> np.ndarray:
        """Each head's relative depth in (0, 1]: the fraction of the blocks it sees."""
        return (np.asarray(self.head_blocks, dtype=np.float64) + 1) / self.num_blocks


@dataclass(frozen=True)
class LossScaling:
    weights: Callable[[HeadLayout, int, int], np.ndarray]  # (layout, epoch from 1, max_epochs) -> alpha per head
    gradient_equilibrium: bool = False


# Each entry returns the scaling of its keyword-only parameters (the config's {type: name, ...parameters}); its
# docstring's first paragraph describes it in the schema (loss_scaling_schema).
SCALINGS: Registry = Registry("loss scaling")


def _constant(layout: HeadLayout, epoch: int, max_epochs: int) -> np.ndarray:
    return np.ones(len(layout.head_blocks))


def _increasing(layout: HeadLayout, epoch: int, max_epochs: int) -> np.ndarray:
    # Han et al. (2022) via paper B §4.4: coefficients growing along the depth; alpha_k = k / K (the final
    # head 1). Paper B gives no formula; the reading is listed in the README.
    k = np.arange(1, len(layout.head_blocks) + 1)
    return k / len(k)


def _decreasing(layout: HeadLayout, epoch: int, max_epochs: int) -> np.ndarray:
    return _increasing(layout, epoch, max_epochs)[::-1].copy()


def sdn_weights(ramp_epochs: int) -> Callable[[HeadLayout, int, int], np.ndarray]:
    """SDN (Kaya et al., 2019, §4 "training"; their code's sdn_train): IC k's weight grows linearly each epoch,
    tau_k = min(C_k, 0.01 + epoch * C_k / E), to C_k = the IC's relative position in the network (0.15, ...,
    0.9 there); the final classifier keeps weight 1. We take C_k = the fraction of the blocks the head sees, and
    E = ``ramp_epochs``, always explicit: SDN's E is its fixed epoch count, and ours stop early, so the epoch
    cap (``max_epochs``, a bound for time, 3000 at paper scale) would make another schedule (IC 14 of the
    Tiny-ImageNet ResNet-50 at 0.17 of its 0.94 when disjoint converges, epoch 523)."""
    if isinstance(ramp_epochs, bool) or not isinstance(ramp_epochs, int) or ramp_epochs < 1:
        raise ValueError(f"loss scaling 'sdn': ramp_epochs must be an integer >= 1 (the epochs over which the IC "
                         f"weights ramp up, SDN's training length), got {ramp_epochs!r}")

    def weights(layout: HeadLayout, epoch: int, max_epochs: int) -> np.ndarray:
        target = layout.depth
        tau = np.minimum(target, 0.01 + epoch * target / ramp_epochs)
        tau[-1] = 1.0
        return tau
    return weights


@SCALINGS.register("constant")
def constant() -> LossScaling:
    """1 for every head."""
    return LossScaling(_constant)


@SCALINGS.register("increasing")
def increasing() -> LossScaling:
    """k/K for head k of K (the final head 1): coefficients growing along the depth (Han et al., 2022, via paper
    B §4.4)."""
    return LossScaling(_increasing)


@SCALINGS.register("decreasing")
def decreasing() -> LossScaling:
    """(K-k+1)/K for head k of K: the increasing weights reversed."""
    return LossScaling(_decreasing)


@SCALINGS.register("sdn")
def sdn(*, ramp_epochs: Annotated[int, Param(
        "Epochs over which the IC weights ramp up (SDN's training length).", ge=1)]) -> LossScaling:
    """SDN's schedule (Kaya et al., 2019): the IC weights ramp each epoch from 0.01 to the head's relative depth
    over ramp_epochs, which sdn requires (SDN ramps over its fixed training length and ours stops early, so the
    max_epochs cap would be another schedule); the final head 1."""
    return LossScaling(sdn_weights(ramp_epochs))


@SCALINGS.register("gradient_equilibrium")
def gradient_equilibrium() -> LossScaling:
    """Constant weights, backbone gradients averaged (Li et al., 2019; see GradientEquilibrium)."""
    return LossScaling(_constant, gradient_equilibrium=True)


def scaling_name(settings: dict[str, Any] | str | None) -> str:
    """The registered name a ``training.loss_scaling`` setting names (unset: constant)."""
    if settings is None:
        return "constant"
    return settings if isinstance(settings, str) else settings["type"]


# The loss scalings GPF's authors' head weights (training.gpf_loss_weights: authors) stand in for: theirs replace
# constant weights, and are increasing weights normalised.
GPF_AUTHORS_SCALINGS = ("constant", "increasing")


def loss_scaling(settings: dict[str, Any] | str | None) -> LossScaling:
    """The scaling of a ``training.loss_scaling`` setting: a name, or {type: name, ...its parameters}."""
    if settings is None:
        return SCALINGS.get("constant")()
    if isinstance(settings, str):
        return loss_scaling({"type": settings})
    params = dict(settings)
    name = params.pop("type")
    factory = SCALINGS.get(name)
    try:
        inspect.signature(factory).bind(**params)
    except TypeError as error:  # a missing or unknown parameter: say which scaling and what it takes
        accepted = ", ".join(inspect.signature(factory).parameters) or "none"
        raise ValueError(f"loss scaling {name!r}: {error} (its parameters: {accepted})") from None
    return factory(**params)


class _Rescale(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``scale``."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.scale, None


def _rescaled(x, scale: float):
    """``x`` with its gradient scaled; a multi-scale feature (MSDNet: a list of tensors) scale by scale."""
    if isinstance(x, (list, tuple)):
        return type(x)(_Rescale.apply(t, scale) for t in x)
    return _Rescale.apply(x, scale)


class GradientEquilibrium(PhaseHook):
    """Li et al. (2019), §3.2, as their code (IMTA) places it: at the block output where head j sits, the
    backbone feature passes ``R(1 / c_j)`` before both the head and the next block, and the next block's input
    passes ``R(c_{j+1})``, where R scales the gradient only and c_j counts the heads from j on whose losses are
    summed. The backbone gradient there becomes the average (g_j + c_{j+1} * g_later) / c_j, instead of a sum
    that grows with the number of later heads; the heads' own gradients are untouched. With every head counted
    c_j = K - j, their code's 1/(K - j) and (K - j - 1). Works by forward hooks on the blocks, so no network
    needs to know about it; ``set_heads`` picks the counted heads before each step, ``None`` switches it off
    (as a training loop's hook: the step's loss set, where it has several heads)."""

    def __init__(self, blocks: nn.ModuleList, head_blocks: list[int]) -> None:
        self.head_blocks = list(head_blocks)
        self.scales: dict[int, tuple[float, float]] = {}  # block -> (scale at its output, at the next input)
        self.handles = []
        for j, block in enumerate(self.head_blocks):
            self.handles.append(blocks[block].register_forward_hook(self._output_hook(block)))
            if block + 1 < len(blocks):
                self.handles.append(blocks[block + 1].register_forward_pre_hook(self._input_hook(block)))

    def set_heads(self, loss_heads: list[int] | None) -> None:
        self.scales = {}
        if loss_heads is None:
            return
        counted = set(loss_heads)
        for j, block in enumerate(self.head_blocks):
            here = sum(1 for h in counted if h >= j)
            later = sum(1 for h in counted if h > j)
            self.scales[block] = (1.0 / here if here else 1.0, float(later) if here else 1.0)

    def before_forward(self, phase: Any, step: Step) -> None:
        # Eq. (2)/(3) weights only; a single loss (eq. 1) is never scaled.
        self.set_heads(list(step.heads) if len(step.heads) > 1 else None)

    def _output_hook(self, block: int):
        def hook(module, inputs, output):
            if block in self.scales and torch.is_grad_enabled():
                return _rescaled(output, self.scales[block][0])
            return None
        return hook

    def _input_hook(self, block: int):
        def hook(module, inputs):
            if block in self.scales and torch.is_grad_enabled():
                return (_rescaled(inputs[0], self.scales[block][1]), *inputs[1:])
            return None
        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def close(self) -> None:
        self.remove()


def loss_scaling_schema() -> dict[str, Any]:
    """The config schema's ``$defs/loss_scaling``, generated from SCALINGS: a name (of a scaling whose parameters
    all have defaults) or {type: name, ...its parameters}, each type's object checked against that type's
    declared parameters."""
    names = SCALINGS.names()
    bare = [name for name in names if not _required(name)]
    types = []
    for name in names:
        entry = SCALINGS.parameters_schema(name, extra={"type": {"const": name}})
        entry["required"] = ["type", *entry.get("required", [])]
        types.append({"if": {"properties": {"type": {"const": name}}}, "then": entry})
    return {
        "description": "Weights alpha_k of the heads' losses in eq. (2)/(3) (paper B §4.4, Tables 5 and 19): a name, "
                       "or {type: name, ...parameters}. A loss of one head (eq. 1) is never scaled, so phase 1 is "
                       "shared across scalings. " + " ".join(
                           f"{name}: {entry_description(SCALINGS.get(name))}" for name in names),
        "default": "constant",
        "oneOf": [
            {"enum": bare},
            {"type": "object", "required": ["type"], "properties": {"type": {"enum": names}}, "allOf": types},
        ],
    }


def _required(name: str) -> list[str]:
    return [parameter.name for parameter in declared_parameters(SCALINGS.declared(name)).values()
            if parameter.default is inspect.Parameter.empty]
