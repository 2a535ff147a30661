"""``python -m porting.predict``: the command lives in :mod:`porting.cli.predict`."""
import sys

from porting.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
