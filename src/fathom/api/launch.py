"""``fathom.launch``: run a ``fathom`` command in several processes with torchrun."""

from fathom.distributed.launch import launch
from fathom.engine.distributed import check_processes

__all__ = ["check_processes", "launch"]
