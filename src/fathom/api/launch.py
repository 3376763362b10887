"""``fathom.launch``: run a ``fathom`` command in several processes with torchrun."""

from fathom.distributed.launch import check_launchable, launch

__all__ = ["check_launchable", "launch"]
