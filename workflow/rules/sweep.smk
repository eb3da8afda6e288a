rule sweep_exits:
    input:
        logits="results/logits/{dataset}/{backbone}/{regime}/seed{seed}.npz",
        code=get_code("exits"),
    output:
        "results/sweeps/{dataset}/{backbone}/{regime}/{criterion}/seed{seed}.csv",
    log:
        "results/logs/sweep_exits/{dataset}/{backbone}/{regime}/{criterion}/seed{seed}.log",
    params:
        max_points=get_max_points,
    conda:
        ENV
    shell:
        "eebench sweep --logits {input.logits} --criterion {wildcards.criterion} "
        "--max-points {params.max_points} --out {output} > {log} 2>&1"
