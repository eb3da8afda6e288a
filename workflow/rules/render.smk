rule render_table:
    input:
        metrics=get_table_inputs,
        # The comparison with the paper's values and the claims read their modules and the transcribed numbers.
        code=get_code("render", "sweep_metrics", "acceptance", "claims", "claim_checks", "paper_numbers"),
    output:
        tex="paper/tables/{table}.tex",
        numbers=report(
            "paper/tables/{table}.csv",
            caption="../report/item.rst",
            category=get_report_category("tables"),
            subcategory="Tables",
        ),
    log:
        "results/logs/render_table/{table}.log",
    params:
        kind=get_render_kind("tables"),
        spec=get_render_spec("tables"),
        # The files it reads: inside the metric directories its input waits for, where those are what it reads.
        inputs=get_table_input_files,
        report_caption=get_report_caption("tables"),
    conda:
        ENV
    shell:
        "eebench render-table --kind {params.kind} --spec {params.spec} --inputs {params.inputs} "
        "--out {output.tex} > {log} 2>&1"


rule render_figure:
    input:
        metrics=get_figure_inputs,
        code=get_code("render", "sweep_metrics"),
    output:
        pdf="paper/figures/{figure}.pdf",
        png=report(
            "paper/figures/{figure}.png",
            caption="../report/item.rst",
            category=get_report_category("figures"),
            subcategory="Figures",
        ),
        numbers="paper/figures/{figure}.csv",
    log:
        "results/logs/render_figure/{figure}.log",
    params:
        kind=get_render_kind("figures"),
        spec=get_render_spec("figures"),
        # The files it reads: inside the metric directories its input waits for, where those are what it reads.
        inputs=get_figure_input_files,
        report_caption=get_report_caption("figures"),
    conda:
        ENV
    shell:
        "eebench render-figure --kind {params.kind} --spec {params.spec} --inputs {params.inputs} "
        "--out {output.pdf} > {log} 2>&1"


rule render_readings:
    input:
        code=get_code("readings"),
    output:
        "paper/readings.tex",
    log:
        "results/logs/render_readings/readings.log",
    conda:
        ENV
    shell:
        "eebench readings --format latex --out {output} > {log} 2>&1"


rule render_body:
    input:
        code=get_code("render"),
    output:
        "paper/body.tex",
    log:
        "results/logs/render_body/body.log",
    params:
        spec=lambda wildcards: targets.shell_json(ee_render_spec.body_spec(config)),
    conda:
        ENV
    shell:
        "eebench render-body --spec {params.spec} --out {output} > {log} 2>&1"
