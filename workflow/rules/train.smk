rule train_model:
    wildcard_constraints:
        model=TRAINED_MODELS,
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
    wildcard_constraints:
        model=TRAINED_MODELS,
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


# A model evaluated from its own caches (`models.<name>.caches`) trains nothing: each cache it names is checked as
# every reader checks a cache (eebench.logit_cache.check_cache) and copied to where a trained run's cache is, its
# meta naming the config's model, regime and seed, so that everything downstream reads it as a trained run's. The
# source is the input: a newer cache there reruns what reads it.
rule import_logits:
    wildcard_constraints:
        model=EXTERNAL_MODELS,
    input:
        source=get_external_source,
    output:
        "results/logits/{model}/{regime}/seed{seed}.npz",
    log:
        "results/logs/import_logits/{model}/{regime}/seed{seed}.log",
    params:
        meta=get_external_meta,
    conda:
        ENV
    shell:
        "eebench import-logits --source {input.source} --meta {params.meta} --out {output} > {log} 2>&1"


# Its static caches (one single-head model per head, paper A's baseline), for B_EE.
rule import_static_logits:
    wildcard_constraints:
        model=EXTERNAL_MODELS,
        head=r"\d+",
    input:
        source=get_external_source,
    output:
        "results/logits/{model}/static/head{head}/seed{seed}.npz",
    log:
        "results/logs/import_static_logits/{model}/head{head}/seed{seed}.log",
    params:
        meta=get_external_meta,
    conda:
        ENV
    shell:
        "eebench import-logits --source {input.source} --meta {params.meta} --out {output} > {log} 2>&1"
