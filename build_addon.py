"""Build the installable add-on zip (``dist/gradhog-<version>.zip``). Work in progress: see issue 7."""
import sys

if __name__ == "__main__":
    sys.exit("build_addon.py: not implemented yet")
