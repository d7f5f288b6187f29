"""The ``gradhog`` console script: the torch-only subcommands plus ``align`` (needs ``bpy``)."""
from __future__ import annotations

import sys
from typing import Sequence

from . import _backend

torch_cli = _backend.load("cli")

# ``align`` imports bpy only when it runs, so ``gradhog hog`` works without Blender installed.
BLENDER_SUBCOMMAND_MODULES = ("blender_gradhog.cli_align",)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gradhog`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    return torch_cli.run(torch_cli.build_parser(BLENDER_SUBCOMMAND_MODULES), argv)


if __name__ == "__main__":
    sys.exit(main())
