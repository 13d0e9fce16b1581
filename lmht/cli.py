"""Command line: ``lmht MODE [--config FILE] --out DIR [key=value ...]`` (also ``python -m lmht``).

Modes: ``ann`` (ReLU/QCFS ANN), ``convert`` (QCFS -> IF, accuracy vs T), ``hybrid`` (QCFS -> LM-HT, STBP
fine-tuning), ``direct`` (STBP from scratch), ``reparam`` (LM-HT -> single-threshold, both evaluated).
``--config`` takes a YAML file or a packaged preset name (cifar10, cifar100, imagenet200, imagenet,
cifar10_dvs, fashion_mnist). ``key=value`` overrides any config key; values are YAML. The configuration is
validated before any work. Under ``torchrun`` the run uses DDP and only rank 0 writes.

Outputs in ``--out``: metrics.json, train_log.csv, checkpoint.pt (+ .sha256), tgim.json, config.yaml.
Rerunning the same command resumes from the checkpoint, or does nothing if metrics.json is complete.

Exit status: 0 success (or already complete), 2 a user error: invalid command line, configuration,
checkpoint, data file or output folder (one line on stderr, no traceback; ``--debug`` shows it),
3 training diverged (non-finite loss or weights; the last finite checkpoint is kept), 130 interrupted.
Warnings (inputs that train uselessly, finite divergence) go to stderr and to ``metrics.json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from lmht.config import MODES, SCHEMA, ConfigError, as_yaml, list_presets, resolve_config

__all__ = ["build_parser", "main", "one_line"]

_DIVERGED_HINT = "Lower lr, set grad_clip, or use amp=none/bf16."


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``lmht: error: ...; see lmht --help``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)\n")


def one_line(message: object) -> str:
    """``message`` with its whitespace (newlines included) collapsed: a user error is one line."""
    return " ".join(str(message).split())


def _keys_epilog() -> str:
    lines = ["config keys (defaults in lmht/configs/default.yaml):"]
    lines += [f"  {k:<18} {s.help}" for k, s in SCHEMA.items()]
    lines.append(f"presets: {', '.join(list_presets())}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lmht",
        description="LM-HT spiking neural networks: training, conversion, reparameterization.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run `lmht MODE --help` for the config keys",
    )
    sub = parser.add_subparsers(dest="mode", required=True, metavar="MODE", parser_class=_Parser)
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
        p.add_argument(
            "--debug", action="store_true", help="show the Python traceback of an error (user errors too)"
        )
        p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (YAML values)")
    return parser


def _check_out(out: str) -> str | None:
    """Why ``--out`` cannot be the output folder (None when it can): an existing file, a path under a
    file, or a folder that cannot be created or written."""
    path = os.path.abspath(out)
    if os.path.exists(path):
        if not os.path.isdir(path):
            return f"--out {out}: exists and is not a folder"
        return None if os.access(path, os.W_OK | os.X_OK) else f"--out {out}: folder is not writable"
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"--out {out}: {parent} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"--out {out}: cannot create it ({parent} is not writable)"
    return None


def _data_errors() -> tuple[type[BaseException], ...]:
    from lmht.data import DataFileError, DatasetNotFoundError

    return DataFileError, DatasetNotFoundError


def _worker_data_error(exc: BaseException) -> str | None:
    """The one-line data error inside a DataLoader worker's re-raised exception, if that is what it is.

    A worker's exception comes back as ``RuntimeError("Caught DataFileError in DataLoader worker
    process 0. Original Traceback ...")``; its last line is ``...DataFileError: <path>: <problem>``.
    """
    text = str(exc)
    if not text.startswith(("Caught DataFileError", "Caught DatasetNotFoundError")):
        return None
    last = [ln for ln in text.splitlines() if ln.strip()][-1]
    return re.sub(r"^[\w.]*(DataFileError|DatasetNotFoundError): ", "", last.strip())


class _ConsoleHandler(logging.Handler):
    """``lmht: <message>``: information (e.g. which data folder was used) to stdout, next to the run's
    progress; warnings and errors to stderr. Streams are looked up at each message."""

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stdout if record.levelno < logging.WARNING else sys.stderr
        print(f"lmht: {record.getMessage()}", file=stream, flush=True)


def _setup_logging() -> None:
    """Messages of the ``lmht`` loggers on the console, once."""
    logger = logging.getLogger("lmht")
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        logger.addHandler(_ConsoleHandler())
    logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prog = f"lmht {args.mode}"
    _setup_logging()

    def fail(message: object, status: int = 2) -> int:
        print(f"{prog}: {one_line(message)}", file=sys.stderr, flush=True)
        return status

    if not args.print_config:
        problem = _check_out(args.out) if args.out else "--out DIR is required"
        if problem:
            return fail(problem)
    from lmht.build import prepare
    from lmht.checkpoint import CheckpointError, NonFiniteCheckpointError
    from lmht.diagnostics import InputError

    try:  # inherit from the parent checkpoint first, then validate the config that will run
        prepared = prepare(
            args.mode,
            resolve_config(args.mode, args.config, args.overrides),
            check_files=not args.print_config,
        )
    except (ConfigError, CheckpointError) as exc:
        if args.debug:
            raise
        return fail(f"config error: {exc}" if isinstance(exc, ConfigError) else exc)
    if args.print_config:
        sys.stdout.write(as_yaml(prepared.cfg))
        return 0

    from lmht.engine import NonFiniteLossError, RunError, run

    user_errors = (RunError, CheckpointError, InputError, ConfigError, *_data_errors())
    try:
        run(prepared, out=args.out, restart=args.restart)
    except (NonFiniteLossError, NonFiniteCheckpointError) as exc:
        if args.debug:
            raise
        text = str(exc).rstrip()
        hint = "" if _DIVERGED_HINT in text else ("  " if text.endswith(".") else ". ") + _DIVERGED_HINT
        return fail(f"training diverged: {text}{hint}", 3)
    except user_errors as exc:
        if args.debug:
            raise
        return fail(exc)
    except OSError as exc:  # output folder or input file trouble found while running (permissions, disk)
        if args.debug:
            raise
        return fail(f"{type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
    except RuntimeError as exc:
        message = _worker_data_error(exc)
        if message is None or args.debug:
            raise
        return fail(message)
    except KeyboardInterrupt:
        return fail("interrupted; rerun the same command to resume", 130)
    return 0


if __name__ == "__main__":
    sys.exit(main())
