# The budget rule and the budgets are spelled in the path, so each table's settings get their own file.
rule compute_budgets:
    input:
        sweep="results/sweeps/{model}/{regime}/{criterion}/seed{seed}.csv",
        code=get_code("metrics"),
    output:
        "results/budgets/{model}/{regime}/{criterion}/{rule}/{budgets}/seed{seed}.csv",
    log:
        "results/logs/compute_budgets/{model}/{regime}/{criterion}/{rule}/{budgets}/seed{seed}.log",
    params:
        fractions=get_budget_fractions,
    conda:
        ENV
    shell:
        "eebench budgets --sweep {input.sweep} --rule {wildcards.rule} --budgets {params.fractions} "
        "--out {output} > {log} 2>&1"


rule compute_bee:
    input:
        unpack(get_bee_inputs),
    output:
        "results/bee/{model}/{regime}/{criterion}/seed{seed}.csv",
    log:
        "results/logs/compute_bee/{model}/{regime}/{criterion}/seed{seed}.log",
    conda:
        ENV
    shell:
        "eebench bee --sweep {input.sweep} --static {input.static} --out {output} > {log} 2>&1"
