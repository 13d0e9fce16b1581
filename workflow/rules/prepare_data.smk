# Stage 0a: put the datasets of the selected suite where `data_roots` point, before `dataset_info`
# checks them: download with MD5 checks, extract, lay out (Tiny-ImageNet's val/ sorted into class
# folders; CIFAR10-DVS events extracted and their frames cached), or, for ImageNet-1k, check the user's
# copy and print what is expected. One local rule per dataset, `prepare_<dataset>`: it runs where
# Snakemake runs (a cluster's login node, which has internet; compute nodes often have none). Downloads,
# frame caches and each rule's record go to `cache_dir`, never into a data root, which may be read-only
# once the dataset is there. Skipped with --config prepare_data=false. Code: lmht/data/prepare.py.

# The functions it uses (PREPARED_DATASETS, prepared_record, dvs_prepare_args, ...) are in common.smk.

for _dataset in PREPARED_DATASETS:

    rule:
        name:
            f"prepare_{_dataset}"
        output:
            record=prepared_record(_dataset),
        log:
            f"{CACHE_DIR}/prepared/{_dataset}.log",
        params:
            dataset=_dataset,
            root=config["data_roots"][_dataset],
            cache=lambda wildcards, output: os.path.dirname(os.path.dirname(output.record)),  # = CACHE_DIR
            mirror=f"--mirror {shlex.quote(config['data_mirror'])}" if config["data_mirror"] else "",
            dvs=dvs_prepare_args(SUITE) if _dataset == "cifar10_dvs" else "",
        localrule: True
        conda:
            "../../envs/lmht.yaml"
        shell:
            PREPARE_COMMAND + " {params.dataset} --root {params.root:q} --cache {params.cache:q} {params.mirror} {params.dvs}"
            " --record {output.record:q} > {log:q} 2>&1"
