from eebench.training.distributed import World, process_world
from eebench.training.config import TrainingConfig
from eebench.training.loop import predict, train_phases
from eebench.training.placement import select_device
from eebench.training.preemption import EXIT_PREEMPTED, Preempted
from eebench.training.regimes import BACKBONE_PHASE, REGIMES, Phase, Regime
from eebench.training.resume import ResumeFile, ResumeInUse, ResumeMismatch

__all__ = [
    "BACKBONE_PHASE", "EXIT_PREEMPTED", "REGIMES", "Phase", "Preempted", "Regime", "ResumeFile", "ResumeInUse",
    "ResumeMismatch", "TrainingConfig", "World", "predict", "process_world", "select_device", "train_phases",
]
