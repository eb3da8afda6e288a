"""Paper B's framework for analysing multi-exit models (§3, Appendix B): measures of a trained model (or of its
training) that explain the regimes' results. Each is a pure function tested on hand-made cases; the workflow
reads them from trained checkpoints."""
from typing import Any

from eebench.analysis.dominance import gradient_dominance
from eebench.analysis.information import MI_ESTIMATORS, binned_mutual_information, kde_mutual_information
from eebench.analysis.rank import numerical_rank, variance_rank, variance_ranks

__all__ = ["MI_ESTIMATORS", "analysis_schema", "binned_mutual_information", "gradient_dominance",
           "kde_mutual_information", "numerical_rank", "variance_rank", "variance_ranks"]


def analysis_schema() -> dict[str, Any]:
    """The config schema's top-level ``analysis`` section, generated from the analyses' declarations
    (eebench.declare): one object per per-layer analysis (eebench.analysis.layers.LAYER_ANALYSES) and per
    whole-model analysis (eebench.analysis.checkpoint.CHECKPOINT_ANALYSES), whose keys are its parameters."""
    from eebench.analysis.checkpoint import CHECKPOINT_ANALYSES
    from eebench.analysis.layers import LAYER_ANALYSES

    return {
        "type": "object",
        "description": "Settings of the analyses of trained models (paper B §3.2-3.4, App. B), one per analysis: "
                       "per-layer analyses (a figure of kind layer_profile names one), mode connectivity and the "
                       "loss landscape (figures of those kinds).",
        "additionalProperties": False,
        "properties": {name: registry.parameters_schema(name)
                       for registry in (LAYER_ANALYSES, CHECKPOINT_ANALYSES) for name in registry.names()},
    }
