# LM-HT reproduction workflow (Hao et al., NeurIPS 2024, arXiv 2402.00411).
#
#   snakemake --cores 2                          # the `quick` suite (Fashion-MNIST, CPU, <= 15 min)
#   snakemake --cores 2 --config suite=smoke     # the DAG in ~2 minutes (tests, CI)
#   snakemake --profile slurm --config suite=paper   # the paper's grid on a Slurm GPU cluster
#   snakemake --report results/quick/report.html # HTML report of a finished suite
#
# Everything a user edits is in config.yaml (validated against workflow/schemas/config.schema.yaml).
# User documentation: workflow/README.md.

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from lmht.experiment.grid import as_yaml
from lmht.slurm import check_status_command

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config.yaml")

# `--config seeds=[0,1] prepare_data=false` arrives as strings: read those keys as YAML does
for _key in ("check_data_roots", "prepare_data", "seeds"):
    if _key in config:
        config[_key] = as_yaml(config[_key])

try:
    validate(config, "workflow/schemas/config.schema.yaml")
except WorkflowError as exc:  # first line: the key path and the problem, not jsonschema's schema dump
    _err = exc.__context__
    if not hasattr(_err, "absolute_path"):
        raise
    _key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in _err.absolute_path).lstrip(".")
    raise WorkflowError(f"Invalid config: key '{_key or '(top level)'}': {_err.message}") from None


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare_data.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/cells.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/report.smk"


onstart:
    check_data_roots()  # data of the selected suite, before the first job (skipped by dry runs)
    check_status_command(workflow, logger)  # Slurm runs: a status command that works, or stop


localrules:
    all,
    aggregate,
    plots,
    report_html,


rule all:
    input:
        get_final_outputs(),
    default_target: True
