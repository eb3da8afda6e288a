# eebench: regenerate the tables and figures of the early-exit papers from one config file.
from snakemake.utils import min_version

min_version("9.0")


# config.yaml is the default experiment; a config file given with --configfile is the whole experiment
# instead (merged over the default, it would inherit the default's tables). --config KEY=VALUE still overrides.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/worker.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/render.smk"
include: "workflow/rules/paper.smk"


rule all:
    input:
        get_final_outputs(),
    default_target: True
