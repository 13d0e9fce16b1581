# Stage 5: reparameterize a trained LM-HT cell (direct or hybrid) into a single-threshold SNN over
# T*L steps and evaluate both (Table 2): accuracy, SOPs and energy before/after, output agreement.


rule reparam_eval:
    input:
        unpack(get_data),
        unpack(get_reparam_source),
    output:
        metrics=f"{REPARAM_DIR}/metrics.json",
    log:
        f"{REPARAM_DIR}/run.log",
    benchmark:
        f"{REPARAM_DIR}/benchmark.tsv"
    params:
        mode="reparam",
        outdir=outdir,
        args=cli_args("reparam"),
        launcher=launcher("reparam"),
        requires=requires("snn"),
    threads: job_resource("reparam", "threads", 1)
    resources:
        gpu=job_resource("reparam", "gpu", 0),
        runtime=job_resource("reparam", "runtime", 30),
        mem_mb=job_resource("reparam", "mem_mb", 4000),
        cpus_per_task=job_resource("reparam", "cpus_per_task", 1),
    conda:
        "../../envs/lmht.yaml"
    shell:
        CELL_SHELL
