"""Draw a suite's figures: an adapter over ``lmht.experiment.results.plots``.

Run by the ``plots`` rule (``script:``), or standalone::

    python workflow/scripts/plots.py --config config.yaml --suite quick --out results/quick/figures
"""

import argparse
import sys
from pathlib import Path

import yaml


def main(argv: list[str] | None = None) -> int:
    from lmht.experiment.results import load_suite
    from lmht.experiment.results.plots import plots

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="the workflow's config.yaml")
    p.add_argument("--suite", required=True)
    p.add_argument("--out", required=True, help="figures folder")
    a = p.parse_args(argv)
    config = yaml.safe_load(Path(a.config).read_text())
    config.setdefault("seeds", None)
    plots(load_suite(config, a.suite, config["paper_claims"]), a.out)
    return 0


if "snakemake" in globals():  # run by the plots rule (script: directive)
    smk = globals()["snakemake"]
    sys.path.insert(0, str(Path(smk.scriptdir).parents[1]))  # the repository root (conda deployment)
    with open(smk.log[0], "w") as sys.stderr:
        from lmht.experiment.results import load_suite
        from lmht.experiment.results.plots import plots

        plots(load_suite(smk.config, smk.wildcards.suite, smk.input.claims), Path(smk.output[0]).parent)
elif __name__ == "__main__":
    sys.exit(main())
