"""FLOP formulas for the attention kernels that ``torch.utils.flop_counter`` does not count on its own.

``FlopCounterMode`` counts an operator only if its registry has a formula for it. Two kernels that transformer
backbones reach on CPU have none, so the attention of ViT and BERT would silently count zero:

* ``aten._scaled_dot_product_flash_attention_for_cpu`` (and its backward): what
  ``F.scaled_dot_product_attention`` runs on CPU. The CUDA kernels (flash, efficient, cuDNN) are registered, so
  the same model would cost more on a GPU than on a CPU.
* ``aten._native_multi_head_attention``: the fused inference path of ``nn.MultiheadAttention`` (torchvision's
  ViT), taken in eval mode without gradients, i.e. exactly when ``head_costs`` counts. It hides the in- and
  out-projections too, so eval-mode counts would be lower than training-mode counts of the same network.

We register both with the same dense formulas torch uses for the others (matmul = 2 * m * n * k): the score
and value products of ``sdpa_flop``, plus, for the fused MHA, the projections that the unfused path counts as
``addmm``. A count is then the same on CPU and GPU, in train and eval mode. Importing this module registers
them (once; ``FlopCounterMode`` snapshots the registry when it is created, so import it before counting:
``eebench.models`` does).
"""
from __future__ import annotations

import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import register_flop_formula, sdpa_backward_flop, sdpa_flop, sdpa_flop_count

aten = torch.ops.aten


def native_mha_flop(query_shape, key_shape, value_shape, embed_dim, num_head, *args, out_shape=None,
                    **kwargs) -> int:
    """``_native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, ...)`` on batch-first
    [B, L, E] inputs: q/k/v projections, ``sdpa_flop_count`` on the [B, H, L, E/H] heads, out-projection."""
    batch, q_len, _ = query_shape
    k_len, v_len = key_shape[1], value_shape[1]
    head_dim = embed_dim // num_head
    projections = 2 * batch * embed_dim * embed_dim * (q_len + k_len + v_len)  # q, k, v in-projections
    attention = sdpa_flop_count((batch, num_head, q_len, head_dim), (batch, num_head, k_len, head_dim),
                                (batch, num_head, v_len, head_dim))
    out_projection = 2 * batch * q_len * embed_dim * embed_dim
    return projections + attention + out_projection


# name -> (formula, already shape-wrapped): torch's sdpa formulas are the registered (wrapped) functions.
_FORMULAS = {
    "_scaled_dot_product_flash_attention_for_cpu": (sdpa_flop, True),
    "_scaled_dot_product_flash_attention_for_cpu_backward": (sdpa_backward_flop, True),
    "_native_multi_head_attention": (native_mha_flop, False),
}


def register() -> None:
    """Register the formulas above for the kernels this torch build has and torch does not count yet."""
    for name, (formula, wrapped) in _FORMULAS.items():
        op = getattr(aten, name, None)
        if op is not None and op not in flop_counter.flop_registry:
            register_flop_formula(op, get_raw=wrapped)(formula)


register()
