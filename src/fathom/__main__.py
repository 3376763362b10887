"""``python -m fathom`` (and ``torchrun -m fathom``): the ``fathom`` command."""

import sys

from fathom.cli.main import main

sys.exit(main())
