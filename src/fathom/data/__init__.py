"""Datasets: ``fathom.data.load(name)`` returns a ``DataBundle`` with seeded splits.

Every dataset is a factory ``f(root: Path, download: bool, **options) -> DataBundle`` registered in
``fathom.registry.DATASETS``; ``load`` adds the validation/test splits it lacks and normalises with
statistics of the training split only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fathom.config import accepted_keywords
from fathom.data.bundle import DataBundle, DataInfo, LazySplit, Split
from fathom.data.loader import StreamingLoader, TensorLoader, make_loader
from fathom.data.splits import finalize
from fathom.registry import DATASETS

__all__ = [
    "DataBundle",
    "DataInfo",
    "LazySplit",
    "Split",
    "StreamingLoader",
    "TensorLoader",
    "default_data_dir",
    "list",
    "load",
    "make_loader",
]

DATASETS.register(
    "digits",
    "fathom.data.vision:digits",
    description="scikit-learn 8x8 digits (embedded, no download)",
)
DATASETS.register(
    "mnist", "fathom.data.vision:mnist", description="MNIST handwritten digits, 28x28 grey"
)
DATASETS.register(
    "fashion-mnist",
    "fathom.data.vision:fashion_mnist",
    description="Fashion-MNIST clothing, 28x28 grey",
)
DATASETS.register(
    "cifar10", "fathom.data.vision:cifar10", description="CIFAR-10, 32x32 colour, 10 classes"
)
DATASETS.register(
    "cifar100", "fathom.data.vision:cifar100", description="CIFAR-100, 32x32 colour, 100 classes"
)
DATASETS.register(
    "folder",
    "fathom.data.folder:image_folder",
    description="your images: one subfolder per class (data.path=...)",
)
DATASETS.register(
    "csv",
    "fathom.data.tabular:csv_table",
    description="your table: a CSV file with a target column (data.path=..., data.target=...)",
)
DATASETS.register(
    "text_csv",
    "fathom.data.text:text_csv",
    description="your texts: CSV/TSV with a text and a label column (data.text_column=...)",
)
DATASETS.register(
    "sentiment",
    "fathom.data.text:sentiment",
    description="UCI sentiment labelled sentences (amazon, imdb, yelp), 2 classes",
)
DATASETS.register(
    "tinyshakespeare",
    "fathom.data.language:tinyshakespeare",
    description="Tiny Shakespeare, 1.1M characters: language modelling (char or BPE)",
)
DATASETS.register(
    "sunspots",
    "fathom.data.series:sunspots",
    description="yearly sunspot numbers 1700-2008, forecasting (statsmodels)",
)
DATASETS.register(
    "co2",
    "fathom.data.series:co2",
    description="Mauna Loa CO2 1958-2001, monthly or weekly, forecasting (statsmodels)",
)
DATASETS.register(
    "elnino",
    "fathom.data.series:elnino",
    description="monthly El Nino sea temperatures 1950-2010, forecasting (statsmodels)",
)
DATASETS.register(
    "nile",
    "fathom.data.series:nile",
    description="yearly Nile flow 1871-1970, forecasting (statsmodels)",
)
DATASETS.register(
    "series",
    "fathom.data.series:csv_series",
    description="your time series: a CSV column in time order (data.path=..., data.column=...)",
)
DATASETS.register(
    "dates",
    "fathom.data.translation:dates",
    description="generated seq2seq task: dates in ten formats to ISO 2021-03-12 (characters)",
)
DATASETS.register(
    "arithmetic",
    "fathom.data.translation:arithmetic",
    description="generated seq2seq task: '12+35' to '47' (characters)",
)


def default_data_dir() -> Path:
    """``$FATHOM_DATA_DIR`` if set, else ``~/.cache/fathom/datasets``."""
    if os.environ.get("FATHOM_DATA_DIR"):
        return Path(os.environ["FATHOM_DATA_DIR"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "fathom" / "datasets"


def load(
    name: str,
    *,
    data_dir: str | Path | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    normalize: bool = True,
    limit: int | None = None,
    eval_limit: int | None = None,
    download: bool = True,
    labels_per_class: int | None = None,
    label_fraction: float | None = None,
    dedupe: bool = False,
    class_name_examples: int = 0,
    **options: Any,
) -> DataBundle:
    """Load a registered dataset with seeded splits, e.g. ``fathom.data.load("mnist")``.

    ``options`` go to the dataset (for example ``path`` and ``target`` for ``csv``);
    ``limit`` and ``eval_limit`` keep seeded subsets of the training and of the evaluation splits;
    ``dedupe=True`` drops the validation and test rows that copy a training row (leakage);
    ``class_name_examples=N`` adds each class's name N times to a text dataset's training split.
    """
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    # Datasets that split themselves (a tokenizer fitted on training text only, a series split
    # in time) take the split.
    splitting = {"seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction}
    accepted = accepted_keywords(DATASETS.get(name))
    options.update({key: value for key, value in splitting.items() if key in accepted})
    bundle = DATASETS.create(name, root=root, download=download, **options)
    bundle = finalize(
        bundle,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        normalize=normalize,
        limit=limit,
        eval_limit=eval_limit,
        labels_per_class=labels_per_class,
        label_fraction=label_fraction,
        dedupe=dedupe,
    )
    if class_name_examples:
        from fathom.data.text import with_class_name_examples

        bundle = with_class_name_examples(bundle, class_name_examples)
    return bundle


def list() -> list[str]:  # noqa: A001 - mirrors fathom.models.list
    """Names of all registered datasets."""
    return DATASETS.names()
