# Stage 7: the catalog's figures (lmht.experiment.catalog.FIGURES), seaborn. Failed cells are left out;
# an empty figure says why.


rule plots:
    input:
        cells=get_suite_cells,
        claims=str(REPO / config["paper_claims"]),
    output:
        **figure_outputs(),
    log:
        f"{SUITE_DIR}/logs/plots.log",
    conda:
        "../../envs/lmht.yaml"
    script:
        "../scripts/plots.py"
