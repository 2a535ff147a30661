"""``python -m porting.train``: the command lives in :mod:`porting.cli.train`."""
import sys

from porting.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
