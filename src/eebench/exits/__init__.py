"""Early-exit decisions on cached logits: criteria (``criteria.CRITERIA``, a registry), per-sample performance
(``performance``), threshold sweeps (``sweep``). Nothing is imported here, so that the training and caching
processes, which need ``performance`` only, do not pay for pandas and scipy."""
