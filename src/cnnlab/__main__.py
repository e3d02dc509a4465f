"""``python -m cnnlab``: the ``cnnlab`` command (what ``torchrun -m cnnlab train ...`` runs on each rank)."""

import sys

from cnnlab.cli import main

if __name__ == "__main__":
    sys.exit(main())
