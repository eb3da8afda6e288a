"""Training regimes as data (paper B §2 and appendix A).

A regime is an ordered list of phases. A phase says which parameter groups train and which heads' losses are
summed; every phase stops by early stopping on the validation split. A regime whose first phase is
``BACKBONE_PHASE`` reuses the ``backbone`` regime's trained model instead of repeating that phase, so phase 1 is
trained once per seed and shared.
"""
from __future__ import annotations

from dataclasses import dataclass

from eebench.models.multi_exit import PARAMETER_GROUPS
from eebench.registry import Registry

LOSS_HEADS = ("final", "internal", "all")


@dataclass(frozen=True)
class Phase:
    name: str
    trainable: tuple[str, ...]  # parameter groups that receive gradients
    loss_heads: str  # "final" (the backbone's classifier), "internal" (every IC but the final), or "all"

    def __post_init__(self) -> None:
        unknown = set(self.trainable) - set(PARAMETER_GROUPS)
        if unknown:
            raise ValueError(f"phase {self.name!r}: unknown parameter groups {sorted(unknown)}")
        if self.loss_heads not in LOSS_HEADS:
            raise ValueError(f"phase {self.name!r}: loss_heads must be one of {LOSS_HEADS}")

    def loss_head_indices(self, num_heads: int) -> list[int]:
        if self.loss_heads == "final":
            return [num_heads - 1]
        if self.loss_heads == "internal":
            return list(range(num_heads - 1))
        return list(range(num_heads))


@dataclass(frozen=True)
class Regime:
    phases: tuple[Phase, ...]

    @property
    def reuses_backbone(self) -> bool:
        return len(self.phases) > 1 and self.phases[0] == BACKBONE_PHASE

    @property
    def uses_ics(self) -> bool:
        """Whether any phase trains an IC or counts an IC's loss; a regime that does not trains the plain
        backbone (no ICs at all), so its run is the same for every IC variant."""
        return any("ics" in p.trainable or p.loss_heads != "final" for p in self.phases)

    def phases_to_run(self, from_backbone: bool) -> tuple[Phase, ...]:
        return self.phases[1:] if from_backbone else self.phases


# Paper B eq. (1), (2), (3).
BACKBONE_PHASE = Phase("backbone", trainable=("backbone",), loss_heads="final")
JOINT_PHASE = Phase("joint", trainable=("backbone", "ics"), loss_heads="all")
IC_PHASE = Phase("ics", trainable=("ics",), loss_heads="internal")

REGIMES: Registry = Registry("regime")
REGIMES.register("backbone", Regime((BACKBONE_PHASE,)))
REGIMES.register("disjoint", Regime((BACKBONE_PHASE, IC_PHASE)))
REGIMES.register("joint", Regime((JOINT_PHASE,)))
REGIMES.register("mixed", Regime((BACKBONE_PHASE, JOINT_PHASE)))
