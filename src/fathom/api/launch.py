"""``fathom.launch``: run a ``fathom`` command in several processes with torchrun."""

from fathom.distributed import launch

__all__ = ["launch"]
