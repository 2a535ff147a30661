"""``python -m porting.autoport``: the command lives in :mod:`porting.cli.autoport`."""
import sys

from porting.cli.autoport import main

if __name__ == "__main__":
    sys.exit(main())
