"""Text classification datasets: your CSV/TSV file (``text_csv``) and UCI sentiment sentences.

Splits are carved here (seeded, the same fractions as every dataset) so that the tokenizer is
trained on the training split only. Inputs are token ids [N, T] padded with 0 at the end; the
tokenizer is saved in ``info.extra["tokenizer"]`` and the vocabulary size in
``info.extra["vocab_size"]``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from fathom.data.bundle import DataBundle, DataInfo, Split
from fathom.data.splits import seeded_permutation
from fathom.data.tokenizers import (
    encode_texts,
    special_token_ids,
    tokenizer_from_dict,
    train_tokenizer,
)
from fathom.errors import ConfigError, DataError, closest

UNLABELLED = "no label (data.target not set)"
SENTIMENT_FOLDER = Path("text") / "sentiment_labelled_sentences"
SENTIMENT_SOURCES = {
    "amazon": "amazon_cells_labelled.txt",
    "imdb": "imdb_labelled.txt",
    "yelp": "yelp_labelled.txt",
}


def text_classification_bundle(
    name: str,
    texts: Sequence[str],
    labels: torch.Tensor,
    class_names: list[str],
    *,
    tokenizer: str,
    vocab_size: int,
    max_length: int,
    lowercase: bool,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    extra: dict[str, Any] | None = None,
) -> DataBundle:
    """Seeded train/val/test split, a tokenizer fitted on train texts, padded id tensors."""
    order = seeded_permutation(len(texts), seed)
    test_count = max(1, round(len(texts) * test_fraction))
    val_count = max(1, round(len(texts) * val_fraction)) if val_fraction > 0 else 0
    parts = {
        "test": order[:test_count],
        "val": order[test_count : test_count + val_count],
        "train": order[test_count + val_count :],
    }
    train_texts = [texts[int(i)] for i in parts["train"]]
    fitted = train_tokenizer(tokenizer, train_texts, vocab_size, lowercase, max_length)
    splits = {}
    for part, indices in parts.items():
        if len(indices):
            chosen = [texts[int(i)] for i in indices]
            splits[part] = Split(encode_texts(fitted, chosen, max_length), labels[indices])
    info = DataInfo(
        name=name,
        task="classification",
        input_shape=(int(splits["train"].inputs.shape[1]),),
        num_classes=len(class_names),
        class_names=class_names,
        extra={
            **(extra or {}),
            "vocab_size": fitted.vocab_size,
            "tokenizer": fitted.to_dict(),
            "max_length": max_length,
        },
    )
    return DataBundle(info, splits["train"], splits.get("val"), splits["test"])


def read_sentiment(root: Path, sources: Sequence[str]) -> tuple[list[str], list[int]]:
    """Sentences and 0/1 labels; each line is ``sentence<TAB>label`` (split on the last tab)."""
    texts, labels = [], []
    for source in sources:
        if source not in SENTIMENT_SOURCES:
            raise ConfigError(
                f"data.sources: unknown source '{source}'{closest(source, SENTIMENT_SOURCES)}"
            )
        file = root / SENTIMENT_FOLDER / SENTIMENT_SOURCES[source]
        if not file.is_file():
            raise DataError(
                f"{file} not found; put the UCI 'sentiment labelled sentences' files in "
                f"{root / SENTIMENT_FOLDER} (or point --data-dir / FATHOM_DATA_DIR at a copy)"
            )
        for number, line in enumerate(file.read_text(encoding="utf-8").split("\n"), 1):
            if not line.strip():
                continue
            text, _, label = line.rpartition("\t")
            if label.strip() not in ("0", "1") or not text.strip():
                raise DataError(f"{file} line {number}: expected 'sentence<TAB>0 or 1'")
            texts.append(text.strip())
            labels.append(int(label))
    return texts, labels


def sentiment(
    root: Path,
    download: bool = True,
    sources: Sequence[str] = ("amazon", "imdb", "yelp"),
    tokenizer: str = "word",
    vocab_size: int = 4000,
    max_length: int = 64,
    lowercase: bool = True,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> DataBundle:
    """UCI Sentiment Labelled Sentences (3,000 review sentences, negative/positive), from the
    data dir; it is not downloaded (the UCI archive has no stable checksum-able URL)."""
    texts, labels = read_sentiment(Path(root), [sources] if isinstance(sources, str) else sources)
    return text_classification_bundle(
        "sentiment", texts, torch.tensor(labels), ["negative", "positive"],
        tokenizer=tokenizer, vocab_size=vocab_size, max_length=max_length, lowercase=lowercase,
        seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
    )  # fmt: skip


def read_text_table(
    file: Path, text_column: str, target: str, delimiter: str, minimum_rows: int = 3
) -> tuple[list[str], list[str]]:
    """Texts and label strings from a CSV/TSV file with a header row; one-line errors."""
    if not file.is_file():
        raise DataError(f"text file not found: {file}")
    with file.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if not header:
            raise DataError(f"{file}: empty file, expected a header row")
        for column, key in ((text_column, "data.text_column"), (target, "data.target")):
            if column not in header:
                raise DataError(
                    f"{file}: no column '{column}' for {key}{closest(column, header)}; "
                    f"columns: {', '.join(header)}"
                )
        text_index, target_index = header.index(text_column), header.index(target)
        texts, labels = [], []
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                raise DataError(
                    f"{file} line {line}: {len(row)} fields, the header has {len(header)}"
                )
            if not row[text_index].strip():
                raise DataError(f"{file} line {line}: empty text in column '{text_column}'")
            if not row[target_index].strip():
                raise DataError(f"{file} line {line}: empty label in column '{target}'")
            texts.append(row[text_index])
            labels.append(row[target_index].strip())
    if len(texts) < minimum_rows:
        raise DataError(f"{file}: {len(texts)} rows; need at least {minimum_rows}")
    return texts, labels


def text_csv(
    root: Path,
    download: bool = True,
    path: str | None = None,
    text_column: str | None = None,
    target: str | None = None,
    delimiter: str | None = None,
    tokenizer: str = "word",
    vocab_size: int = 8000,
    max_length: int = 128,
    lowercase: bool = True,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> DataBundle:
    """Classify the texts of ``text_column`` into the labels of ``target`` (a CSV or TSV file).

    The delimiter defaults to a tab for ``.tsv`` files and a comma otherwise. ``root`` and
    ``download`` are unused. Without ``target`` the texts are unlabelled (one class,
    ``UNLABELLED``): for tasks that ignore labels, such as ``task.name=masked_lm``.
    """
    if not path or not text_column:
        raise ConfigError(
            "dataset 'text_csv' needs data.path (a CSV/TSV file), data.text_column and data.target"
            " (data.target may be left out for unlabelled text: task.name=masked_lm)"
        )
    file = Path(path).expanduser()
    delimiter = delimiter or ("\t" if file.suffix.lower() == ".tsv" else ",")
    texts, label_strings = read_text_table(file, text_column, target or text_column, delimiter)
    if target is None:
        label_strings = [UNLABELLED] * len(texts)
    class_names = sorted(set(label_strings), key=_natural_key)
    if len(class_names) < 2 and target is not None:
        raise DataError(f"{file}: column '{target}' has a single label {class_names}; need two")
    lookup = {name: index for index, name in enumerate(class_names)}
    labels = torch.tensor([lookup[label] for label in label_strings])
    return text_classification_bundle(
        "text_csv", texts, labels, class_names,
        tokenizer=tokenizer, vocab_size=vocab_size, max_length=max_length, lowercase=lowercase,
        seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
        extra={"path": str(file.resolve()), "text_column": text_column},
    )  # fmt: skip


def _natural_key(label: str) -> tuple[int, float | str]:
    """Numbers in numeric order first (so labels 0, 1, 2 keep their ids), then strings."""
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


def read_text_inputs(path: Path, info: DataInfo) -> torch.Tensor:
    """Texts to classify: a .txt file (one text per line) or a CSV/TSV with the training text
    column; encoded with the run's tokenizer and padded to its ``max_length``: [N, max_length]."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        column = info.extra.get("text_column", "text")
        texts, _ = read_text_table(path, column, column, "\t" if suffix == ".tsv" else ",", 1)
    elif suffix == ".txt":
        texts = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        raise DataError(f"{path}: a text model reads .txt (one text per line), .csv or .tsv")
    if not texts:
        raise DataError(f"{path}: no text to classify (the file is empty)")
    return encode_text_inputs(texts, info)


def encode_text_inputs(texts: list[str], info: DataInfo) -> torch.Tensor:
    """Texts encoded as the run's training texts were: its tokenizer, padded to its
    ``max_length``: [N, max_length] token ids."""
    tokenizer = tokenizer_from_dict(info.extra["tokenizer"])
    max_length = int(info.extra.get("max_length", 128))
    return encode_texts(tokenizer, texts, max_length, full_width=True)


def with_class_name_examples(bundle: DataBundle, copies: int) -> DataBundle:
    """``data.class_name_examples``: each class's name ("negative", "positive") joins the
    training split ``copies`` times as a labelled example (label names as data, for few-label
    runs of a pretrained encoder, which already places a sentence near the name of its class).
    Rows of the source: -1. Needs a text dataset, in memory, whose classes have names."""
    train, info = bundle.train, bundle.info
    tokenizer = info.extra.get("tokenizer")
    if not isinstance(train, Split) or tokenizer is None or train.inputs.dim() != 2:
        raise ConfigError("data.class_name_examples needs a text classification dataset")
    names = info.class_names or []
    if len(names) != info.num_classes or all(name.isdigit() for name in names):
        raise ConfigError(f"data.class_name_examples: the classes have no names ({names})")
    if train.groups is not None:
        raise ConfigError("data.class_name_examples cannot be combined with data.sensitive")
    fitted = tokenizer_from_dict(tokenizer)
    width = train.inputs.shape[1]
    encoded = encode_texts(fitted, names, width, full_width=True).to(train.inputs.dtype)
    special = torch.tensor(special_token_ids(fitted))
    for name, ids in zip(names, encoded, strict=True):
        if torch.isin(ids, special).all():
            raise ConfigError(
                f"data.class_name_examples: the class name {name!r} is not in the tokenizer's "
                "vocabulary (a tokenizer fitted on these texts knows only their words)"
            )
    labels = torch.arange(len(names), dtype=train.targets.dtype)
    rows = (
        None
        if train.rows is None
        else torch.cat([train.rows, torch.full((len(names) * copies,), -1)])
    )
    added = Split(
        torch.cat([train.inputs, encoded.repeat(copies, 1)]),
        torch.cat([train.targets, labels.repeat(copies)]),
        rows=rows,
    )
    return DataBundle(info, added, bundle.val, bundle.test)
