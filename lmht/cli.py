"""Command line: ``lmht MODE [--config FILE] --out DIR [key=value ...]`` (also ``python -m lmht``).

Modes: ``ann`` (ReLU/QCFS ANN), ``convert`` (QCFS -> IF, accuracy vs T), ``hybrid`` (QCFS -> LM-HT, STBP
fine-tuning), ``direct`` (STBP from scratch), ``reparam`` (LM-HT -> single-threshold, both evaluated).
``--config`` takes a YAML file or a packaged preset name (cifar10, cifar100, imagenet200, imagenet,
cifar10_dvs, fashion_mnist). ``key=value`` overrides any config key; values are YAML. The configuration is
validated before any work. Under ``torchrun`` the run uses DDP and only rank 0 writes.

Outputs in ``--out``: metrics.json, train_log.csv, checkpoint.pt (+ .sha256), tgim.json, config.yaml.
Rerunning the same command resumes from the checkpoint, or does nothing if metrics.json is complete.

Exit status: 0 success (or already complete), 2 invalid configuration / checkpoint / data, 3 non-finite
loss, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lmht.config import MODES, SCHEMA, ConfigError, as_yaml, list_presets, resolve_config

__all__ = ["build_parser", "main"]


def _keys_epilog() -> str:
    lines = ["config keys (defaults in lmht/configs/default.yaml):"]
    lines += [f"  {k:<18} {s.help}" for k, s in SCHEMA.items()]
    lines.append(f"presets: {', '.join(list_presets())}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmht",
        description="LM-HT spiking neural networks: training, conversion, reparameterization.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run `lmht MODE --help` for the config keys",
    )
    sub = parser.add_subparsers(dest="mode", required=True, metavar="MODE")
    for mode, spec in MODES.items():
        p = sub.add_parser(
            mode,
            help=spec.help,
            description=spec.help,
            epilog=_keys_epilog(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--config", "-c", metavar="FILE", help="YAML config file or preset name")
        p.add_argument("--out", "-o", metavar="DIR", help="output folder (required unless --print-config)")
        p.add_argument(
            "--restart",
            action="store_true",
            help="ignore an existing checkpoint / finished run in --out and start over",
        )
        p.add_argument(
            "--print-config", action="store_true", help="print the resolved config as YAML and exit"
        )
        p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (YAML values)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lmht.build import prepare
    from lmht.checkpoint import CheckpointError

    try:  # inherit from the parent checkpoint first, then validate the config that will run
        prepared = prepare(
            args.mode,
            resolve_config(args.mode, args.config, args.overrides),
            check_files=not args.print_config,
        )
    except ConfigError as exc:
        print(f"lmht {args.mode}: config error: {exc}", file=sys.stderr)
        return 2
    except CheckpointError as exc:
        print(f"lmht {args.mode}: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        sys.stdout.write(as_yaml(prepared.cfg))
        return 0
    if not args.out:
        print(f"lmht {args.mode}: --out DIR is required", file=sys.stderr)
        return 2

    from lmht.engine import NonFiniteLossError, RunError, run

    try:
        run(prepared, out=args.out, restart=args.restart)
    except NonFiniteLossError as exc:
        print(f"lmht {args.mode}: {exc}", file=sys.stderr)
        return 3
    except (RunError, CheckpointError) as exc:
        print(f"lmht {args.mode}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lmht {args.mode}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
