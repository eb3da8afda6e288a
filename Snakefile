# eebench: regenerate the tables and figures of the early-exit papers from config.yaml.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/cache.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/render.smk"


rule all:
    input:
        get_final_outputs(),
    default_target: True
