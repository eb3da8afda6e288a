rule sweep_exits:
    input:
        logits="results/logits/{model}/{regime}/seed{seed}.npz",
        code=get_code("exits"),
    output:
        "results/sweeps/{model}/{regime}/{criterion}/seed{seed}.csv",
    log:
        "results/logs/sweep_exits/{model}/{regime}/{criterion}/seed{seed}.log",
    params:
        max_points=get_max_points,
        # A named setting under `criteria:` is a registered criterion with parameters; changing them reruns it.
        criterion=get_criterion,
        criterion_params=get_criterion_params,
    conda:
        ENV
    shell:
        "eebench sweep --logits {input.logits} --criterion {params.criterion} --params {params.criterion_params} "
        "--name {wildcards.criterion} --max-points {params.max_points} --out {output} > {log} 2>&1"
