"""Checkpoints during training (eebench.training.resume has the file): what the phases of one run share
(``Run``), and the hook that writes the resume checkpoint at every epoch end, every
``checkpoint_every_batches`` batches and after the batch in which a preemption signal came, then stops."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from eebench.training.distributed import World
from eebench.training.hooks import PhaseHook, Step
from eebench.training.preemption import Preempted, PreemptionFlag
from eebench.training.resume import ResumeFile


@dataclass
class Run:
    """What the phases of one training run share besides the model: the seed that fixes every epoch's sample
    order, the ranks, and the resume file (None: no checkpoints, and signals keep their default effect)."""

    seed: int = 0
    world: World = field(default_factory=World)
    resume: ResumeFile | None = None
    flag: PreemptionFlag = field(default_factory=PreemptionFlag)
    history: list[dict] = field(default_factory=list)  # of the finished phases
    state: dict[str, Any] | None = None  # checkpoint to resume from, until its phase has taken it

    def take_state(self, phase_index: int) -> dict[str, Any] | None:
        state, self.state = self.state, None
        return state if state is not None and state["phase_index"] == phase_index else None

    def save(self, state: dict[str, Any]) -> None:
        if self.resume is not None:
            self.resume.save({**state, "history": self.history}, self.world)

    def preempted(self) -> bool:
        """Whether any rank received a preemption signal (all ranks must stop at the same point)."""
        return self.resume is not None and self.world.sum([float(self.flag.requested)])[0] > 0

    def stopped(self, where: str) -> Preempted:
        path = self.resume.path if self.resume is not None else None
        return Preempted(f"stopped by a signal after {where}; progress saved in {path}")


class Checkpoints(PhaseHook):
    """With a resume file, checkpoint at every epoch end and every ``every`` batches of an epoch (0: epoch ends
    only), and on a preemption signal checkpoint after the current batch and raise ``Preempted``."""

    def __init__(self, run: Run, every: int) -> None:
        self.run, self.every = run, every

    def after_step(self, phase: Any, step: Step) -> bool:
        stop = self.run.resume is not None and step.signalled
        if stop or (self.every and step.done % self.every == 0 and step.done < phase.num_batches):
            phase.seconds += time.perf_counter() - phase.began
            phase.began = time.perf_counter()
            self.run.save(phase.checkpoint(step.epoch, step.done))
        if stop:
            raise self.run.stopped(f"batch {step.done} of epoch {step.epoch} of phase {phase.plan.name!r}")
        return False

    def after_epoch(self, phase: Any) -> None:
        if self.run.resume is not None:
            self.run.save(phase.checkpoint(phase.epoch, 0))
            if self.run.preempted():
                raise self.run.stopped(f"epoch {phase.epoch - 1} of phase {phase.plan.name!r}")
