"""Backbone registry. An entry builds the backbone as an ``nn.ModuleList`` of blocks plus the width of each
block's output, so that internal classifiers can be attached after any block.

Entries: ``cnn``; ``resnet18/34/50`` (torchvision); ``resnet20`` (He et al. 2016 §4.2, CIFAR); ``vit``
(torchvision's VisionTransformer; paper B App. E sizes in :func:`vit`); ``bert`` (Hugging Face ``BertModel``
from a local directory); ``msdnet`` lives in msdnet.py. Token backbones (``vit``, ``bert``) output [B, T, D]
and have their heads read the first token (``token_pool="cls"``); ``bert`` takes integer token inputs (:func:`bert`).
"""
from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from eebench.declare import Param
from eebench.models import attention_flops as _attention_flops  # noqa: F401  (counts attention on CPU too)
from eebench.registry import Registry

TOKEN_POOLS = ("mean", "cls")


@dataclass
class Blocks:
    """A backbone split into blocks.

    ``token_pool`` says how every head (ICs and the final classifier) reduces a [B, T, D] token output to one
    vector: ``"mean"`` averages the tokens, ``"cls"`` takes token 0 (ViT's class token, BERT's [CLS]), as
    paper B's ViT heads do (architectures/early_exits/heads.py: ``x = x[:, 0]``). Spatial [B, C, H, W] outputs
    are always averaged. ``example_input(input_shape)`` returns one valid sample batch [1, *input_shape] for
    backbones whose inputs are not real-valued images (token ids); None means ``torch.zeros``."""

    blocks: nn.ModuleList
    widths: list[int]  # channels (conv) or embedding size (tokens) of each block's output
    token_pool: str = "mean"
    example_input: Callable[[tuple[int, ...]], Tensor] | None = None

    def __post_init__(self) -> None:
        if self.token_pool not in TOKEN_POOLS:
            raise ValueError(f"token_pool must be one of {TOKEN_POOLS}, got {self.token_pool!r}")
        if len(self.widths) != len(self.blocks):
            raise ValueError(f"{len(self.blocks)} blocks but {len(self.widths)} widths")


# An entry's keyword-only parameters are a model entry's ``params`` (eebench.declare); msdnet.py registers there.
BACKBONES: Registry = Registry("backbone", providers=("eebench.models.msdnet",))

PositiveInt = Annotated[int, Param("A positive integer.", ge=1)]


def _conv_bn_relu(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


@BACKBONES.register("cnn")
def cnn(input_shape: tuple[int, ...], *,
        widths: Annotated[list[PositiveInt], Param("Output channels of each block.", min_length=1)],
        strides: Annotated[list[PositiveInt], Param("Stride of each block's convolution.", min_length=1)]) -> Blocks:
    """A plain conv-BN-ReLU CNN, one convolution per block.

    Small enough for a laptop CPU, and its early blocks have a small receptive field, so early exits are
    genuinely weaker than late ones."""
    if len(widths) != len(strides):
        raise ValueError(f"cnn: widths ({len(widths)}) and strides ({len(strides)}) differ in length")
    in_channels = input_shape[0]
    blocks = []
    for width, stride in zip(widths, strides):
        blocks.append(_conv_bn_relu(in_channels, width, stride))
        in_channels = width
    return Blocks(nn.ModuleList(blocks), list(widths))


def resnet(depth: int, input_shape: tuple[int, ...], *,
           cifar_stem: Annotated[bool, Param("3x3/1 first convolution and no max-pool, for 32x32 inputs.")] = False,
           weights: Annotated[str | None, Param(
               "Path of a LOCAL torchvision ResNet state dict of this depth (e.g. resnet50-11ad3fa6.pth; paper A: a "
               "pre-trained ResNet-50, backbone unfrozen), read with torch.load(weights_only=True); its classifier "
               "(fc) is dropped. Never downloaded: a missing file fails at DAG build naming the key. The static "
               "heads and the early-exit model start from it alike.")] = None) -> Blocks:
    """torchvision's ResNet, one block per residual block, the stem joined to the first; random init unless
    `weights`.

    ``cifar_stem`` swaps the 7x7/2 convolution and max-pool for a 3x3/1 convolution, the usual change for 32x32
    inputs. Weights start random, or from ``weights``: the path of a LOCAL torchvision ResNet state dict of this
    depth (e.g. ``resnet50-11ad3fa6.pth``; paper A §3/§4: "a pre-trained classification model with an unfrozen
    backbone", ResNet-50), read with ``torch.load(weights_only=True)``; its ImageNet classifier (``fc.*``) is
    dropped. Nothing is downloaded. ``resnet18``, ``resnet34`` and ``resnet50`` are this function at their
    depth (:func:`_resnet_of_depth`), so the three declare their parameters here, once."""
    from torchvision.models import resnet18, resnet34, resnet50

    name = f"resnet{depth}"
    if weights is not None and not Path(weights).is_file():
        raise FileNotFoundError(f"{name}: weights file {weights} not found (a local torchvision ResNet state dict; "
                                f"nothing is downloaded)")
    net = {18: resnet18, 34: resnet34, 50: resnet50}[depth](weights=None)
    if cifar_stem:
        net.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif input_shape[0] != 3:
        net.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=7, stride=2, padding=3, bias=False)
    if weights is not None and not _on_meta_device():
        _load_torchvision_state(net, Path(weights), name, "fc.")
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    residual = [block for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for block in layer]
    widths = [(block.conv3 if hasattr(block, "conv3") else block.conv2).out_channels for block in residual]
    return Blocks(nn.ModuleList([nn.Sequential(stem, residual[0]), *residual[1:]]), widths)


def _resnet_of_depth(depth: int) -> Callable[..., Blocks]:
    """The backbone ``resnet<depth>``: :func:`resnet` at that depth. It wraps :func:`resnet` (``__wrapped__``),
    whose keyword-only parameters, docstring and annotations are therefore its declaration (eebench.declare)."""

    def build(input_shape: tuple[int, ...], **params: Any) -> Blocks:
        return resnet(depth, input_shape, **params)

    functools.update_wrapper(build, resnet)
    build.__name__ = build.__qualname__ = f"resnet{depth}"
    signature = inspect.signature(resnet)
    build.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])
    return build


resnet18 = BACKBONES.register("resnet18", _resnet_of_depth(18))
resnet34 = BACKBONES.register("resnet34", _resnet_of_depth(34))
resnet50 = BACKBONES.register("resnet50", _resnet_of_depth(50))


# --- ResNet-20 for CIFAR ------------------------------------------------------------------------------------------
# He et al. (2016), "Deep Residual Learning for Image Recognition", §4.2: a 3x3 convolution with 16 filters, then
# three stages of n basic blocks (two 3x3 convolutions each) on 32x32, 16x16 and 8x8 maps with 16, 32 and 64
# filters, subsampling by stride 2 in the first convolution of stages 2 and 3; 6n + 2 layers, n = 3 for ResNet-20.
# "We use identity shortcuts in all cases (i.e., option A)": where the shape changes, the shortcut subsamples
# (x[:, :, ::2, ::2]) and pads the new channels with zeros (half in front, half behind, the common CIFAR
# implementation, e.g. akamaster/pytorch_resnet_cifar10; where the zeros go is a relabelling of channels).
# Option B (§3.3; a 1x1 convolution + BN projection where the shape changes, the shortcut of paper B's
# architectures/resnets.py BasicBlock) is available as ``shortcut: B``. Paper B uses ResNet-20 on CIFAR-10 only for
# Figures 3 and 6 and its released code has no ResNet-20, so option A, the paper He et al. report, is the default.
# Convolutions start from He (Kaiming) normal init with torchvision's ResNet convention (fan_out, ReLU gain).


class _PadShortcut(nn.Module):
    """Option A: identity with stride-``stride`` subsampling and zero channels up to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        extra = out_channels - in_channels
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, *self.pad))


class CifarBasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU (He et al. 2016, Fig. 2)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            if shortcut == "A":
                self.shortcut = _PadShortcut(in_channels, out_channels, stride)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def _cifar_resnet(input_shape: tuple[int, ...], blocks_per_stage: int, shortcut: str) -> Blocks:
    if shortcut not in ("A", "B"):
        raise ValueError(f"resnet20: shortcut must be 'A' (zero-padding identity) or 'B' (projection), "
                         f"got {shortcut!r}")
    stem = nn.Sequential(nn.Conv2d(input_shape[0], 16, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(16),
                         nn.ReLU(inplace=True))
    residual, widths, in_channels = [], [], 16
    for stage, channels in enumerate((16, 32, 64)):
        for index in range(blocks_per_stage):
            stride = 2 if stage > 0 and index == 0 else 1
            residual.append(CifarBasicBlock(in_channels, channels, stride, shortcut))
            widths.append(channels)
            in_channels = channels
    blocks = nn.ModuleList([nn.Sequential(stem, residual[0]), *residual[1:]])
    for module in blocks.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return Blocks(blocks, widths)


@BACKBONES.register("resnet20")
def resnet20(input_shape: tuple[int, ...], *, shortcut: Annotated[Literal["A", "B"], Param(
        "Shortcut where the shape changes: A = subsampled identity padded with zero channels, no parameters (He et "
        "al.'s CIFAR networks); B = 1x1 convolution + BN projection (paper B's resnets.py BasicBlock).")] = "A",
             ) -> Blocks:
    """ResNet-20 for CIFAR (He et al. 2016 §4.2): a 3x3/16 stem and 3 stages x 3 basic blocks (16, 32, 64
    channels; stride 2 entering stages 2 and 3), one block per basic block, the stem joined to the first.

    For 32x32 inputs: 9 blocks, widths 16 x 3, 32 x 3, 64 x 3. ``shortcut``: "A" (default, as He et al.'s CIFAR
    nets) or "B"."""
    return _cifar_resnet(input_shape, 3, shortcut)


# --- Vision Transformer ---------------------------------------------------------------------------------------------


class ViTEmbedding(nn.Module):
    """The part of torchvision's ``VisionTransformer.forward`` before the encoder layers: patch embedding
    (``conv_proj``, ``_process_input``), the class token in front, ``encoder.pos_embedding`` added,
    ``encoder.dropout``. Holds torchvision's own modules and parameters."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.image_size, self.patch_size, self.hidden_dim = net.image_size, net.patch_size, net.hidden_dim
        self.conv_proj = net.conv_proj
        self.class_token = net.class_token
        self.pos_embedding = net.encoder.pos_embedding
        self.dropout = net.encoder.dropout

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        if h != self.image_size or w != self.image_size:
            raise ValueError(f"vit: expected {self.image_size}x{self.image_size} inputs, got {h}x{w}")
        x = self.conv_proj(x).reshape(n, self.hidden_dim, (h // self.patch_size) * (w // self.patch_size))
        x = torch.cat([self.class_token.expand(n, -1, -1), x.permute(0, 2, 1)], dim=1)
        return self.dropout(x + self.pos_embedding)


def _load_torchvision_state(net: nn.Module, path: Path, backbone: str, classifier: str) -> None:
    """Load a torchvision state dict (e.g. ``vit_b_16``'s: conv_proj.*, class_token, encoder.*, heads.*; a
    ResNet's: conv1.*, bn1.*, layer*.*, fc.*) into ``net``; the pre-trained classifier (keys starting with
    ``classifier``) is dropped, every other key must fit (else a ValueError naming the file and the first
    mismatch, on one line)."""
    from eebench.io import read_checkpoint, state_dict_mismatch

    state = read_checkpoint(path, f"a torchvision {backbone} state dict")
    state = {k: v for k, v in state.items() if not k.startswith(classifier)}
    problem = state_dict_mismatch(net, state, keys=[k for k in net.state_dict() if not k.startswith(classifier)])
    if problem:
        raise ValueError(f"{backbone}: the weights in {path} do not fit this network: {problem}")
    net.load_state_dict(state, strict=False)


def _on_meta_device() -> bool:
    """Whether modules are being built on the meta device (``head_blocks`` at DAG-build time)."""
    return torch.empty(0).device.type == "meta"


@BACKBONES.register("vit")
def vit(input_shape: tuple[int, ...], *,
        patch_size: Annotated[int, Param("Side of the square patches (the patch embedding's kernel and stride).",
                                         ge=1)],
        hidden_dim: Annotated[int, Param("Token embedding size, a multiple of num_heads.", ge=1)],
        mlp_dim: Annotated[int, Param("Hidden size of each encoder layer's MLP.", ge=1)],
        num_layers: Annotated[int, Param("Encoder layers, one block each.", ge=1)],
        num_heads: Annotated[int, Param("Attention heads per layer.", ge=1)],
        image_size: Annotated[int | None, Param("Side of the square input image, a multiple of patch_size; null = "
                                                "the dataset's input side.", ge=1)] = None,
        dropout: Annotated[float, Param("Dropout after the position embedding, the attention and in the MLPs "
                                        "(torchvision's dropout).", ge=0, lt=1)] = 0.0,
        attention_dropout: Annotated[float, Param("Dropout on the attention weights (torchvision's "
                                                  "attention_dropout).", ge=0, lt=1)] = 0.0,
        weights: Annotated[str | None, Param(
            "Path of a local torchvision ViT state dict (e.g. vit_b_16-c867db91.pth, IMAGENET1K_V1) loaded before "
            "the split; its classifier (heads.*) is dropped. Never downloaded: a missing file fails at DAG build. "
            "null = random init.")] = None) -> Blocks:
    """torchvision's VisionTransformer (Dosovitskiy et al., 2021), one block per encoder layer: patch embedding,
    class token and position embedding join block 0, the encoder's final LayerNorm joins the last; every head
    reads the class token. Paper B App. E sizes (patch_size, hidden_dim, mlp_dim, num_layers, num_heads):
    ViT-T/CIFAR-100 (32x32) 4, 256, 256, 7, 8; ViT-T/ImageNet 16, 192, 768, 12, 3; ViT-S 16, 384, 1536, 12, 6;
    ViT-B 16, 768, 3072, 12, 12 (224x224).

    Split into ``num_layers`` blocks: block 0 = patch embedding (``conv_proj``) + class token + position embedding
    (+ dropout) + encoder layer 0; block k = encoder layer k; the last block also applies the encoder's final
    LayerNorm, so the final classifier sees what torchvision's ``heads`` see. Every head reads the class token
    (``token_pool="cls"``, as paper B's ``vit_standard_head``); ICs see the un-normalised layer outputs, as
    paper B's ``forward_generator`` yields them.

    Why torchvision rather than timm: torchvision is already a dependency (timm would be a new one), paper B's
    ViT (architectures/vit.py) is a copy of torchvision's, and its pre-trained ViT-B (§4.4, Table 4) is
    torchvision's ``vit_b_16`` IMAGENET1K_V1, whose state dict loads here unchanged.

    Sizes are config values; those above are paper B's ViT-T/CIFAR-100 (E.3), ViT-T/ImageNet (E.5), ViT-S (Fig.
    17; the standard ViT-S/16, App. E gives no sizes) and ViT-B (E.8; CIFAR-100 resized to 224, as paper B's
    fine-tuning script). ``VIT_SIZES`` lists them.

    ``image_size``: side of the square input, default ``input_shape[-1]``. ``weights``: path of a LOCAL torchvision
    ViT state dict (e.g. ``vit_b_16-c867db91.pth``), read with ``torch.load(weights_only=True)`` and loaded into
    the torchvision model before it is split (never downloaded; its ``heads.*`` are dropped: the final
    classifier is this pipeline's own, new); a missing file raises FileNotFoundError. The input must then be
    what the weights were trained on (3 channels, same image and patch size; ImageNet normalisation)."""
    from torchvision.models import VisionTransformer

    if weights is not None and not Path(weights).is_file():
        raise FileNotFoundError(f"vit: weights file {weights} not found (a local torchvision ViT state dict; "
                                f"nothing is downloaded)")
    if num_layers < 1:
        raise ValueError(f"vit: num_layers must be >= 1, got {num_layers}")
    image_size = input_shape[-1] if image_size is None else image_size
    if image_size % patch_size:
        raise ValueError(f"vit: image_size {image_size} is not a multiple of patch_size {patch_size}")
    if hidden_dim % num_heads:
        raise ValueError(f"vit: hidden_dim {hidden_dim} is not a multiple of num_heads {num_heads}")
    net = VisionTransformer(image_size=image_size, patch_size=patch_size, num_layers=num_layers,
                            num_heads=num_heads, hidden_dim=hidden_dim, mlp_dim=mlp_dim, dropout=dropout,
                            attention_dropout=attention_dropout, num_classes=1)
    if input_shape[0] != 3:  # torchvision's patch embedding takes RGB; same init as its own (ViT's fan-in rule)
        net.conv_proj = nn.Conv2d(input_shape[0], hidden_dim, kernel_size=patch_size, stride=patch_size)
        nn.init.trunc_normal_(net.conv_proj.weight, std=math.sqrt(1 / (input_shape[0] * patch_size ** 2)))
        nn.init.zeros_(net.conv_proj.bias)
    if weights is not None and not _on_meta_device():
        _load_torchvision_state(net, Path(weights), "vit", "heads.")
    parts: list[list[nn.Module]] = [[layer] for layer in net.encoder.layers]
    parts[0].insert(0, ViTEmbedding(net))
    parts[-1].append(net.encoder.ln)
    blocks = [nn.Sequential(*part) if len(part) > 1 else part[0] for part in parts]
    return Blocks(nn.ModuleList(blocks), [hidden_dim] * num_layers, token_pool="cls")


# Paper B App. E sizes (see :func:`vit`); a config entry spells them out as ``params``.
VIT_SIZES: dict[str, dict[str, Any]] = {
    "vit_t_cifar": {"image_size": 32, "patch_size": 4, "hidden_dim": 256, "mlp_dim": 256, "num_layers": 7,
                    "num_heads": 8},
    "vit_t_imagenet": {"image_size": 224, "patch_size": 16, "hidden_dim": 192, "mlp_dim": 768, "num_layers": 12,
                       "num_heads": 3},
    "vit_s": {"image_size": 224, "patch_size": 16, "hidden_dim": 384, "mlp_dim": 1536, "num_layers": 12,
              "num_heads": 6},
    "vit_b": {"image_size": 224, "patch_size": 16, "hidden_dim": 768, "mlp_dim": 3072, "num_layers": 12,
              "num_heads": 12},
}


# --- BERT -----------------------------------------------------------------------------------------------------------
# Token inputs: one sample is an int64 tensor [2, T] or [3, T]: row 0 input ids, row 1 attention mask (1 = token,
# 0 = padding), optional row 2 token type (segment) ids (sentence pairs, e.g. STS-B; zeros when absent), as the
# model directory's tokenizer returns them (input_ids, attention_mask, token_type_ids), padded to T; [CLS] first.
# Blocks pass a single [B, T, D] tensor between them (heads, GradientEquilibrium's hooks and head_costs see only
# that), so the attention mask travels beside it: block 0 turns the input's mask into the attention
# implementation's mask (transformers' create_bidirectional_mask, exactly as BertModel.forward) and leaves it in a
# holder shared by the network's BERT blocks; every later block reads it from there. Blocks must therefore run in
# order within one forward pass (MultiExitNet and head_costs do); a block whose input does not match the batch
# and length of the last block 0 call raises.


class _SharedMask:
    """The attention mask of the current forward pass, shared by the blocks of one BERT."""

    def __init__(self) -> None:
        self.mask: Tensor | None = None
        self.shape: tuple[int, int] | None = None


class BertInput(nn.Module):
    """Token rows [B, 2|3, T] -> ``BertEmbeddings`` output [B, T, D]; records the attention mask."""

    def __init__(self, embeddings: nn.Module, config: Any, shared: _SharedMask) -> None:
        super().__init__()
        self.embeddings = embeddings
        self.config = config
        self.shared = shared

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[1] not in (2, 3):
            raise ValueError(f"bert: expected token inputs [B, 2 or 3, T] (input ids, attention mask[, token "
                             f"type ids]), got shape {tuple(x.shape)}")
        if x.shape[2] > self.config.max_position_embeddings:
            raise ValueError(f"bert: sequence length {x.shape[2]} exceeds max_position_embeddings "
                             f"{self.config.max_position_embeddings}")
        if x.is_floating_point():
            # head_costs (flops.py) counts on torch.zeros((1, *input_shape)), a float tensor: integral values
            # are token ids; anything else (e.g. mixed-up inputs) is an error. (Meta tensors have no values.)
            if x.device.type != "meta" and not torch.equal(x, x.round()):
                raise TypeError("bert: token inputs must be integers (ids, mask, token types)")
            x = x.long()
        from transformers.masking_utils import create_bidirectional_mask

        token_types = x[:, 2] if x.shape[1] == 3 else None
        hidden = self.embeddings(input_ids=x[:, 0], token_type_ids=token_types)
        # (On the meta device there is nothing to mask, and transformers' mask checks read values.)
        self.shared.mask = None if x.device.type == "meta" else create_bidirectional_mask(
            config=self.config, inputs_embeds=hidden, attention_mask=x[:, 1])
        self.shared.shape = tuple(hidden.shape[:2])
        return hidden


class BertBlock(nn.Module):
    """One ``BertLayer`` applied with the attention mask that block 0 recorded."""

    def __init__(self, layer: nn.Module, shared: _SharedMask) -> None:
        super().__init__()
        self.layer = layer
        self.shared = shared

    def forward(self, hidden: Tensor) -> Tensor:
        if self.shared.shape != tuple(hidden.shape[:2]):
            raise RuntimeError(f"bert: this block's input {tuple(hidden.shape)} is not the output of the last "
                               f"block 0 call (batch and length {self.shared.shape}); run the blocks in order")
        return self.layer(hidden, self.shared.mask)


def token_example_input(input_shape: tuple[int, ...]) -> Tensor:
    """A valid one-sample token batch: ids 0 (BERT's [PAD], any id costs the same), mask all ones, token types 0.
    ``input_shape`` (2, T) or (3, T); another shape (the (3, 32, 32) that config checks pass) gives (2, T=last)."""
    rows, length = tuple(input_shape) if len(input_shape) == 2 else (2, input_shape[-1])
    x = torch.zeros((1, rows, length), dtype=torch.long)
    x[:, 1] = 1
    return x


@BACKBONES.register("bert")
def bert(input_shape: tuple[int, ...], *, model_dir: Annotated[str, Param(
        "Directory written by save_pretrained (config.json and the weights, e.g. bert-base-uncased), read with "
        "local_files_only; never downloaded: a missing directory fails at DAG build.")]) -> Blocks:
    """Hugging Face BertModel (Devlin et al., 2019) from a local directory, one block per encoder layer
    (embeddings join block 0), no pooler; every head reads the [CLS] hidden state. Inputs: int64 [2, T] (input
    ids, attention mask) or [3, T] (+ token type ids) per sample.

    ``BertModel.from_pretrained(model_dir, local_files_only=True)`` (a LOCAL directory with config.json and the
    weights, e.g. bert-base-uncased saved with ``save_pretrained``; never downloaded; a missing directory raises
    FileNotFoundError), split into ``num_hidden_layers`` blocks: block 0 = embeddings + encoder layer 0, block k =
    encoder layer k; no pooler (heads read the [CLS] hidden state, ``token_pool="cls"``). Inputs [B, 2|3, T]
    int64, see the section comment above; ``input_shape`` is (2, T) or (3, T), of which only T is used (for
    ``example_input``). Dropout as the model's config (0.1 for BERT-base). Built on the meta device
    (``head_blocks``), the weights are not read: only config.json."""
    from transformers import BertConfig, BertModel

    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"bert: model directory {model_dir} not found or without config.json (a local "
                                f"Hugging Face BERT directory; nothing is downloaded)")
    if _on_meta_device():
        model = BertModel(BertConfig.from_pretrained(path, local_files_only=True), add_pooling_layer=False)
    else:
        model = BertModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False,
                                          dtype=torch.float32)
    model.train()  # from_pretrained returns eval mode; every other backbone starts in training mode
    shared = _SharedMask()
    layers = [BertBlock(layer, shared) for layer in model.encoder.layer]
    blocks = nn.ModuleList([nn.Sequential(BertInput(model.embeddings, model.config, shared), layers[0]),
                            *layers[1:]])
    return Blocks(blocks, [model.config.hidden_size] * len(layers), token_pool="cls",
                  example_input=token_example_input)


def backbone_params_schema() -> dict[str, dict[str, Any]]:
    """The config schema's definitions of the backbones' parameters (a model entry's ``params``), generated from
    the backbones' declarations (eebench.declare): ``backbone_params``, one object schema per backbone by name;
    backbones that share one declaration (resnet18/34/50: :func:`resnet`) refer to one definition
    ``<function>_params`` (``resnet_params``), returned beside it."""
    from eebench.declare import entry_description, parameters_schema

    by_declaration: dict[Callable, list[str]] = {}
    for name in BACKBONES.names():
        by_declaration.setdefault(inspect.unwrap(BACKBONES.declared(name)), []).append(name)
    properties: dict[str, Any] = {}
    shared: dict[str, dict[str, Any]] = {}
    for declared, names in by_declaration.items():
        if len(names) == 1:
            properties[names[0]] = BACKBONES.parameters_schema(names[0])
            continue
        definition = f"{declared.__name__}_params"
        shared[definition] = parameters_schema(declared, description=entry_description(declared))
        properties.update({name: {"$ref": f"#/$defs/{definition}"} for name in names})
    return {"backbone_params": {"properties": dict(sorted(properties.items()))}, **shared}
