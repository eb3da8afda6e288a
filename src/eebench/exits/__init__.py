"""Early-exit decisions on cached logits: criteria (``criteria.CRITERIA``, a registry), per-sample performance
(``performance``), threshold sweeps (``sweep``). Nothing is imported here, so that the training and caching
processes, which need ``performance`` only, do not pay for pandas and scipy; :func:`criterion_setting_schema`
(eebench.exits.criteria) is imported on first use."""


def __getattr__(name: str):
    if name == "criterion_setting_schema":
        from eebench.exits.criteria import criterion_setting_schema

        return criterion_setting_schema
    raise AttributeError(f"module 'eebench.exits' has no attribute {name!r}")
