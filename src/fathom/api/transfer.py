"""``fathom.finetune``: a run that starts from another run or a pretrained model."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fathom.api.train import fit
from fathom.assemble import ConfigSource, as_layer
from fathom.config import merge_layer
from fathom.data.bundle import DataBundle
from fathom.engine import Callback
from fathom.runs import Run

FINETUNE_DEFAULTS: dict[str, Any] = {"transfer": {"mode": "fine_tune", "freeze_epochs": 1}}
"""What ``finetune`` adds beneath the user's config: the head alone for an epoch, then all."""


def finetune(
    source: str | Path,
    data: DataBundle | str | None = None,
    *,
    config: ConfigSource = None,
    overrides: Iterable[str] = (),
    callbacks: Iterable[Callback] = (),
    **shortcuts: Any,
) -> Run:
    """Fine-tune ``source`` (a run folder or ``"pretrained:minilm"``) on ``data``.

    The source's model is rebuilt from its lineage with its weights (matched by name and
    shape), its head reset to the data's classes; ``transfer.mode`` (default ``fine_tune``:
    the head alone for ``transfer.freeze_epochs``, then everything), ``optim.layer_decay``
    and the other keys of ``fathom.fit`` apply. Returns the new run, a normal run folder.
    """
    layer = merge_layer(FINETUNE_DEFAULTS, {"model": {"init_from": str(source)}})
    layer = merge_layer(layer, as_layer(config))
    return fit(None, data, config=layer, overrides=overrides, callbacks=callbacks, **shortcuts)


__all__ = ["finetune"]
