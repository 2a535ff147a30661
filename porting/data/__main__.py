"""``python -m porting.data``: the command lives in :mod:`porting.cli.data`."""
import sys

from porting.cli.data import main

if __name__ == "__main__":
    sys.exit(main())
