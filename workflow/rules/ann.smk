# Stage 1: QCFS ANN pre-training, once per (dataset, arch, Q, seed); every convert and hybrid cell with
# that Q and seed starts from this ANN's checkpoint.


rule train_ann:
    input:
        unpack(get_data),
    output:
        metrics=f"{ANN_DIR}/metrics.json",
    log:
        f"{ANN_DIR}/run.log",
    benchmark:
        f"{ANN_DIR}/benchmark.tsv"
    params:
        mode="ann",
        outdir=outdir,
        args=cli_args("ann"),
        launcher=launcher("ann"),
        requires="",
    threads: job_resource("ann", "threads", 1)
    resources:
        gpu=job_resource("ann", "gpu", 0),
        runtime=job_resource("ann", "runtime", 60),
        mem_mb=job_resource("ann", "mem_mb", 4000),
        cpus_per_task=job_resource("ann", "cpus_per_task", 1),
    conda:
        "../../envs/lmht.yaml"
    shell:
        CELL_SHELL
