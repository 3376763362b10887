"""``main``: the ``fathom`` command line. Commands are found through the registry
(``fathom.cli.commands``); every user error prints one line and exits with status 2."""

from __future__ import annotations

import argparse
import sys
import warnings

from fathom.cli.options import Parser, print_failure_diagnosis
from fathom.errors import FathomError
from fathom.registry import COMMANDS

EPILOG = """examples:
  fathom train                          # small CNN on the embedded digits dataset
  fathom train mnist --epochs 3         # the MNIST recipe
  fathom train mnist --model resnet8 optim.lr=0.01
  fathom train my-config.yaml train.seed=1
  fathom train path/to/images/          # one subfolder per class
  fathom train table.csv data.target=price
  fathom eval runs/NAME    fathom predict runs/NAME img.png    fathom resume runs/NAME
  fathom generate runs/NAME --n 64 --seed 0      # or --prompt "ROMEO:" for a language model
  fathom doctor runs/NAME    fathom explain runs/NAME img.png --method grad-cam    fathom lr-find mnist
  fathom list models       # also: datasets recipes tasks optimizers schedules augmentations ...
"""


def build_parser() -> Parser:
    """The root parser with one subparser per registered command."""
    parser = Parser(
        prog="fathom",
        description="Deep learning end to end on PyTorch.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS.names(sort=False):
        command = COMMANDS.get(name)
        command.add_arguments(subparsers.add_parser(name, help=command.help))
    return parser


def one_line_warning(message: Warning | str, *args: object, **kwargs: object) -> str:
    """Warnings as one line, like errors (not Python's file:line plus source line)."""
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Run one ``fathom`` command; returns its exit status."""
    shown_as = warnings.formatwarning
    warnings.formatwarning = one_line_warning
    try:
        return run_command(argv)
    finally:
        warnings.formatwarning = shown_as


def run_command(argv: list[str] | None) -> int:
    parser = build_parser()
    args, leftover = parser.parse_known_args(argv)
    command = COMMANDS.get(args.command) if args.command else None
    trailing = command.trailing if command else None
    if leftover and trailing and not any(item.startswith("-") for item in leftover):
        getattr(args, trailing).extend(leftover)  # positional items may follow options
    elif leftover:
        parser.error(f"unrecognized arguments: {' '.join(leftover)}")
    if args.version:
        from fathom._version import __version__

        print(f"fathom {__version__}")
        return 0
    if command is None:
        parser.print_help()
        return 0
    try:
        return command.run(args)
    except FathomError as error:
        # one write: every rank of a torchrun job reports the error, and print's two writes
        # (text, then newline) from two processes can interleave into one line
        sys.stderr.write(f"fathom {args.command}: error: {error}\n")
        sys.stderr.flush()
        if error.run_dir is not None:
            print_failure_diagnosis(error.run_dir)
        return 2
    except KeyboardInterrupt:
        print(
            "fathom: interrupted; the last checkpoint is kept (continue with 'fathom resume RUN')",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
