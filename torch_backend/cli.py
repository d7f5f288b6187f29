"""The ``gradhog`` command line: ``hog`` and ``invert`` (pure torch); ``align`` is added by
``blender_gradhog.cli`` because it needs Blender as a Python module.

Each subcommand lives in its own module and contributes ``add_parser(subparsers)`` which registers
its arguments and sets ``func`` (a callable taking the parsed namespace and returning an exit code).
Errors the user can fix raise :class:`CliError`; ``main`` prints them as one line and exits 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Iterable, Sequence


class CliError(Exception):
    """A problem with the user's input (file, option), reported as one line without a traceback."""


# Modules that provide ``add_parser(subparsers)``, imported lazily so that ``gradhog --help`` stays
# fast. Names are relative to this package because the add-on vendors it under another name.
SUBCOMMAND_MODULES = (".cli_hog", ".cli_invert")


def build_parser(extra_modules: Iterable[str] = ()) -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand registered.

    ``extra_modules`` are absolute module names (e.g. the Blender-only ``align``) added after ours.
    """
    parser = argparse.ArgumentParser(
        prog="gradhog",
        description="Differentiable HOG (∇HOG): features, pre-images and camera alignment.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (*SUBCOMMAND_MODULES, *extra_modules):
        importlib.import_module(name, package=__package__).add_parser(subparsers)
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the process exit code."""
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except CliError as error:
        print(f"gradhog {args.command}: error: {error}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for the torch-only subcommands (``python -m torch_backend.cli``)."""
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
