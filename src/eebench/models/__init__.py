"""Multi-exit models: backbones split into blocks, internal classifiers (ICs) attached after chosen blocks."""
from eebench.models.backbones import BACKBONES, backbone_params_schema
from eebench.models.heads import IC_TYPES, ic_schema
from eebench.models.multi_exit import MultiExitNet, ModelSpec, backbone_state, build_model, head_blocks
from eebench.models.flops import head_costs

__all__ = [
    "BACKBONES", "IC_TYPES", "MultiExitNet", "ModelSpec", "backbone_params_schema", "backbone_state", "build_model",
    "head_blocks", "head_costs", "ic_schema",
]
