# Paper B's analyses of trained models: per-layer measures (§3.3-3.4, Figs 4-5) of one run, mode connectivity
# (§3.2, Fig. 3) between the runs of two regimes and the loss landscape (Appendix B, Fig. 6) around one run. They
# read the checkpoints, never train; their settings (the top-level `analysis:` section) are params, so changing
# them reruns them. The two whole-model analyses are not local rules: at paper scale they evaluate a network at
# every point of a path or grid, so they ask for resources like training does.


wildcard_constraints:
    regime_a=_one_of(ee.registries()["regime"].names()),
    regime_b=_one_of(ee.registries()["regime"].names()),


rule connect_modes:
    input:
        unpack(get_mode_connectivity_inputs),
    output:
        "results/analysis/mode_connectivity/{model}/{regime_a}-{regime_b}/seed{seed}.csv",
    log:
        "results/logs/connect_modes/{model}/{regime_a}-{regime_b}/seed{seed}.log",
    benchmark:
        "results/benchmarks/connect_modes/{model}/{regime_a}-{regime_b}/seed{seed}.tsv"
    params:
        settings=get_checkpoint_analysis_settings("mode_connectivity"),
    threads: get_resource("connect_modes", "threads")
    resources:
        gpu=get_resource("connect_modes", "gpu"),
        mem_mb=get_resource("connect_modes", "mem_mb"),
        runtime=get_resource("connect_modes", "runtime"),
        slurm_partition=get_resource("connect_modes", "partition"),
    conda:
        ENV
    shell:
        "eebench connect-modes --checkpoints {input.model_a} {input.model_b} --data {input.data} "
        "--params {params.settings} --threads {threads} --out {output} > {log} 2>&1"


rule map_loss_landscape:
    input:
        model=get_analyzed_model,
        data=get_model_data,
        code=get_code("analysis"),
    output:
        "results/analysis/loss_landscape/{model}/{regime}/seed{seed}.csv",
    log:
        "results/logs/map_loss_landscape/{model}/{regime}/seed{seed}.log",
    benchmark:
        "results/benchmarks/map_loss_landscape/{model}/{regime}/seed{seed}.tsv"
    params:
        settings=get_checkpoint_analysis_settings("loss_landscape"),
    threads: get_resource("map_loss_landscape", "threads")
    resources:
        gpu=get_resource("map_loss_landscape", "gpu"),
        mem_mb=get_resource("map_loss_landscape", "mem_mb"),
        runtime=get_resource("map_loss_landscape", "runtime"),
        slurm_partition=get_resource("map_loss_landscape", "partition"),
    conda:
        ENV
    shell:
        "eebench landscape --checkpoint {input.model} --data {input.data} --params {params.settings} "
        "--threads {threads} --out {output} > {log} 2>&1"


# Paper B §3.3-3.4: one forward pass over test images, a local rule.
rule analyze_layers:
    input:
        model=get_analyzed_model,
        data=get_model_data,
        code=get_code("analysis"),
    output:
        "results/analysis/{analysis}/{model}/{regime}/seed{seed}.csv",
    log:
        "results/logs/analyze_layers/{analysis}/{model}/{regime}/seed{seed}.log",
    params:
        settings=get_analysis_settings,
    conda:
        ENV
    shell:
        "eebench analyze --analysis {wildcards.analysis} --checkpoint {input.model} --data {input.data} "
        "--params {params.settings} --out {output} > {log} 2>&1"
