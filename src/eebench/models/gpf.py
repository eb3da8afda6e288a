"""GPF, the Global Past-Future early-exit method (Liao et al., 2021, "A Global Past-Future Early Exit Method for
Accelerating Inference of Pre-trained Language Models", NAACL), as paper B runs it (§4.3 Table 3; App. E: "For GPF
we set head embedding size to 512", our ``state_dim``).

Reference: paper B's released code, kamadforge/early-exit-benchmark @ 52ff524, architectures/early_exits/gpf.py
(cited as gpf.py:LINE), which follows the original lancopku/Early-Exit model/modeling_bert.py (ClassifierWithGate).
Each of the m ICs maps its block's output to a state s_i of size d (gpf.py:48-49). IC i's logits combine all
m positions: states 0..i-1 (detached), s_i, and imitations of the later states, imitator_j(s_i) for j > i
(gpf.py:120-127). Position j has its own projection W_r[j] (d x C) + b_r[j] (gpf.py:93):

    past_current = sum_{j<=i} (x_j W_r[j] + b_r[j]),     future = sum_{j>i} (x_j W_r[j] + b_r[j])
    balance = sigmoid(Linear_CC(relu(mean_{j<=i} (x_j W_g[j] + b_g[j]))))
    logits_i = balance * past_current + (1 - balance) * future                                   (gpf.py:94-101)

At the last IC ``future`` is an empty sum (zero), so its logits are ``balance * past_current``: the code's
ungated branch (gpf.py:102-103) is unreachable (head_idx < number_of_attached_heads always), as in the original
(``2 * prev_lamb * prev_logits`` at the last layer). The backbone's own classifier stays plain. Auxiliary
imitation loss (gpf.py:132-147): per IC i < m-1, mean(1 - cos) between the actual later states (detached) and
their imitations, all j > i stacked along the batch; averaged over the m-1 ICs. Paper B's training loop adds it
to the classification loss unweighted (methods/early_exit.py:221-222).
"""
from __future__ import annotations

from math import sqrt
from typing import Annotated

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from eebench.declare import Param, Unset
from eebench.models.heads import IC_TYPES, GlobalPool


class GPFMerge(nn.Module):
    """GPF's parameters beyond the state heads: imitators, per-position reduction and gate projections, the
    adaptive balance. Called with the ICs' states in depth order; returns the ICs' logits and the imitation loss."""

    def __init__(self, num_ics: int, state_dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"gpf: dropout must be in [0, 1), got {dropout!r}")
        self.num_ics = num_ics
        self.dropout = dropout  # the code's state_dropout (gpf.py:92), on the stacked states
        # imitators[j - 1] predicts state j; the code also builds one for state 0 (gpf.py:50), which no IC ever
        # uses (only j > i is imitated, gpf.py:122), so it is left out: same function, no unused parameters (DDP).
        self.imitators = nn.ModuleList(
            nn.Sequential(nn.Linear(state_dim, state_dim), nn.ReLU()) for _ in range(num_ics - 1))
        # Drawn in the code's order and with its init (gpf.py:52-67): N(0, 1/sqrt(d)) weights, zero biases.
        std = 1 / sqrt(state_dim)
        self.reduction_weight = nn.Parameter(torch.empty(num_ics, state_dim, num_classes).normal_(0.0, std))
        self.reduction_bias = nn.Parameter(torch.zeros(num_ics, num_classes))
        self.gate_weight = nn.Parameter(torch.empty(num_ics, state_dim, num_classes).normal_(0.0, std))
        self.gate_bias = nn.Parameter(torch.zeros(num_ics, num_classes))
        self.balance = nn.Sequential(nn.ReLU(), nn.Linear(num_classes, num_classes), nn.Sigmoid())

    def exit_logits(self, states: list[Tensor]) -> Tensor:
        """Logits of IC i = len(states) - 1 from the states of ICs 0..i: what inference computes on exiting
        there (head_costs counts this call)."""
        return self._merge(states)[0]

    def _merge(self, states: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """IC i's logits and the imitated states i+1..m-1 (for the imitation loss)."""
        index = len(states) - 1
        imitated = [self.imitators[j - 1](states[index]) for j in range(index + 1, self.num_ics)]
        x = torch.stack([*states, *imitated], dim=1)  # [B, m, d]
        x = F.dropout(x, self.dropout, self.training).unsqueeze(-2)  # [B, m, 1, d]: one matmul per position
        projected = (x @ self.reduction_weight).squeeze(-2) + self.reduction_bias  # [B, m, C]
        past_current = projected[:, : index + 1].sum(dim=1)
        future = projected[:, index + 1 :].sum(dim=1)  # zero at the last IC
        gate = (x[:, : index + 1] @ self.gate_weight[: index + 1]).squeeze(-2) + self.gate_bias[: index + 1]
        balance = self.balance(gate.mean(dim=1))
        return balance * past_current + (1 - balance) * future, imitated

    def forward(self, states: list[Tensor]) -> tuple[list[Tensor], Tensor]:
        """Every IC's logits and the imitation loss. IC i sees the earlier states detached (gpf.py:125-127), so
        its loss trains state head i (and the blocks under it), not the earlier state heads."""
        detached = [s.detach() for s in states]
        logits, imitations = [], []
        for index, state in enumerate(states):
            merged, imitated = self._merge(detached[:index] + [state])
            logits.append(merged)
            imitations.append(imitated)
        return logits, self.imitation_loss(detached, imitations)

    def imitation_loss(self, actual: list[Tensor], imitations: list[list[Tensor]]) -> Tensor:
        """Mean over ICs i < m-1 of CosineEmbeddingLoss(target 1) between the actual (detached) states j > i and
        IC i's imitations of them, concatenated along the batch (gpf.py:136-147). Zero with a single IC (the
        code would divide by zero)."""
        losses = []
        for index in range(self.num_ics - 1):
            predicted = torch.cat(imitations[index])
            target = torch.cat(actual[index + 1 :])
            ones = torch.ones(predicted.shape[0], device=predicted.device)
            losses.append(F.cosine_embedding_loss(predicted, target, ones))
        return torch.stack(losses).mean() if losses else actual[0].new_zeros(())


@IC_TYPES.register("gpf")
def gpf_state_head(in_features: int, num_classes: int, *,
                   state_dim: Annotated[int, Param("Size of the IC states (paper B App. E: 512 for ViT-T).", ge=1)],
                   dropout: Annotated[float, Unset(), Param(
                       "Dropout on the states while training (0 when omitted, as paper B's code).", ge=0, lt=1)] = 0.0,
                   ) -> nn.Module:
    """GPF (Liao et al., 2021; paper B Table 3): each IC makes a state (pool + linear + ReLU), and an IC's logits
    merge the past and current states with imitated future ones (eebench.models.gpf). GPF has no static
    per-head baseline.

    This is GPF's state head: pool as ``linear`` does, Linear(in, state_dim), ReLU. It stands in for the code's
    ``head_class(in_size, out_size=head_dim)`` + ReLU (gpf.py:48-49), our ``linear`` IC with ``state_dim``
    outputs. Its output is a state, not logits: the network's merge module (:func:`gpf_merge`) makes the
    logits. ``num_classes`` and ``dropout`` are the merge's."""
    if isinstance(state_dim, bool) or not isinstance(state_dim, int) or state_dim < 1:
        raise ValueError(f"gpf: state_dim must be an integer >= 1, got {state_dim!r}")
    return nn.Sequential(GlobalPool(), nn.Linear(in_features, state_dim), nn.ReLU())


def gpf_merge(num_ics: int, num_classes: int, *, state_dim: int, dropout: float = 0.0) -> GPFMerge:
    """The merge module of ``num_ics`` GPF ICs, built with the ICs' own parameters (:func:`gpf_state_head`)."""
    return GPFMerge(num_ics, state_dim, num_classes, dropout=dropout)


# An IC type whose exits combine all ICs brings a merge module; build_model looks for this attribute.
gpf_state_head.build_merge = gpf_merge
