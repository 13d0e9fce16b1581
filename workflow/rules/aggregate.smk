# Stage 6: every cell's run record -> the per-run table (tables/runs.csv, the source of every other
# number) and the catalog's tables (lmht.experiment.catalog.TABLES) as CSV, Markdown, LaTeX and HTML,
# each verdict with n, Δ, CI and p. Failed or missing cells appear as "not run" with the reason;
# aggregation never fails because of them.


rule aggregate:
    input:
        cells=get_suite_cells,
        claims=str(REPO / config["paper_claims"]),
    output:
        runs=f"{SUITE_DIR}/tables/runs.csv",
        failed=f"{SUITE_DIR}/tables/failed_cells.txt",
        **table_outputs(),
    log:
        f"{SUITE_DIR}/logs/aggregate.log",
    conda:
        "../../envs/lmht.yaml"
    script:
        "../scripts/aggregate.py"
