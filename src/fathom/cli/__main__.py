"""``python -m fathom.cli``."""

import sys

from fathom.cli.main import main

sys.exit(main())
