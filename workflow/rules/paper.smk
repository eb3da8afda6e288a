# The paper as a PDF: asked for by name (`snakemake --cores 2 paper/main.pdf`, `make paper`), never by `all`,
# so the default run needs no LaTeX.
rule build_paper:
    input:
        tex="paper/main.tex",
        generated=get_final_outputs(),  # what main.tex reads: the default target's files
        code=get_code("latex")  # outside render/: editing it reruns no table or figure,
    output:
        "paper/main.pdf",
    log:
        eebench="results/logs/build_paper.log",
        latex="results/logs/build_paper/main.log",
    conda:
        ENV
    shell:
        "eebench build-paper --tex {input.tex} --out {output} --log {log.latex} > {log.eebench} 2>&1"
