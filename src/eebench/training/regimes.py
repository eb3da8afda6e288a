"""Training regimes as data (paper B §2 and Appendix A).

A regime is an ordered list of phases. A phase says which parts of the network train and which heads' losses
are summed, and stops by early stopping on the validation split. Parts and head sets are named by selectors
that a phase resolves against the network's heads (``Phase.plan``), so one phase template can say "the
backbone segment feeding head i" or "the last i heads"; a ``per_head`` template stands for one phase per head
(branch-wise, separate and mixed-gradual train as many phases as the network has heads). A phase may also
alternate between loss sets step by step (alternating training).

A regime whose first phase is ``BACKBONE_PHASE`` reuses the ``backbone`` regime's trained model instead of
repeating that phase, so phase 1 is trained once per seed and shared.
"""
from __future__ import annotations

from dataclasses import dataclass

from eebench.registry import Registry

# Parts of the network a phase can train. Per-head selectors refer to the phase's head i (depth order).
PARTS = {
    "blocks": "every block of the backbone",
    "final": "the backbone's own classifier (the last head)",
    "ics": "every internal classifier (every head but the last)",
    "head": "head i",
    "segment": "the blocks after head i-1's block up to head i's block",
    "blocks_to_head": "the backbone up to head i: blocks 0 to head i's block",
}
# Head sets whose losses a phase sums.
HEAD_SETS = {
    "final": "the last head",
    "ics": "every head but the last",
    "all": "every head",
    "head": "head i",
    "heads_to_head": "heads 0..i",
    "last_heads": "the last i+1 heads",
}
PER_HEAD = {"head", "segment", "blocks_to_head", "heads_to_head", "last_heads"}
EVERYTHING = ("blocks", "final", "ics")


@dataclass(frozen=True)
class PhasePlan:
    """A phase resolved against one network: what trains and which losses count, by index."""

    name: str
    blocks: tuple[int, ...]  # trainable blocks
    heads: tuple[int, ...]  # trainable heads (head indices in depth order; the last is the final classifier)
    loss_sets: tuple[tuple[int, ...], ...]  # heads whose losses are summed, step s uses loss_sets[s % len]

    @property
    def scored_heads(self) -> list[int]:
        """Heads whose validation scores drive early stopping: every head a loss set counts."""
        return sorted({h for heads in self.loss_sets for h in heads})


@dataclass(frozen=True)
class Phase:
    name: str
    trainable: tuple[str, ...]  # PARTS selectors
    loss_heads: str | tuple[str, ...]  # a HEAD_SETS selector, or several alternated step by step
    per_head: bool = False  # one phase per head i = first_head, ..., last head
    first_head: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.trainable) - set(PARTS)
        if unknown:
            raise ValueError(f"phase {self.name!r}: unknown parts {sorted(unknown)}; choose from {sorted(PARTS)}")
        bad = [s for s in self.loss_sets() if s not in HEAD_SETS]
        if bad:
            raise ValueError(f"phase {self.name!r}: unknown loss_heads {bad}; choose from {sorted(HEAD_SETS)}")
        uses_i = (set(self.trainable) | set(self.loss_sets())) & PER_HEAD
        if uses_i and not self.per_head:
            raise ValueError(f"phase {self.name!r}: {sorted(uses_i)} refer to head i, which needs per_head")

    def loss_sets(self) -> tuple[str, ...]:
        return (self.loss_heads,) if isinstance(self.loss_heads, str) else tuple(self.loss_heads)

    def plans(self, head_blocks: list[int], num_blocks: int) -> list[PhasePlan]:
        """This phase for a network with heads after ``head_blocks`` (0-based, the last one = num_blocks - 1):
        one plan, or one per head i for a per-head phase (named e.g. branch1, branch2, ...)."""
        if not self.per_head:
            return [self._plan(self.name, None, head_blocks, num_blocks)]
        return [self._plan(f"{self.name}{i + 1}", i, head_blocks, num_blocks)
                for i in range(self.first_head, len(head_blocks))]

    def _plan(self, name: str, i: int | None, head_blocks: list[int], num_blocks: int) -> PhasePlan:
        last = len(head_blocks) - 1
        blocks: set[int] = set()
        heads: set[int] = set()
        for part in self.trainable:
            if part == "blocks":
                blocks |= set(range(num_blocks))
            elif part == "final":
                heads.add(last)
            elif part == "ics":
                heads |= set(range(last))
            elif part == "head":
                heads.add(i)
            elif part == "segment":
                start = head_blocks[i - 1] + 1 if i > 0 else 0
                blocks |= set(range(start, head_blocks[i] + 1))
            elif part == "blocks_to_head":
                blocks |= set(range(head_blocks[i] + 1))
        return PhasePlan(name, tuple(sorted(blocks)), tuple(sorted(heads)),
                         tuple(_head_set(s, i, last) for s in self.loss_sets()))

    @property
    def plain(self) -> bool:
        """Whether the phase trains the network as if it had no ICs (eq. 1): blocks and final classifier only,
        on the final loss."""
        return set(self.trainable) <= {"blocks", "final"} and self.loss_sets() == ("final",)


def _head_set(selector: str, i: int | None, last: int) -> tuple[int, ...]:
    return {
        "final": lambda: (last,),
        "ics": lambda: tuple(range(last)),
        "all": lambda: tuple(range(last + 1)),
        "head": lambda: (i,),
        "heads_to_head": lambda: tuple(range(i + 1)),
        "last_heads": lambda: tuple(range(last - i, last + 1)),
    }[selector]()


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
        return not all(p.plain for p in self.phases)

    def phases_to_run(self, from_backbone: bool) -> tuple[Phase, ...]:
        return self.phases[1:] if from_backbone else self.phases


def expand(phases: tuple[Phase, ...], head_blocks: list[int], num_blocks: int) -> list[PhasePlan]:
    return [plan for phase in phases for plan in phase.plans(head_blocks, num_blocks)]


# Paper B eq. (1), (2), (3).
BACKBONE_PHASE = Phase("backbone", trainable=("blocks", "final"), loss_heads="final")
JOINT_PHASE = Phase("joint", trainable=EVERYTHING, loss_heads="all")
# Eq. (3) read literally: theta_b frozen, every theta_IC^(k), k = 1..K, trained on the sum of all K losses; the K-th
# "IC" is the final output layer (§2, Phase 1: "could be the last IC or an added final classifier").
IC_PHASE = Phase("ics", trainable=("ics", "final"), loss_heads="all")
# What paper B's own tables show and its code does: the final classifier stays as phase 1 left it (its loss a
# constant). Tables 6 and 20 give identical disjoint 100%/Unlimited values for every IC size, Table 16 (GPF, a
# separately trained model) the same disjoint Unlimited value as Table 10 (63.99), and methods/early_exit.py's
# model.train('without_backbone') freezes the whole base model, its classifier included.
IC_PHASE_FROZEN_FINAL = Phase("ics", trainable=("ics",), loss_heads="ics")

REGIMES: Registry = Registry("regime")
REGIMES.register("backbone", Regime((BACKBONE_PHASE,)))
REGIMES.register("disjoint", Regime((BACKBONE_PHASE, IC_PHASE_FROZEN_FINAL)))
REGIMES.register("disjoint_trained_final", Regime((BACKBONE_PHASE, IC_PHASE)))  # eq. (3) literally
REGIMES.register("joint", Regime((JOINT_PHASE,)))
REGIMES.register("mixed", Regime((BACKBONE_PHASE, JOINT_PHASE)))
# Appendix A. Branch-wise: head by head, only "the part of the backbone corresponding to the current IC"
# (the blocks since the previous head) and the head itself train, on that head's loss.
REGIMES.register("branchwise", Regime((
    Phase("branch", trainable=("segment", "head"), loss_heads="head", per_head=True),)))
# Separate: head by head, the current head and every earlier one summed; "the entire model is unfrozen".
REGIMES.register("separate", Regime((
    Phase("separate", trainable=EVERYTHING, loss_heads="heads_to_head", per_head=True),)))
# Alternating (Xin et al., 2021): step by step eq. (1) (the final loss) then eq. (2) (every head).
REGIMES.register("alternating", Regime((
    Phase("alternating", trainable=EVERYTHING, loss_heads=("final", "all")),)))
# Mixed-gradual: in phase i the last i heads train jointly, nothing frozen. Phase 1 (the last head alone) is
# phase 1 of mixed, so it is the shared backbone run; phase K is mixed's joint phase.
REGIMES.register("mixed_gradual", Regime((
    BACKBONE_PHASE, Phase("gradual", trainable=EVERYTHING, loss_heads="last_heads", per_head=True, first_head=1))))
