rule train_model:
    input:
        unpack(get_train_inputs),
    output:
        "results/models/{dataset}/{backbone}/{regime}/seed{seed}/model.pt",
    log:
        "results/logs/train_model/{dataset}/{backbone}/{regime}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train_model/{dataset}/{backbone}/{regime}/seed{seed}.tsv"
    params:
        model=get_model_json,
        training=get_training_json,
        init=get_init_flag,
        # Outside the declared output: Snakemake deletes a failed job's outputs, and the retry resumes from here.
        resume="results/resume/train_model/{dataset}/{backbone}/{regime}/seed{seed}.pt",
        nproc=get_nproc("train_model"),
    threads: get_resource("train_model", "threads")
    resources:
        gpu=get_resource("train_model", "gpu"),
        mem_mb=get_resource("train_model", "mem_mb"),
        runtime=get_resource("train_model", "runtime"),
        slurm_partition=get_resource("train_model", "partition"),
    conda:
        ENV
    shell:
        "eebench train --data {input.data} --model {params.model} --training {params.training} "
        "--regime {wildcards.regime} --seed {wildcards.seed} {params.init} --threads {threads} "
        "--nproc {params.nproc} --resume {params.resume} --out {output} > {log} 2>&1"


rule train_static_head:
    input:
        data="results/data/{dataset}.npz",
    output:
        "results/models/{dataset}/{backbone}/static/head{head}/seed{seed}/model.pt",
    log:
        "results/logs/train_static_head/{dataset}/{backbone}/head{head}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train_static_head/{dataset}/{backbone}/head{head}/seed{seed}.tsv"
    params:
        model=get_model_json,
        training=get_training_json,
        resume="results/resume/train_static_head/{dataset}/{backbone}/head{head}/seed{seed}.pt",
        nproc=get_nproc("train_static_head"),
    threads: get_resource("train_static_head", "threads")
    resources:
        gpu=get_resource("train_static_head", "gpu"),
        mem_mb=get_resource("train_static_head", "mem_mb"),
        runtime=get_resource("train_static_head", "runtime"),
        slurm_partition=get_resource("train_static_head", "partition"),
    conda:
        ENV
    shell:
        "eebench train-static-head --data {input.data} --model {params.model} "
        "--training {params.training} --head {wildcards.head} --seed {wildcards.seed} "
        "--threads {threads} --nproc {params.nproc} --resume {params.resume} --out {output} > {log} 2>&1"
