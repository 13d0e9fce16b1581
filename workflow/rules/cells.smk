# Stages 1-5: one rule per mode of the `lmht` CLI (lmht.experiment.modes), all the same rule. A cell is
# one CLI run, named by its folder (lmht.experiment.cell); run_cell.py records its outcome so that a
# failed cell reaches the tables as "not run" with its error (on_failure: record).
#
#   train_ann        QCFS ANN pre-training, shared by every convert/hybrid cell with its Q and seed
#   convert_eval     QCFS -> IF conversion, accuracy after each step (the classic baseline)
#   finetune_hybrid  QCFS ANN -> LM-HT (the paper's Algorithm 1 by default), STBP fine-tuning (Table 4)
#   train_direct     direct STBP with LM-HT, M-HT (no T-GIM), IF or LIF neurons (Tables 1, 3)
#   reparam_eval     LM-HT -> single-threshold over T*L steps, both evaluated (Table 2)


rule train_direct:
    input:
        unpack(get_cell_inputs),
    output:
        metrics=f"{cell_dir('direct')}/metrics.json",
    log:
        f"{cell_dir('direct')}/run.log",
    benchmark:
        f"{cell_dir('direct')}/benchmark.tsv"
    params:
        args=cli_args,
        preset=preset,
        launcher=launcher,
    threads: resource("threads", 1)
    resources:
        gpu=resource("gpu", 0),
        runtime=resource("runtime"),
        mem_mb=resource("mem_mb"),
        cpus_per_task=resource("cpus_per_task", 1),
    conda:
        "../../envs/lmht.yaml"
    shell:
        RUN_CELL


use rule train_direct as train_ann with:
    output:
        metrics=f"{cell_dir('ann')}/metrics.json",
    log:
        f"{cell_dir('ann')}/run.log",
    benchmark:
        f"{cell_dir('ann')}/benchmark.tsv"


use rule train_direct as convert_eval with:
    output:
        metrics=f"{cell_dir('convert')}/metrics.json",
    log:
        f"{cell_dir('convert')}/run.log",
    benchmark:
        f"{cell_dir('convert')}/benchmark.tsv"


use rule train_direct as finetune_hybrid with:
    output:
        metrics=f"{cell_dir('hybrid')}/metrics.json",
    log:
        f"{cell_dir('hybrid')}/run.log",
    benchmark:
        f"{cell_dir('hybrid')}/benchmark.tsv"


use rule train_direct as reparam_eval with:
    output:
        metrics=f"{cell_dir('reparam')}/metrics.json",
    log:
        f"{cell_dir('reparam')}/run.log",
    benchmark:
        f"{cell_dir('reparam')}/benchmark.tsv"
