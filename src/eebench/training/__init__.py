from eebench.training.loop import TrainingConfig, predict, select_device, train_phases
from eebench.training.regimes import BACKBONE_PHASE, REGIMES, Phase, Regime

__all__ = ["BACKBONE_PHASE", "REGIMES", "Phase", "Regime", "TrainingConfig", "predict", "select_device", "train_phases"]
