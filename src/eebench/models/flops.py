"""Per-head inference cost from ``torch.utils.flop_counter`` (it counts matmuls and convolutions)."""
from __future__ import annotations

from typing import Any, Callable

import torch

from eebench.models.multi_exit import MultiExitNet
from eebench.torch_eager import FlopCounter


def _count(module: Callable[[Any], torch.Tensor], x: Any) -> tuple[int, torch.Tensor]:
    with FlopCounter(display=False) as counter:
        out = module(x)
    return counter.get_total_flops(), out


@torch.no_grad()
def head_costs(model: MultiExitNet, input_shape: tuple[int, ...]) -> tuple[list[float], float]:
    """FLOPs for one sample: the cost of exiting at each head (blocks up to it plus every head evaluated on
    the way) and the plain backbone's cost (all blocks plus the final classifier: the 100% budget). With a merge
    module (GPF), an IC's cost also holds the merge's work for its logits (``merge.exit_logits`` on the ICs'
    outputs so far, as the forward computes them)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = model.example_input(input_shape, device)  # token backbones need valid ids, not float zeros
    cumulative, costs, block_total = 0.0, [], 0.0
    final_head = 0.0
    final = len(model.blocks) - 1
    ic_outputs: list[torch.Tensor] = []
    for index, block in enumerate(model.blocks):
        flops, x = _count(block, x)
        cumulative += flops
        block_total += flops
        if str(index) in model.heads:
            head_flops, out = _count(model.heads[str(index)], x)
            if model.merge is not None and index != final:
                ic_outputs.append(out)
                merge_flops, _ = _count(model.merge.exit_logits, ic_outputs)
                head_flops += merge_flops
            cumulative += head_flops
            costs.append(cumulative)
            final_head = head_flops
    model.train(was_training)
    return costs, block_total + final_head
