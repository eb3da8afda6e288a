rule prepare_dataset:
    output:
        "results/data/{dataset}.npz",
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    params:
        loader=get_dataset_loader,
        settings=get_dataset_params,
    conda:
        ENV
    shell:
        "eebench prepare-data --dataset {params.loader} --params {params.settings} "
        "--out {output} > {log} 2>&1"
