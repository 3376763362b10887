"""Transfer learning: start a run from another run or a pretrained model, then fine-tune.

``model.init_from`` names the source (a run folder or ``pretrained:minilm``); ``transfer.*``
says which parameter groups train when (feature extraction, fine_tune, gradual unfreezing,
batch-norm statistics) and ``optim.layer_decay`` gives each group its own learning rate.
``fathom.finetune`` (fathom.api.transfer) is the verb.
"""

from fathom.transfer.freezing import GroupFreezing, freezing_callbacks, unfreeze_epochs
from fathom.transfer.sources import Source, resolve_source, source_layer
from fathom.transfer.weights import LoadReport, load_matching, start_from

__all__ = [
    "GroupFreezing",
    "LoadReport",
    "Source",
    "freezing_callbacks",
    "load_matching",
    "resolve_source",
    "source_layer",
    "start_from",
    "unfreeze_epochs",
]
