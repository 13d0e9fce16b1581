# Stage 0: check that a dataset loads from its data root and record what was found (sizes, classes,
# input shape, encoding, file checksums) before any training job starts. One job per (suite, dataset).


rule dataset_info:
    input:
        unpack(get_prepared_data),
    output:
        info=f"{SUITE_DIR}/data/{{dataset}}.json",
    log:
        f"{SUITE_DIR}/logs/dataset_info/{{dataset}}.log",
    params:
        data_root=lambda wc: config["data_roots"].get(wc.dataset, ""),
        settings=lambda wc: layered(config, wc.suite, wc.dataset, "all", "settings"),
        preset=lambda wc: cell_preset(config, wc.suite, wc.dataset),
    conda:
        "../../envs/lmht.yaml"
    resources:
        runtime=30,
        mem_mb=4000,
    script:
        "../scripts/dataset_info.py"
