# Stage 4: direct STBP training of an SNN with LM-HT (T-GIM), M-HT (multi-level, no T-GIM), IF or
# LIF neurons (Tables 1 and 3, the L x T and T-GIM studies).


rule train_direct:
    input:
        unpack(get_data),
    output:
        metrics=f"{DIRECT_DIR}/metrics.json",
    log:
        f"{DIRECT_DIR}/run.log",
    benchmark:
        f"{DIRECT_DIR}/benchmark.tsv"
    params:
        mode="direct",
        outdir=outdir,
        args=cli_args("direct"),
        launcher=launcher("direct"),
        requires="",
    threads: job_resource("direct", "threads", 1)
    resources:
        gpu=job_resource("direct", "gpu", 0),
        runtime=job_resource("direct", "runtime", 60),
        mem_mb=job_resource("direct", "mem_mb", 4000),
        cpus_per_task=job_resource("direct", "cpus_per_task", 1),
    conda:
        "../../envs/lmht.yaml"
    shell:
        CELL_SHELL
