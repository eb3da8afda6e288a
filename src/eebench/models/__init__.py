"""Multi-exit models: backbones split into blocks, internal classifiers (ICs) attached after chosen blocks."""
from eebench.models.backbones import BACKBONES
from eebench.models.heads import IC_TYPES
from eebench.models.multi_exit import MultiExitNet, ModelSpec, backbone_state, build_model, head_blocks
from eebench.models.flops import head_costs
from eebench.models import msdnet as _msdnet  # noqa: F401  (registers the "msdnet" backbone and IC type)

__all__ = [
    "BACKBONES", "IC_TYPES", "MultiExitNet", "ModelSpec", "backbone_state", "build_model", "head_blocks", "head_costs",
]
