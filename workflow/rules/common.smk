from snakemake.utils import validate

from eebench import config as ee
from eebench import targets

# Strict first: the schema rejects unknown keys and names; then names and cross references the schema
# cannot see (e.g. a table that uses a dataset with no entry under `datasets:`).
validate(config, "../schemas/config.schema.yaml")
ee.check_config(config)

ENV = "../../environment.yml"


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    backbone="|".join(config["backbones"]),
    regime="|".join(ee.registries()["regime"].names()),
    criterion="|".join(ee.registries()["criterion"].names()),
    table="|".join(config.get("tables", {})) or "no-table",
    figure="|".join(config.get("figures", {})) or "no-figure",
    seed=r"\d+",
    head=r"\d+",


localrules:
    prepare_dataset,
    sweep_exits,
    compute_budgets,
    compute_bee,
    render_table,
    render_figure,


def get_final_outputs():
    return targets.final_outputs(config)


def get_resource(rule_name, key):
    return targets.resource(config, rule_name, key)


def get_nproc(rule_name):
    """Data-parallel processes of a training job: one per requested GPU (1 on the CPU)."""
    return max(1, get_resource(rule_name, "gpu"))


def get_dataset_params(wildcards):
    return ee.shell_json(config["datasets"][wildcards.dataset])


def get_model_json(wildcards):
    return ee.shell_json(ee.model_settings(config, wildcards.backbone))


def get_training_json(wildcards):
    return ee.shell_json(config["training"])


def get_train_inputs(wildcards):
    return targets.train_inputs(config, wildcards.dataset, wildcards.backbone, wildcards.regime, wildcards.seed)


def get_max_points(wildcards):
    return config["sweep"]["max_points"]


def get_init_flag(wildcards, input):
    return f"--init {input.init}" if "init" in input.keys() else ""


def get_run_data(wildcards):
    return targets.run_data(wildcards.run)


def get_bee_inputs(wildcards):
    return targets.bee_inputs(config, wildcards.dataset, wildcards.backbone, wildcards.regime,
                              wildcards.criterion, wildcards.seed)


def get_table_inputs(wildcards):
    return targets.render_inputs(config, "tables", wildcards.table)


def get_figure_inputs(wildcards):
    return targets.render_inputs(config, "figures", wildcards.figure)


def get_render_kind(section):
    """Input function for the kind of table or figure named by the {table} / {figure} wildcard."""

    def render_kind(wildcards):
        return config[section][wildcards[section[:-1]]]["kind"]

    return render_kind


def get_render_spec(section):
    def render_spec(wildcards):
        return ee.shell_json(targets.render_options(config[section][wildcards[section[:-1]]]))

    return render_spec


def get_code(*modules):
    return targets.code_files(*modules)
