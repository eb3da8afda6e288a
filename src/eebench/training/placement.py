"""Where and in what precision training computes (``training.precision``, ``training.memory_format``): bf16
autocast and channels-last convolutions on a GPU; nothing changes on the CPU under "auto"."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from eebench.training.config import TrainingConfig


@dataclass(frozen=True)
class Placement:
    """How tensors and arithmetic are placed on the device: autocast dtype (None = full precision), memory
    format of a convolutional net and its 4-D inputs, pinned host memory for the DataLoader (CUDA only)."""

    device: torch.device
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = False

    @classmethod
    def of(cls, config: TrainingConfig, device: torch.device, convolutional: bool) -> "Placement":
        cuda = device.type == "cuda"
        bf16 = config.precision == "bf16" or (
            config.precision == "auto" and cuda and torch.cuda.is_bf16_supported())
        channels_last = convolutional and (config.memory_format == "channels_last" or (
            config.memory_format == "auto" and cuda))
        return cls(device, torch.bfloat16 if bf16 else None, channels_last)

    @property
    def pin_memory(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=self.pin_memory)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def prepare(self, model: nn.Module) -> None:
        if self.channels_last:
            model.to(memory_format=torch.channels_last)


def select_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
