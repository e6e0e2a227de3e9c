"""`python -m lenet_blocks`: the `lenet-blocks` command line."""

import sys

from lenet_blocks.cli import main

if __name__ == "__main__":
    sys.exit(main())
