# One job per trained run (model, regime, seed) writes every metric file of that run that a table or figure reads:
# its sweeps, budget tables and B_EE, one process (one start of Python, one read of the logit cache) instead of a
# job per file. What to write is the run's plan (eebench.targets.metrics_plan), a param: changing what any table
# or figure reads of the run, a criterion setting or `sweep: max_points` reruns the run's metrics.
rule compute_metrics:
    input:
        unpack(get_metrics_inputs),
    output:
        directory("results/metrics/{model}/{regime}/seed{seed}"),
    log:
        "results/logs/compute_metrics/{model}/{regime}/seed{seed}.log",
    params:
        plan=get_metrics_plan,
        static=get_static_flag,
    conda:
        ENV
    shell:
        "eebench metrics --logits {input.logits} {params.static} --plan {params.plan} --out {output} "
        "> {log} 2>&1"
