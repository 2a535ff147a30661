"""``python -m porting.compare``: the command lives in :mod:`porting.cli.compare`."""
import sys

from porting.cli.compare import main

if __name__ == "__main__":
    sys.exit(main())
