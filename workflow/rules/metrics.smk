# One job per trained run (model, regime, seed) writes the run's sweeps and budget tables that any table or figure
# reads: one process (one start of Python, one read of the logit cache) instead of a job per file. What to write is
# the run's plan (eebench.targets.metrics_plan), a param: changing what any table or figure reads of the run, a
# criterion setting or `sweep: max_points` reruns the run's metrics. It never needs the static heads.
rule compute_metrics:
    input:
        unpack(get_metrics_inputs),
    output:
        directory("results/metrics/{model}/{regime}/seed{seed}"),
    log:
        "results/logs/compute_metrics/{model}/{regime}/seed{seed}.log",
    params:
        plan=get_metrics_plan,
    conda:
        ENV
    shell:
        "eebench metrics --logits {input.logits} --plan {params.plan} --out {output} > {log} 2>&1"


# Only for a run some table or figure reads B_EE of: one job writes the B_EE of every criterion read (each from
# the run's sweep, in its metric directory) against the static heads, which only this job waits for. Its
# criteria (eebench.targets.bee_plan) are a param: adding or removing one reruns it.
rule compute_bee:
    input:
        unpack(get_bee_inputs),
    output:
        directory("results/bee/{model}/{regime}/seed{seed}"),
    log:
        "results/logs/compute_bee/{model}/{regime}/seed{seed}.log",
    params:
        criteria=get_bee_criteria,
    conda:
        ENV
    shell:
        "eebench bee-run --metrics {input.metrics} --static {input.static} --criteria {params.criteria} "
        "--out {output} > {log} 2>&1"
