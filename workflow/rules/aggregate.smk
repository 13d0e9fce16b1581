# Stage 6: every cell's metrics.json -> tables shaped like the paper's (CSV + Markdown + LaTeX + HTML)
# with mean +- std over seeds, the paper's value and the difference. Failed or missing cells appear as
# "not run" with the reason; aggregation never fails because of them. Tables: TABLES in common.smk.


rule aggregate:
    input:
        cells=get_suite_cells,
        claims=get_paper_claims,
    output:
        failed=f"{SUITE_DIR}/tables/failed_cells.txt",
        **table_outputs(),
    log:
        f"{SUITE_DIR}/logs/aggregate.log",
    params:
        manifest=cell_manifest,
        tolerance=config["tolerance"],
        suite=lambda wc: wc.suite,
    conda:
        "../../envs/lmht.yaml"
    script:
        "../scripts/aggregate.py"
