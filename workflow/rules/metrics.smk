rule compute_budgets:
    input:
        sweep="results/sweeps/{dataset}/{backbone}/{regime}/{criterion}/seed{seed}.csv",
        code=get_code("metrics"),
    output:
        "results/budgets/{dataset}/{backbone}/{regime}/{criterion}/seed{seed}.csv",
    log:
        "results/logs/compute_budgets/{dataset}/{backbone}/{regime}/{criterion}/seed{seed}.log",
    params:
        budgets=" ".join(str(b) for b in config["budgets"]),
    conda:
        ENV
    shell:
        "eebench budgets --sweep {input.sweep} --budgets {params.budgets} --out {output} > {log} 2>&1"


rule compute_bee:
    input:
        unpack(get_bee_inputs),
    output:
        "results/bee/{dataset}/{backbone}/{regime}/{criterion}/seed{seed}.csv",
    log:
        "results/logs/compute_bee/{dataset}/{backbone}/{regime}/{criterion}/seed{seed}.log",
    conda:
        ENV
    shell:
        "eebench bee --sweep {input.sweep} --static {input.static} --out {output} > {log} 2>&1"
