"""The ``fathom`` command: ``main`` (fathom.cli.main), one module per command, found through
the registry (fathom.cli.commands); a thin layer over the Python API."""

from fathom.cli.main import main

__all__ = ["main"]
