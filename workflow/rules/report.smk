# Stage 8: the suite's report, one self-contained HTML page that reads top-down: summary (what ran,
# verdict counts, failures), the three open questions answered from the data with their figures and
# tables, the paper's claims and tables, our variants, every cell (lmht.experiment.results.report).
# `snakemake --report` still builds Snakemake's own report of the same tables and figures.


rule report_html:
    input:
        tables=rules.aggregate.output.runs,
        figures=list(rules.plots.output),
        claims=str(REPO / config["paper_claims"]),
    output:
        html=report(f"{SUITE_DIR}/report.html", caption=str(REPO / "workflow/report/report.rst"),
                    category="Report"),
    log:
        f"{SUITE_DIR}/logs/report.log",
    conda:
        "../../envs/lmht.yaml"
    script:
        "../scripts/report.py"
