"""Paper B's framework for analysing multi-exit models (§3, Appendix B): measures of a trained model (or of its
training) that explain the regimes' results. Each is a pure function tested on hand-made cases; the workflow
reads them from trained checkpoints."""
from eebench.analysis.dominance import gradient_dominance
from eebench.analysis.information import MI_ESTIMATORS, binned_mutual_information, kde_mutual_information
from eebench.analysis.rank import numerical_rank, variance_rank, variance_ranks

__all__ = ["MI_ESTIMATORS", "binned_mutual_information", "gradient_dominance", "kde_mutual_information",
           "numerical_rank", "variance_rank", "variance_ranks"]
