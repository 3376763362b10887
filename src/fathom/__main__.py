"""``python -m fathom`` (and ``torchrun -m fathom``): the ``fathom`` command."""

import sys

from fathom.cli.main import main

status = main()
if "fathom.engine.distributed" in sys.modules:  # a torchrun worker: it ends without teardown
    from fathom.engine.distributed import end_worker_process

    end_worker_process(status)
sys.exit(status)
