rule train_model:
    input:
        unpack(get_train_inputs),
    output:
        model="results/models/{model}/{regime}/seed{seed}/model.pt",
        # The logit cache (val and test logits of every head, labels, FLOPs) is written by the training job
        # itself: a separate job would import torch and load the model and data again for a moment's work.
        logits="results/logits/{model}/{regime}/seed{seed}.npz",
    log:
        "results/logs/train_model/{model}/{regime}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train_model/{model}/{regime}/seed{seed}.tsv"
    params:
        network=get_network_json,
        training=get_training_json,
        meta=get_meta_json,
        init=get_init_flag,
        # Outside the declared output: Snakemake deletes a failed job's outputs, and the retry resumes from here.
        resume="results/resume/train_model/{model}/{regime}/seed{seed}.pt",
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
        "eebench train --data {input.data} --model {params.network} --training {params.training} "
        "--meta {params.meta} --regime {wildcards.regime} --seed {wildcards.seed} {params.init} "
        "--threads {threads} --nproc {params.nproc} --resume {params.resume} --out {output.model} "
        "--logits {output.logits} > {log} 2>&1"


rule train_static_head:
    input:
        data=get_model_data,
    output:
        model="results/models/{model}/static/block{block}/seed{seed}/model.pt",
        logits="results/logits/{model}/static/block{block}/seed{seed}.npz",
    log:
        "results/logs/train_static_head/{model}/block{block}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train_static_head/{model}/block{block}/seed{seed}.tsv"
    params:
        network=get_static_network_json,
        training=get_training_json,
        meta=get_meta_json,
        resume="results/resume/train_static_head/{model}/block{block}/seed{seed}.pt",
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
        "eebench train-static-head --data {input.data} --model {params.network} "
        "--training {params.training} --meta {params.meta} --block {wildcards.block} --seed {wildcards.seed} "
        "--threads {threads} --nproc {params.nproc} --resume {params.resume} --out {output.model} "
        "--logits {output.logits} > {log} 2>&1"
