# One rule caches every trained model, multi-exit or static: {run} is the model's path below results/models
# (<model>/<regime>/seed<seed> or <model>/static/block<block>/seed<seed>).
rule cache_logits:
    input:
        checkpoint="results/models/{run}/model.pt",
        data=get_run_data,
    output:
        "results/logits/{run}.npz",
    log:
        "results/logs/cache_logits/{run}.log",
    benchmark:
        "results/benchmarks/cache_logits/{run}.tsv"
    threads: get_resource("cache_logits", "threads")
    resources:
        gpu=get_resource("cache_logits", "gpu"),
        mem_mb=get_resource("cache_logits", "mem_mb"),
        runtime=get_resource("cache_logits", "runtime"),
        slurm_partition=get_resource("cache_logits", "partition"),
    conda:
        ENV
    shell:
        "eebench cache-logits --checkpoint {input.checkpoint} --data {input.data} "
        "--threads {threads} --out {output} > {log} 2>&1"
