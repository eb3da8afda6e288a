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
    conda:
        ENV
    shell:
        "eebench sweep --logits {input.logits} --criterion {wildcards.criterion} "
        "--max-points {params.max_points} --out {output} > {log} 2>&1"
