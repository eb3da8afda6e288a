"""Early-exit decisions on cached logits: criteria (a registry), per-sample performance, threshold sweeps."""
from eebench.exits.criteria import CRITERIA
from eebench.exits.performance import PERFORMANCE_METRICS, per_sample_performance
from eebench.exits.sweep import load_cache, run_sweep, sweep

__all__ = ["CRITERIA", "PERFORMANCE_METRICS", "load_cache", "per_sample_performance", "run_sweep", "sweep"]
