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
