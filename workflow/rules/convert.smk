# Stage 2: QCFS -> IF conversion (theta = QCFS threshold, v_init = 0.5), accuracy of the cumulative
# output after every step t = 1..T: the classic conversion baseline of Table 4.


rule convert_eval:
    input:
        unpack(get_data),
        unpack(get_ann),
    output:
        metrics=f"{CONVERT_DIR}/metrics.json",
    log:
        f"{CONVERT_DIR}/run.log",
    benchmark:
        f"{CONVERT_DIR}/benchmark.tsv"
    params:
        mode="convert",
        outdir=outdir,
        args=cli_args("convert"),
        launcher=launcher("convert"),
        requires=requires("ann"),
    threads: job_resource("convert", "threads", 1)
    resources:
        gpu=job_resource("convert", "gpu", 0),
        runtime=job_resource("convert", "runtime", 30),
        mem_mb=job_resource("convert", "mem_mb", 4000),
        cpus_per_task=job_resource("convert", "cpus_per_task", 1),
    conda:
        "../../envs/lmht.yaml"
    shell:
        CELL_SHELL
