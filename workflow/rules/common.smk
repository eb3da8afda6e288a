import re
import shlex

from eebench import config as ee
from eebench import targets
from eebench.render import spec as ee_render_spec
from eebench.render import report as ee_report

# Validated once, strictly, before any job: a suite's include: files merged, the schema (../schemas/
# config.schema.yaml, its defaults filled in as snakemake.utils.validate fills them, but an error is one line
# naming the key, not validate's dump of the schema), then what the schema cannot see. `eebench check-config`
# runs the same function.
targets.prepare_config(config)
ee.freeze(config)  # no rule changes it from here on; lookups then skip re-serialising it

ENV = "../../environment.yml"


def _one_of(names):
    return "|".join(re.escape(name) for name in names) or "no-name"


wildcard_constraints:
    dataset=_one_of(config.get("datasets", {})),
    model=_one_of(config["models"]),
    regime=_one_of(ee.registries()["regime"].names()),
    analysis=_one_of(ee.registries()["analysis"].names()),
    table=_one_of(config.get("tables", {})),
    figure=_one_of(config.get("figures", {})),
    seed=r"\d+",
    block=r"\d+",


# Which model entries the training rules train and which the import rules import (models evaluated from their own
# caches, `caches:`): both write results/logits/{model}/..., so each rule takes its own models only.
TRAINED_MODELS = _one_of(targets.external_models(config, external=False))
EXTERNAL_MODELS = _one_of(targets.external_models(config))


localrules:
    prepare_dataset,
    import_logits,
    import_static_logits,
    compute_metrics,
    compute_bee,
    analyze_layers,
    render_table,
    render_figure,
    render_readings,
    render_body,
    build_paper,


def get_final_outputs():
    return targets.final_outputs(config)


def get_resource(rule_name, key):
    """The job's resource: its model setting's own (``models.<name>.resources``), else the rule's, else the
    default (a function of the wildcards, as the model is one)."""
    return lambda wildcards: targets.resource(config, rule_name, key, getattr(wildcards, "model", None))


def get_nproc(rule_name):
    """Data-parallel processes of a training job: one per requested GPU (1 on the CPU)."""
    return lambda wildcards: max(1, targets.resource(config, rule_name, "gpu", getattr(wildcards, "model", None)))


def get_dataset_loader(wildcards):
    return ee.dataset_loader(config, wildcards.dataset)


def get_dataset_params(wildcards):
    return targets.shell_json(ee.dataset_params(config, wildcards.dataset))


def get_network_json(wildcards):
    return targets.shell_json(targets.train_settings(config, wildcards.model, wildcards.regime))


def get_static_network_json(wildcards):
    return targets.shell_json(targets.static_settings(config, wildcards.model, wildcards.block))


def get_training_json(wildcards):
    return targets.shell_json(targets.training_settings(config, wildcards.model, wildcards.get("regime")))


def get_meta_json(wildcards):
    return targets.shell_json(targets.run_meta(config, wildcards.model))


def get_external_source(wildcards):
    """The cache a model evaluated from its own caches names for this run (or static head)."""
    return targets.external_source(config, wildcards.model, wildcards.seed, wildcards.get("head"))


def get_external_meta(wildcards):
    return targets.shell_json(
        targets.external_meta(config, wildcards.model, wildcards.get("regime"), wildcards.seed, wildcards.get("head"))
    )


def get_model_data(wildcards):
    return targets.data_path(ee.model_entry(config, wildcards.model)["dataset"])


def get_train_inputs(wildcards):
    return targets.train_inputs(config, wildcards.model, wildcards.regime, wildcards.seed)


def get_init_flag(wildcards, input):
    return f"--init {input.init}" if "init" in input.keys() else ""


def get_metrics_inputs(wildcards):
    return targets.metrics_inputs(config, wildcards.model, wildcards.regime, wildcards.seed)


def get_metrics_plan(wildcards):
    return targets.shell_json(targets.metrics_plan(config, wildcards.model, wildcards.regime, wildcards.seed))


def get_bee_inputs(wildcards):
    return targets.bee_inputs(config, wildcards.model, wildcards.regime, wildcards.seed)


def get_bee_criteria(wildcards):
    criteria = targets.bee_plan(config, wildcards.model, wildcards.regime, wildcards.seed)
    return " ".join(shlex.quote(criterion) for criterion in criteria)


def get_analyzed_model(wildcards):
    return targets.trained_model_path(config, wildcards.model, wildcards.regime, wildcards.seed)


def get_analysis_settings(wildcards):
    return targets.shell_json(ee.analysis_settings(config, wildcards.analysis))


def get_mode_connectivity_inputs(wildcards):
    return targets.mode_connectivity_inputs(
        config, wildcards.model, wildcards.regime_a, wildcards.regime_b, wildcards.seed
    )


def get_checkpoint_analysis_settings(name):
    """The settings of a whole-model analysis (paper B §3.2, App. B), as params: changing them reruns it."""

    def settings(wildcards):
        return targets.shell_json(ee.analysis_settings(config, name))

    return settings


def get_table_inputs(wildcards):
    return targets.render_dependencies(config, "tables", wildcards.table)


def get_figure_inputs(wildcards):
    return targets.render_dependencies(config, "figures", wildcards.figure)


def get_table_input_files(wildcards):
    return targets.render_inputs(config, "tables", wildcards.table)


def get_figure_input_files(wildcards):
    return targets.render_inputs(config, "figures", wildcards.figure)


def get_render_kind(section):
    """Input function for the kind of table or figure named by the {table} / {figure} wildcard."""

    def render_kind(wildcards):
        return config[section][wildcards[section[:-1]]]["kind"]

    return render_kind


def get_render_spec(section):
    def render_spec(wildcards):
        return targets.shell_json(targets.render_spec(config, section, wildcards[section[:-1]]))

    return render_spec


def get_report_category(section):
    """The report's category of a table or figure: the paper it regenerates (``snakemake --report``)."""

    def report_category(wildcards):
        return ee_report.category(config, section, wildcards[section[:-1]])

    return report_category


def get_report_caption(section):
    """The report caption's text (reST): which paper table or figure this one regenerates."""

    def report_caption(wildcards):
        return ee_report.caption(config, section, wildcards[section[:-1]])

    return report_caption


def get_code(*modules):
    return targets.code_files(*modules)
