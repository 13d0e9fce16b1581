"""Write a suite's HTML report: an adapter over ``lmht.experiment.results.report``.

Run by the ``report`` rule (``script:``), or standalone::

    python workflow/scripts/report.py --config config.yaml --suite quick --out results/quick/report.html
"""

import argparse
import sys
from pathlib import Path

import yaml


def main(argv: list[str] | None = None) -> int:
    from lmht.experiment.results import build_report

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="the workflow's config.yaml")
    p.add_argument("--suite", required=True)
    p.add_argument("--out", required=True, help="report.html to write")
    p.add_argument("--figures", help="figures folder (default: RESULTS/SUITE/figures)")
    a = p.parse_args(argv)
    config = yaml.safe_load(Path(a.config).read_text())
    config.setdefault("seeds", None)
    figures = a.figures or Path(config["results"]) / a.suite / "figures"
    build_report(config, a.suite, config["paper_claims"], figures, a.out)
    return 0


if "snakemake" in globals():  # run by the report rule (script: directive)
    smk = globals()["snakemake"]
    sys.path.insert(0, str(Path(smk.scriptdir).parents[1]))  # the repository root (conda deployment)
    with open(smk.log[0], "w") as sys.stderr:
        from lmht.experiment.results import build_report

        build_report(
            smk.config,
            smk.wildcards.suite,
            smk.input.claims,
            Path(smk.input.figures[0]).parent,
            smk.output.html,
        )
elif __name__ == "__main__":
    sys.exit(main())
