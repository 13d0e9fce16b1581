# Stage 3: hybrid training. The QCFS ANN becomes an LM-HT SNN with L levels and T steps (exact
# initialization: same predictions as the ANN when Q = T*L), then STBP fine-tuning (Table 4).


rule finetune_hybrid:
    input:
        unpack(get_data),
        unpack(get_ann),
    output:
        metrics=f"{HYBRID_DIR}/metrics.json",
    log:
        f"{HYBRID_DIR}/run.log",
    benchmark:
        f"{HYBRID_DIR}/benchmark.tsv"
    params:
        mode="hybrid",
        outdir=outdir,
        args=cli_args("hybrid"),
        launcher=launcher("hybrid"),
        requires=requires("ann"),
    threads: job_resource("hybrid", "threads", 1)
    resources:
        gpu=job_resource("hybrid", "gpu", 0),
        runtime=job_resource("hybrid", "runtime", 60),
        mem_mb=job_resource("hybrid", "mem_mb", 4000),
        cpus_per_task=job_resource("hybrid", "cpus_per_task", 1),
    conda:
        "../../envs/lmht.yaml"
    shell:
        CELL_SHELL
