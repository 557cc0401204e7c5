"""Thin wrapper: python benchmarks/run.py [--quick] [--family NAME] == python -m bigkernels bench."""
import sys

from bigkernels.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
