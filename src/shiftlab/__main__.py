"""``python -m shiftlab``, and ``torchrun ... -m shiftlab``: the ``shiftlab`` command."""

from __future__ import annotations

import sys

from shiftlab.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
