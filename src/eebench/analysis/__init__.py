"""Paper B's framework for analysing multi-exit models (§3, Appendix B): measures of a trained model (or of its
training) that explain the regimes' results. Each is a pure function tested on hand-made cases; the workflow
reads them from trained checkpoints."""
from eebench.analysis.dominance import gradient_dominance
from eebench.analysis.information import binned_mutual_information
from eebench.analysis.rank import numerical_rank

__all__ = ["binned_mutual_information", "gradient_dominance", "numerical_rank"]
