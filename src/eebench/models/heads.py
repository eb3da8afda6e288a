"""Internal-classifier (IC) registry. An IC pools a block's output and classifies it."""
from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from eebench.declare import Param, PresetDefault, Unset
from eebench.registry import Registry

# An IC type's keyword-only parameters are a model entry's ``ic`` keys beside ``type`` (eebench.declare); gpf.py
# and msdnet.py register there.
IC_TYPES: Registry = Registry("ic", providers=("eebench.models.gpf", "eebench.models.msdnet"))


class GlobalPool(nn.Module):
    """Average over spatial positions ([B, C, H, W]); tokens ([B, T, D]) are averaged (``tokens="mean"``) or
    represented by token 0 (``tokens="cls"``: ViT's class token, BERT's [CLS]); flat features pass through.

    Every head pools through a GlobalPool submodule; ``build_model`` sets ``tokens`` on all of them to the
    backbone's ``Blocks.token_pool`` (:func:`set_token_pool`), so IC builders need not know the backbone."""

    def __init__(self, tokens: str = "mean") -> None:
        super().__init__()
        self.tokens = tokens

    @property
    def tokens(self) -> str:
        return self._tokens

    @tokens.setter
    def tokens(self, mode: str) -> None:
        if mode not in ("mean", "cls"):
            raise ValueError(f"GlobalPool: tokens must be 'mean' or 'cls', got {mode!r}")
        self._tokens = mode

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4:
            return x.mean(dim=(2, 3))
        if x.dim() == 3:
            return x[:, 0] if self._tokens == "cls" else x.mean(dim=1)
        return x

    def extra_repr(self) -> str:
        return f"tokens={self._tokens}"


def set_token_pool(module: nn.Module, tokens: str) -> None:
    """Make every GlobalPool inside ``module`` pool tokens by ``tokens`` ("mean" or "cls")."""
    for sub in module.modules():
        if isinstance(sub, GlobalPool):
            sub.tokens = tokens


@IC_TYPES.register("linear")
def linear_head(in_features: int, num_classes: int) -> nn.Module:
    """Global average pool + linear layer."""
    return nn.Sequential(GlobalPool(), nn.Linear(in_features, num_classes))


# Activations between an mlp IC's layers. Paper B's code puts GELU between the layers of its multi-layer ViT and
# Swin heads (architectures/early_exits/heads.py:126, 159, 199, 234: F.gelu, exact erf form); ours is ReLU.
MLP_ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "gelu": nn.GELU}


@IC_TYPES.register("mlp")
def mlp_head(in_features: int, num_classes: int, *,
             hidden: Annotated[list[Annotated[int, Param("A hidden layer's width.", ge=1)]], Param(
                 "Hidden widths, one Linear + activation each.", min_length=1)],
             activation: Annotated[Literal[tuple(MLP_ACTIVATIONS)], PresetDefault(), Param(
                 "Activation after each hidden layer; when omitted, the fidelity preset's (paper: relu, ours; "
                 "authors_code: gelu, paper B's code, whose multi-layer ViT/Swin heads apply F.gelu between "
                 "layers, architectures/early_exits/heads.py:126, 159).")] = "relu",
             pool_size: Annotated[int | None, Unset(), Param(
                 "Side of the pooled map: when given, SDN's pooling to pool_size x pool_size before the hidden "
                 "layers (an SDN IC with hidden layers); when omitted (or null), the global average pool.",
                 ge=1)] = None) -> nn.Module:
    """Pool (global average, or SDN's with pool_size) + hidden layers + linear.

    Pool, then a Linear + ``activation`` (relu | gelu) per ``hidden`` width, then a linear classifier. The
    pool is the global average, or with ``pool_size`` SDN's mixed pooling to ``pool_size`` x ``pool_size``: then
    the first layer is an :class:`SDNHead` to the first hidden width, so the IC is SDN's with hidden layers
    (the larger IC beside an ``sdn`` reference, as paper B §4.5 adds layers to its reference IC)."""
    if activation not in MLP_ACTIVATIONS:
        raise ValueError(f"mlp: activation must be one of {', '.join(MLP_ACTIVATIONS)}, got {activation!r}")
    if not hidden:
        raise ValueError("mlp: hidden must name at least one width (no hidden layer is `linear` or `sdn`)")
    # Without pool_size the layers (and their state-dict keys) are those of the global-pool mlp IC as always.
    first = ([GlobalPool(), nn.Linear(in_features, hidden[0])] if pool_size is None
             else [SDNHead(in_features, hidden[0], pool_size=pool_size)])
    layers: list[nn.Module] = [*first, MLP_ACTIVATIONS[activation]()]
    for width_in, width in zip(hidden, hidden[1:]):
        layers += [nn.Linear(width_in, width), MLP_ACTIVATIONS[activation]()]
    layers.append(nn.Linear(hidden[-1], num_classes))
    return nn.Sequential(*layers)


# --- SDN internal classifier ------------------------------------------------------------------------------------
# Shallow-Deep Networks (Kaya et al., 2019, "Shallow-Deep Networks: Understanding and Mitigating Network
# Overthinking", ICML). Original: yigitcankaya/Shallow-Deep-Networks, aux_funcs.py (feature_reduction_formula,
# InternalClassifier): alpha * MaxPool + (1 - alpha) * AvgPool, alpha = nn.Parameter(torch.rand(1)) with no sigmoid
# or clamping, a pooling kernel of floor(S / 4) so that an S x S map shrinks to about 4 x 4, then flatten and one
# nn.Linear. Paper B's code (kamadforge/early-exit-benchmark, architectures/early_exits/heads.py: SDNPool and
# conv_head_class((), (), ()), registered as "pooled_head", the head of its ResNet SDN runs) swaps the fixed kernel
# for adaptive pooling to exactly pool_size x pool_size (default 4); this is what we do, so the head needs only the
# channel count. Both agree when H and W are multiples of pool_size (e.g. 32, 16, 8, 4 for pool_size 4).


class SDNPool(nn.Module):
    """SDN's mixed pooling: ``alpha * adaptive_max(x) + (1 - alpha) * adaptive_avg(x)`` to ``size`` x ``size``.

    ``alpha`` is one trainable scalar drawn from U[0, 1) as in SDN. Adaptive pooling gives every output cell a
    bin of at least one input position, so a map smaller than ``size`` (the original SDN skips pooling below
    4 x 4) is upsampled by repetition: bins of H < size rows are rows floor(i*H/size) .. ceil((i+1)*H/size) - 1,
    e.g. H=2 -> {0},{0},{1},{1} and H=3 -> {0},{0,1},{1,2},{2} for size 4. Where a bin holds a single position,
    max = avg and alpha has no effect (a 1 x 1 map is just repeated)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.alpha = nn.Parameter(torch.rand(1))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] == (self.size, self.size):
            # Every bin is one position, where adaptive pooling copies x (max = avg = x) at 1-3 ms a step on the
            # CPU: the same numbers and gradients without it (a third of the default CNN's epoch, issue 22).
            return self.alpha * x + (1 - self.alpha) * x
        return (self.alpha * F.adaptive_max_pool2d(x, self.size)
                + (1 - self.alpha) * F.adaptive_avg_pool2d(x, self.size))


class SDNHead(nn.Module):
    """SDN's IC: :class:`SDNPool` to ``pool_size`` x ``pool_size``, flatten (channel-major, as ``Tensor.flatten``),
    ``nn.Linear(in_features * pool_size**2, num_classes)``.

    Inputs without a spatial grid ([B, T, D] tokens, [B, D] features) fall back to ``linear``'s behaviour: the
    pooled token v (the mean token; token 0 on ``token_pool="cls"`` backbones) is taken as a 1 x 1 map. Pooling
    it just repeats it (alpha * v + (1 - alpha) * v = v), so the head computes ``F.linear(v, W_eff, bias)`` with
    ``W_eff`` the sum over the pool_size**2 positions of the linear weight: the same function as a 1 x 1 map
    through the 4-D path, at ``linear``'s cost (D * num_classes multiply-adds), though with pool_size**2 times its
    weights; set ``pool_size: 1`` on token backbones to have exactly ``linear`` plus the (then inert) alpha.
    alpha stays in the graph, with zero gradient, so DDP does not see an unused parameter."""

    def __init__(self, in_features: int, num_classes: int, pool_size: int = 4) -> None:
        super().__init__()
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"sdn: pool_size must be an integer >= 1, got {pool_size!r}")
        self.in_features = in_features
        self.pool_size = pool_size
        # Built in the order of paper B's code (pooling, then the linear layer), so alpha is the first draw.
        self.pool = SDNPool(pool_size)
        self.linear = nn.Linear(in_features * pool_size * pool_size, num_classes)
        self.token_pool = GlobalPool()  # no parameters: [B, T, D] / [B, D] inputs (mean or class token)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4:
            return self.linear(self.pool(x).flatten(1))
        x = self.token_pool(x)
        x = self.pool.alpha * x + (1 - self.pool.alpha) * x
        weight = self.linear.weight.view(-1, self.in_features, self.pool_size * self.pool_size).sum(dim=-1)
        return F.linear(x, weight, self.linear.bias)


@IC_TYPES.register("sdn")
def sdn_head(in_features: int, num_classes: int, *, pool_size: Annotated[int, Unset(), Param(
        "Side of the pooled map; 4 when omitted (SDN, paper B); 1 = global mixed pooling (token backbones).",
        ge=1)] = 4) -> nn.Module:
    """SDN's IC (Kaya et al., 2019; paper B §4.1 and its released code's pooled_head): alpha*max + (1-alpha)*avg
    adaptive pooling to pool_size x pool_size (alpha trainable, U[0,1) init), flatten, linear layer.

    As in paper B's code (:class:`SDNHead`); ``in_features`` = channels."""
    return SDNHead(in_features, num_classes, pool_size=pool_size)


def ic_schema() -> dict[str, Any]:
    """The config schema's ``$defs/ic`` (a model entry's ``ic``), generated from the IC types' declarations
    (eebench.declare): ``type`` names a registered IC type, and the keys beside it are that type's own keyword-only
    parameters, one ``if``/``then`` per type (so a key of another type is an unknown key).

    The ``ic`` mapping is kept as written: it is part of a run's identity (so of which runs exist) and of the
    captions (eebench.config.describe_model), and the fidelity preset fills keys it leaves unset. So no IC
    parameter has a schema default, which the workflow's schema check would fill in: each is ``Unset`` (its
    description says what omitting it means) or preset-filled."""
    from eebench.declare import entry_description

    types = IC_TYPES.names()
    return {
        "type": "object",
        "description": "Internal-classifier type (registry name) and its parameters; the final classifier is linear, "
                       "except on backbones that bring their own (msdnet).",
        "required": ["type"],
        "properties": {"type": {"enum": types, "description": "; ".join(
            f"{name} = {entry_description(IC_TYPES.get(name)).rstrip('.')}" for name in types)}},
        "allOf": [{"if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                   "then": IC_TYPES.parameters_schema(name, extra={"type": {"const": name}})}
                  for name in types],
    }
