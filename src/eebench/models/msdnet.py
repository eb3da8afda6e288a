"""MSDNet (Huang et al., 2018, "Multi-Scale Dense Networks for Resource Efficient Image Classification", ICLR),
CIFAR variant, as a backbone whose blocks are MSDNet's own blocks (one exit each) and an IC type ``msdnet`` that is
MSDNet's own classifier. Paper B §4.1 ("we explore MSDNet, an architecture dedicated for multi-exit models") and
App. E.2 ("We use CIFAR variant of MSDNet with 7 blocks").

References, cited below as [torch] and [lua]; both build the same network:
  [torch] kalviny/MSDNet-PyTorch @ f654595 (the PyTorch code the MSDNet authors link), models/msdnet.py; the
          CIFAR-100 anytime command of its README: --nBlocks 7 --stepmode even --step 2 --base 4 --nChannels 16,
          the rest args.py defaults: --growthRate 6 --grFactor 1-2-4 --bnFactor 1-2-4 --prune max
          --reduction 0.5 --bottleneck True; main.py: nScales = len(grFactor).
  [lua]   gaohuang/MSDNet @ 0589d17, models/JointTrainContainer.lua, models/MSDNet_Layer.lua, models/msdnet.lua,
          opts.lua (CIFAR: nScales 3, nChannels 16, growthRate 6, reduction 0.5, prune max, bottleneck true).
Paper B's released code (kamadforge/early-exit-benchmark @ 52ff524, all 4 commits) has no MSDNet: nothing to
follow there beyond "7 blocks" and the positions of App. E.2 (see the mapping below).

The network. Features live at S = len(growth_factor) scales, finest first, scale s with (unit channels) *
growth_factor[s] channels ("unit channels" grows by growth_rate per layer and is cut by transitions). The first
layer ([torch] MSDNFirstLayer, CIFAR branch) is a 3x3/1 conv-BN-ReLU to channels*growth_factor[0], then one 3x3/2
conv-BN-ReLU per further scale. Every later layer ([torch] MSDNLayer) adds growth_rate*growth_factor[s] channels
to each scale it outputs, by concatenation (dense connectivity): scale s gets a 3x3/1 conv of scale s and, for
s > 0, half of them from a 3x3/2 conv of scale s-1 ([torch] ConvNormal / ConvDownNormal); each conv is preceded
by a 1x1 bottleneck to min(in, bottleneck_factor[s] * out) channels ([torch] ConvBN). With prune "max" the
finest scale is dropped at evenly spaced layers; after such a layer a transition ([torch] _build_transition:
1x1 conv-BN-ReLU per scale) shrinks the unit channels to floor(reduction * channels). Block b holds ``base``
layers (b = 0, after the first layer) or ``step`` layers (``even``) / step*b + 1 layers (``lin_grow``). All
convolutions are bias-free ([torch] bias=False; [lua] ConvInit drops the bias).

MSDNet's classifier k ([torch] _build_classifier_cifar / ClassifierModule, [lua] build_classifier_cifar) reads
only the coarsest scale of block k: two 3x3/2 conv-BN-ReLU to 128 channels, 2x2 average pooling, linear. On
32x32 inputs the coarsest map is 8x8 -> 4x4 -> 2x2, so the 2x2 pooling is a global average; we average globally,
which is that on 32x32 inputs and also works on other sizes (where the fixed 2x2 pool would not).

Initialisation as [lua] models/msdnet.lua (ConvInit, BNInit) and [torch] _init_weights: conv weights
N(0, sqrt(2 / (k*k*out_channels))), batch norm weight 1 and bias 0, linear biases 0 (linear weights keep the
default U(-1/sqrt(in), 1/sqrt(in)), which is Torch7's nn.Linear default too). ([torch] calls _init_weights on
whole blocks and ClassifierModules, which are neither Conv2d nor BatchNorm2d nor Linear, so in effect its
weights stay at PyTorch's defaults; we follow the evident intent, i.e. [lua].)

How the multi-scale state travels. A block takes the previous block's output (block 0: the image) and returns
a :class:`Scales`, a ``list`` of the live scale tensors, finest first, coarsest last; the next block takes that
list. MultiExitNet.forward and flops.head_costs only call ``block(x)`` and ``head(x)``, so a list flows through
them unchanged. The IC type ``msdnet`` reads ``x[-1]``; other IC types (linear, mlp, sdn, gpf) expect a tensor
and fail on the list with a message naming ``msdnet``. ``widths[k]`` is the channel count of block k's coarsest
scale, what the classifier there reads.

The final classifier. A linear head (global pool + linear) cannot read a list, and MSDNet's last exit is its
own classifier too: :func:`msdnet` returns :class:`MSDNetBlocks`, Blocks plus ``final_head = "msdnet"``, which
build_model reads (``IC_TYPES.get(getattr(built, "final_head", "linear"))(widths[final], num_classes)``), so
the final classifier is built with the IC type's defaults (128 channels), whatever ``ic`` params the ICs get.

Paper B App. E.2, "Exit heads are placed at positions {0, 1, ..., 17}", mapped onto the 7 blocks. In paper B's
code a position is the index of a yield of the backbone's ``forward_generator`` (architectures/resnets.py: one
per residual block, so ResNet-34's E.1 positions {2, 4, ..., 14} index its 16 residual blocks; architectures/
vit.py: one per encoder layer, E.3 ViT-T {0..6}); SDN (architectures/early_exits/sdn.py) puts an IC at each
listed yield and the backbone's own classifier after the last. Paper B's MSDNet is not in that code, so its
yields are unknown; 18 positions cannot be 7 blocks. The default CIFAR MSDNet (7 blocks, base 4, step 2: 16
layers; prune max, interval ceil(16/3) = 6, so the finest scale goes at layers 7 and 13, each followed by a
transition) is, module by module as [torch]/[lua] put them in each block's nn.Sequential:

    module  0       1   2   3   4  | 5   6  | 7   8   9  | 10  11 | 12  13 | 14  15  16 | 17  18
    layer   first   L1  L2  L3  L4 | L5  L6 | L7  T   L8 | L9  L10| L11 L12| L13 T   L14| L15 L16
    block   0                      | 1      | 2          | 3      | 4      | 5          | 6
    scales  3       3   3   3   3  | 3   3  | 2   2   2  | 2   2  | 2   2  | 1   1   1  | 1   1

19 modules; MSDNet's 7 classifiers sit after modules 4, 6, 9, 11, 13, 16, 18 (the ends of the blocks). A
forward_generator yielding after every module has yields 0..18, and {0..17} is then every yield but the last, the
final classifier being after the last, just as E.1 leaves out ResNet-34's last residual block 15: 18 ICs plus
the final classifier. (Without a yield for the first layer there are 18 yields, 0..17, and MSDNet's exits
are 3, 5, 8, 10, 12, 15, 17.) Either way {0..17} puts an IC after (almost) every layer, not only MSDNet's 7.
``granularity: block`` (default) gives the 7 blocks above (our block k = MSDNet's block k, exits 0..6 =
placement null); ``granularity: layer`` makes every module its own block (19 blocks for the defaults), where
placement [0, ..., 17] is the first reading of E.2 and MSDNet's own exits are blocks [4, 6, 9, 11, 13, 16].
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from torch import Tensor, nn

from eebench.declare import Param, Unset
from eebench.models.backbones import BACKBONES, Blocks, PositiveInt
from eebench.models.heads import IC_TYPES


class Scales(list):
    """A block's output: the live scale tensors, finest first, coarsest last."""

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"{name!r}: an msdnet block outputs a list of {len(self)} scale tensors (finest first), not a tensor; "
            f"heads on it must be of IC type 'msdnet' (reads the coarsest scale), and code that handles block "
            f"outputs (hooks) must map over the scales")


@dataclass
class MSDNetBlocks(Blocks):
    final_head: str = "msdnet"  # the IC type of MSDNet's own final classifier, for build_model
    partial_exits: bool = True  # an exit reads the coarsest scale only: finer-scale convolutions get no gradient


def _init(module: nn.Module) -> None:
    """[lua] ConvInit/BNInit and the Linear bias reset; [torch] _init_weights."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            m.weight.data.normal_(0.0, math.sqrt(2.0 / n))
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.data.fill_(1.0)
            m.bias.data.zero_()
        elif isinstance(m, nn.Linear):
            m.bias.data.zero_()


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int, stride: int) -> nn.Sequential:
    """[torch] ConvBasic."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


def _bottleneck_conv(in_ch: int, out_ch: int, stride: int, bottleneck: bool, bn_width: int) -> nn.Sequential:
    """[torch] ConvBN: [1x1 conv-BN-ReLU to min(in, bn_width * out)] then 3x3 conv-BN-ReLU (stride 1 'normal',
    2 'down')."""
    layers: list[nn.Module] = []
    inner = in_ch
    if bottleneck:
        inner = min(in_ch, bn_width * out_ch)
        layers += [nn.Conv2d(in_ch, inner, 1, bias=False), nn.BatchNorm2d(inner), nn.ReLU(inplace=True)]
    layers += [nn.Conv2d(inner, out_ch, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(out_ch),
               nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class _Normal(nn.Module):
    """[torch] ConvNormal: x -> [x, conv(x)] (a scale with no finer input)."""

    def __init__(self, in_ch: int, out_ch: int, bottleneck: bool, bn_width: int) -> None:
        super().__init__()
        self.conv_normal = _bottleneck_conv(in_ch, out_ch, 1, bottleneck, bn_width)

    def forward(self, same: Tensor) -> Tensor:
        return torch.cat([same, self.conv_normal(same)], dim=1)


class _DownNormal(nn.Module):
    """[torch] ConvDownNormal: (finer, same) -> [same, down(finer), normal(same)], out/2 channels each."""

    def __init__(self, finer_ch: int, same_ch: int, out_ch: int, bottleneck: bool, bn_finer: int,
                 bn_same: int) -> None:
        super().__init__()
        self.conv_down = _bottleneck_conv(finer_ch, out_ch // 2, 2, bottleneck, bn_finer)
        self.conv_normal = _bottleneck_conv(same_ch, out_ch // 2, 1, bottleneck, bn_same)

    def forward(self, finer: Tensor, same: Tensor) -> Tensor:
        return torch.cat([same, self.conv_down(finer), self.conv_normal(same)], dim=1)


class _FirstLayer(nn.Module):
    """[torch] MSDNFirstLayer, CIFAR branch: image -> S scales."""

    def __init__(self, in_ch: int, channels: int, growth_factor: list[int]) -> None:
        super().__init__()
        widths = [channels * g for g in growth_factor]
        self.layers = nn.ModuleList(
            _conv_bn_relu(c_in, c_out, 3, 1 if s == 0 else 2)
            for s, (c_in, c_out) in enumerate(zip([in_ch, *widths[:-1]], widths)))

    def forward(self, x: Tensor) -> Scales:
        out = Scales()
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out


class _Layer(nn.Module):
    """[torch] MSDNLayer: in_scales live scales in, out_scales (= in_scales or in_scales - 1) out; ``unit`` is
    the unit channel count of its input, ``growth`` that of what it adds."""

    def __init__(self, unit: int, growth: int, in_scales: int, out_scales: int, num_scales: int,
                 growth_factor: list[int], bottleneck_factor: list[int], bottleneck: bool) -> None:
        super().__init__()
        self.discard = in_scales - out_scales
        if self.discard not in (0, 1):
            raise ValueError(f"msdnet: a layer can drop at most one scale ({in_scales} -> {out_scales})")
        offset = num_scales - out_scales  # global index of the finest output scale
        self.convs = nn.ModuleList()
        for s in range(offset, num_scales):
            if s == offset and not self.discard:
                self.convs.append(_Normal(unit * growth_factor[s], growth * growth_factor[s], bottleneck,
                                          bottleneck_factor[s]))
            else:
                self.convs.append(_DownNormal(unit * growth_factor[s - 1], unit * growth_factor[s],
                                              growth * growth_factor[s], bottleneck, bottleneck_factor[s - 1],
                                              bottleneck_factor[s]))

    def forward(self, x: list[Tensor]) -> Scales:
        # x holds the live input scales; with a discard its first one only feeds the next scale's down conv.
        if self.discard:
            return Scales(conv(x[i], x[i + 1]) for i, conv in enumerate(self.convs))
        return Scales([self.convs[0](x[0])] + [conv(x[i - 1], x[i]) for i, conv in enumerate(self.convs) if i])


class _Transition(nn.Module):
    """[torch] _build_transition / ParallelModule: a 1x1 conv-BN-ReLU on each live scale."""

    def __init__(self, unit: int, new_unit: int, out_scales: int, num_scales: int,
                 growth_factor: list[int]) -> None:
        super().__init__()
        offset = num_scales - out_scales
        self.convs = nn.ModuleList(_conv_bn_relu(unit * growth_factor[s], new_unit * growth_factor[s], 1, 1)
                                   for s in range(offset, num_scales))

    def forward(self, x: list[Tensor]) -> Scales:
        return Scales(conv(t) for conv, t in zip(self.convs, x))


class MSDNetBlock(nn.Sequential):
    """A run of MSDNet modules (the first layer, layers, transitions); returns the :class:`Scales` of its last."""


def _block_sizes(num_blocks: int, step_mode: str, step: int, base: int) -> list[int]:
    """Layers per block ([torch] MSDNet.__init__ steps)."""
    if step_mode == "even":
        return [base] + [step] * (num_blocks - 1)
    if step_mode == "lin_grow":
        return [base] + [step * b + 1 for b in range(1, num_blocks)]
    raise ValueError(f"msdnet: step_mode must be 'even' or 'lin_grow', got {step_mode!r}")


def _scales_of_layer(n: int, total: int, num_scales: int, prune: str) -> tuple[int, int]:
    """Live scales into and out of layer n (1-based) of ``total`` ([torch] _build_block)."""
    if prune == "max":
        interval = math.ceil(total / num_scales)
        return (num_scales - max(0, n - 2) // interval, num_scales - (n - 1) // interval)
    if prune == "min":
        return min(num_scales, total - n + 2), min(num_scales, total - n + 1)
    raise ValueError(f"msdnet: prune must be 'max' or 'min', got {prune!r}")


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"msdnet: {name} must be an integer >= {minimum}, got {value!r}")


@BACKBONES.register("msdnet")
def msdnet(
    input_shape: tuple[int, ...], *,
    num_blocks: Annotated[int, Param("Blocks, one MSDNet classifier each (nBlocks).", ge=1)] = 7,
    step_mode: Annotated[Literal["even", "lin_grow"], Param(
        "Layers in block b > 0: step (even) or step*b + 1 (lin_grow) (stepmode).")] = "even",
    step: Annotated[int, Param("Layer count of the blocks after the first (step).", ge=1)] = 2,
    base: Annotated[int, Param("Layers in block 0 after the first layer (base).", ge=1)] = 4,
    channels: Annotated[int, Param("First layer's channels at the finest scale; scale s has channels * "
                                   "growth_factor[s] (nChannels).", ge=1)] = 16,
    growth_rate: Annotated[int, Param("Channels a layer adds, times growth_factor[s] at scale s; must give even "
                                      "counts for s >= 1 (growthRate).", ge=1)] = 6,
    growth_factor: Annotated[list[PositiveInt], Param(
        "Channel factor per scale, finest first; its length is the number of scales (grFactor).",
        min_length=1)] = (1, 2, 4),
    bottleneck_factor: Annotated[list[PositiveInt], Param(
        "Per scale, the 1x1 bottleneck has at most this times the conv's output channels; same length as "
        "growth_factor (bnFactor).", min_length=1)] = (1, 2, 4),
    bottleneck: Annotated[bool, Param("A 1x1 bottleneck convolution before each 3x3 one (bottleneck).")] = True,
    prune: Annotated[Literal["max", "min"], Param(
        "max = drop the finest scale at evenly spaced layers, each followed by a transition; min = drop scales "
        "only as the last layers need, transitions after layers floor(L/3) and floor(2L/3) (prune).")] = "max",
    reduction: Annotated[float, Param("Transitions shrink channels to floor(reduction * channels); 0 = no "
                                      "transitions (reduction).", ge=0, le=1)] = 0.5,
    granularity: Annotated[Literal["block", "layer"], Param(
        "block = one block per MSDNet block (exits 0..num_blocks-1); layer = every module (first layer, layer, "
        "transition) its own block, 19 for the defaults with MSDNet's exits at 4, 6, 9, 11, 13, 16, 18 (a "
        "reading of paper B E.2's positions {0..17}).")] = "block",
) -> MSDNetBlocks:
    """MSDNet (Huang et al., 2018), CIFAR variant (eebench.models.msdnet); block k ends at MSDNet's classifier k.
    Defaults = the MSDNet authors' CIFAR-100 anytime network (kalviny/MSDNet-PyTorch README + args.py), paper B
    App. E.2 "CIFAR variant of MSDNet with 7 blocks". ICs must be of type msdnet; the final classifier is
    MSDNet's own.

    ``granularity`` "block": block k = MSDNet's block k (ends at exit k); "layer": every module (first layer,
    layer, transition) its own block (see the module docstring)."""
    for name, value in (("num_blocks", num_blocks), ("step", step), ("base", base), ("channels", channels),
                        ("growth_rate", growth_rate)):
        _positive_int(name, value)
    growth_factor, bottleneck_factor = list(growth_factor), list(bottleneck_factor)
    num_scales = len(growth_factor)
    if num_scales < 1 or len(bottleneck_factor) != num_scales:
        raise ValueError(f"msdnet: growth_factor ({growth_factor}) and bottleneck_factor ({bottleneck_factor}) "
                         f"must be non-empty and of equal length (one entry per scale)")
    for name, values in (("growth_factor", growth_factor), ("bottleneck_factor", bottleneck_factor)):
        for value in values:
            _positive_int(name, value)
    odd = [s for s in range(1, num_scales) if growth_rate * growth_factor[s] % 2]
    if odd:
        raise ValueError(f"msdnet: growth_rate * growth_factor[s] must be even for s >= 1 (half of it comes "
                         f"from the finer scale); odd at scales {odd}")
    if isinstance(reduction, bool) or not isinstance(reduction, (int, float)) or not 0 <= reduction <= 1:
        raise ValueError(f"msdnet: reduction must be in [0, 1] (0 = no transition layers), got {reduction!r}")
    if granularity not in ("block", "layer"):
        raise ValueError(f"msdnet: granularity must be 'block' or 'layer', got {granularity!r}")

    sizes = _block_sizes(num_blocks, step_mode, step, base)
    total = sum(sizes)
    unit, n = channels, 0
    groups: list[list[nn.Module]] = []  # MSDNet's blocks, as lists of modules
    ends: list[int] = []  # unit channels after each module
    for b, size in enumerate(sizes):
        modules: list[nn.Module] = []
        if b == 0:
            modules.append(_FirstLayer(input_shape[0], channels, growth_factor))
            ends.append(unit)
        for _ in range(size):
            n += 1
            in_scales, out_scales = _scales_of_layer(n, total, num_scales, prune)
            modules.append(_Layer(unit, growth_rate, in_scales, out_scales, num_scales, growth_factor,
                                  bottleneck_factor, bottleneck))
            unit += growth_rate
            ends.append(unit)
            transition = reduction > 0 and (
                in_scales > out_scales if prune == "max" else n in (total // 3, 2 * total // 3))
            if transition:
                new_unit = math.floor(reduction * unit)
                modules.append(_Transition(unit, new_unit, out_scales, num_scales, growth_factor))
                unit = new_unit
                ends.append(unit)
        groups.append(modules)

    coarsest = growth_factor[-1]  # the coarsest scale is never pruned
    if granularity == "block":
        blocks = [MSDNetBlock(*modules) for modules in groups]
        widths, i = [], 0
        for modules in groups:
            i += len(modules)
            widths.append(ends[i - 1] * coarsest)
    else:
        blocks = [MSDNetBlock(module) for modules in groups for module in modules]
        widths = [unit_after * coarsest for unit_after in ends]
    module_list = nn.ModuleList(blocks)
    _init(module_list)
    return MSDNetBlocks(module_list, widths)


class MSDNetClassifier(nn.Module):
    """MSDNet's CIFAR classifier ([torch] _build_classifier_cifar + ClassifierModule): on the coarsest scale
    (``x[-1]`` of a list; a 4-D tensor is taken as that scale), two 3x3/2 conv-BN-ReLU to ``hidden_channels``,
    global average pooling ([torch]: AvgPool2d(2) on the 2x2 map of a 32x32 input), linear layer."""

    def __init__(self, in_channels: int, num_classes: int, hidden_channels: int = 128) -> None:
        super().__init__()
        _positive_int("hidden_channels", hidden_channels)
        self.features = nn.Sequential(_conv_bn_relu(in_channels, hidden_channels, 3, 2),
                                      _conv_bn_relu(hidden_channels, hidden_channels, 3, 2))
        self.linear = nn.Linear(hidden_channels, num_classes)
        _init(self)

    def forward(self, x: Tensor | list[Tensor]) -> Tensor:
        if isinstance(x, (list, tuple)):
            x = x[-1]
        if x.dim() != 4:
            raise ValueError(f"msdnet classifier: needs a [B, C, H, W] feature map, got shape {tuple(x.shape)}")
        return self.linear(self.features(x).mean(dim=(2, 3)))


@IC_TYPES.register("msdnet")
def msdnet_head(in_features: int, num_classes: int, *, hidden_channels: Annotated[int, Unset(), Param(
        "Channels of its two convolutions; 128 when omitted (MSDNet's CIFAR classifier); the final classifier "
        "always has 128.", ge=1)] = 128) -> nn.Module:
    """MSDNet's classifier (Huang et al., 2018): on the coarsest scale two 3x3/2 conv-BN-ReLU to hidden_channels,
    global average pool, linear; the only IC type an msdnet backbone takes.

    ``in_features`` = channels of the coarsest scale (the backbone's width)."""
    return MSDNetClassifier(in_features, num_classes, hidden_channels=hidden_channels)
