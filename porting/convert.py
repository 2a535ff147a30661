"""``python -m porting.convert``: the command lives in :mod:`porting.cli.convert`."""
import sys

from porting.cli.convert import main

if __name__ == "__main__":
    sys.exit(main())
