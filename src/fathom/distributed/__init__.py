"""Several processes for one training run: ``torchrun`` started for the user (the loop's seam
lives in ``fathom.engine.distributed``)."""

from fathom.distributed.launch import launch, torchrun_command

__all__ = ["launch", "torchrun_command"]
