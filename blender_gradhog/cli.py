"""The ``gradhog`` console script: the torch-only subcommands plus ``align`` (needs ``bpy``)."""
from __future__ import annotations

import sys
from typing import Sequence

from . import cli_align
from ._backend import cli as torch_cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gradhog`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    # ``align`` and ``demo`` import bpy only when they run, so ``gradhog hog`` works without Blender.
    return torch_cli.run(torch_cli.build_parser((cli_align.__name__,)), argv)


if __name__ == "__main__":
    sys.exit(main())
