"""Backbone registry. An entry builds the backbone as an ``nn.ModuleList`` of blocks plus the width of each
block's output, so that internal classifiers can be attached after any block."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from eebench.registry import Registry


@dataclass
class Blocks:
    blocks: nn.ModuleList
    widths: list[int]  # channels (conv) or embedding size (tokens) of each block's output


BACKBONES: Registry = Registry("backbone")


def _conv_bn_relu(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


@BACKBONES.register("cnn")
def cnn(input_shape: tuple[int, ...], widths: list[int], strides: list[int]) -> Blocks:
    """A plain CNN, one conv-BN-ReLU per block: small enough for a laptop CPU, and its early blocks have a
    small receptive field, so early exits are genuinely weaker than late ones."""
    if len(widths) != len(strides):
        raise ValueError(f"cnn: widths ({len(widths)}) and strides ({len(strides)}) differ in length")
    in_channels = input_shape[0]
    blocks = []
    for width, stride in zip(widths, strides):
        blocks.append(_conv_bn_relu(in_channels, width, stride))
        in_channels = width
    return Blocks(nn.ModuleList(blocks), list(widths))


def _resnet(depth: int, input_shape: tuple[int, ...], cifar_stem: bool = False) -> Blocks:
    """torchvision's ResNet, one block per residual block; the stem joins the first. ``cifar_stem`` swaps
    the 7x7/2 convolution and max-pool for a 3x3/1 convolution, the usual change for 32x32 inputs.
    Weights start random: nothing is downloaded."""
    from torchvision.models import resnet18, resnet34, resnet50

    net = {18: resnet18, 34: resnet34, 50: resnet50}[depth](weights=None)
    if cifar_stem:
        net.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif input_shape[0] != 3:
        net.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=7, stride=2, padding=3, bias=False)
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    residual = [block for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for block in layer]
    widths = [(block.conv3 if hasattr(block, "conv3") else block.conv2).out_channels for block in residual]
    return Blocks(nn.ModuleList([nn.Sequential(stem, residual[0]), *residual[1:]]), widths)


@BACKBONES.register("resnet18")
def resnet18(input_shape: tuple[int, ...], cifar_stem: bool = False) -> Blocks:
    return _resnet(18, input_shape, cifar_stem)


@BACKBONES.register("resnet34")
def resnet34(input_shape: tuple[int, ...], cifar_stem: bool = False) -> Blocks:
    return _resnet(34, input_shape, cifar_stem)


@BACKBONES.register("resnet50")
def resnet50(input_shape: tuple[int, ...], cifar_stem: bool = False) -> Blocks:
    return _resnet(50, input_shape, cifar_stem)
