"""Aggregate a suite into its tables: an adapter over ``lmht.experiment.results.aggregate``.

Run by the ``aggregate`` rule (``script:``), or standalone::

    python workflow/scripts/aggregate.py --config config.yaml --suite quick --out results/quick/tables
"""

import argparse
import sys
from pathlib import Path

import yaml


def main(argv: list[str] | None = None) -> int:
    from lmht.experiment.results import aggregate

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="the workflow's config.yaml")
    p.add_argument("--suite", required=True)
    p.add_argument("--out", required=True, help="tables folder")
    p.add_argument("--claims", help="paper-claims.csv (default: the config's paper_claims)")
    a = p.parse_args(argv)
    config = yaml.safe_load(Path(a.config).read_text())
    config.setdefault("seeds", None)
    aggregate(config, a.suite, a.claims or config["paper_claims"], a.out)
    return 0


if "snakemake" in globals():  # run by the aggregate rule (script: directive)
    smk = globals()["snakemake"]
    sys.path.insert(0, str(Path(smk.scriptdir).parents[1]))  # the repository root (conda deployment)
    with open(smk.log[0], "w") as sys.stderr:
        from lmht.experiment.results import aggregate

        aggregate(smk.config, smk.wildcards.suite, smk.input.claims, Path(smk.output.failed).parent)
elif __name__ == "__main__":
    sys.exit(main())
