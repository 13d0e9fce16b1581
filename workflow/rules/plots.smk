# Stage 7: seaborn figures for the report (accuracy vs time step, depth series, L x T heatmap, learned
# T-GIM matrices, firing rates, training curves). Failed cells are left out; an empty figure says why.
# Figures: FIGURES in common.smk.


rule plots:
    input:
        cells=get_suite_cells,
        table=f"{SUITE_DIR}/tables/cells.csv",
    output:
        **figure_outputs(),
    log:
        f"{SUITE_DIR}/logs/plots.log",
    params:
        manifest=cell_manifest,
        suite=lambda wc: wc.suite,
    conda:
        "../../envs/lmht.yaml"
    script:
        "../scripts/plots.py"
