"""Translation-style datasets the project generates: ``dates`` and ``arithmetic``.

``dates`` normalises dates written in many formats ("12 March 2021", "03/12/21", "2021-3-12",
"March 12, 2021", ...) to ISO "2021-03-12"; ``arithmetic`` evaluates "12+35" to "47". Both are
character-level, deterministic from ``data_seed``, and hold out whole dates / expressions: no
validation or test date (in any format) or expression appears in training.

Token conventions shared by every token dataset: ids padded with 0 at the END; 0 = <pad>,
1 = <bos>, 2 = <eos>, 3 = <unk>; ``info.extra["vocab_size"]``; here the characters are in
``info.extra["vocabulary"]`` (position = id). Targets start with <bos> and end with <eos>.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from fathom.data.bundle import DataBundle, DataInfo, Split
from fathom.errors import ConfigError, DataError

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]  # fmt: skip
DATE_CHARACTERS = "".join(
    sorted(set("0123456789 ,/-." + "".join(MONTHS) + "".join(MONTHS).lower()))
)
ARITHMETIC_CHARACTERS = "0123456789+-"
FIRST_DAY, LAST_DAY = dt.date(1950, 1, 1), dt.date(2049, 12, 31)  # two-digit years pivot at 50


class CharVocabulary:
    """Characters ↔ ids after the four special tokens."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        self.ids = {token: index for index, token in enumerate(self.tokens)}

    @classmethod
    def of(cls, characters: str) -> CharVocabulary:
        return cls([*SPECIALS, *characters])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, *, target: bool = False, where: str = "input") -> list[int]:
        """Ids of ``text`` (wrapped in <bos> ... <eos> for a target); unknown characters are an error."""
        unknown = sorted({char for char in text if char not in self.ids or self.ids[char] < 4})
        if unknown:
            raise DataError(
                f"{where} {text!r}: character(s) {''.join(unknown)!r} are not in the vocabulary "
                f"({''.join(self.tokens[4:])!r})"
            )
        if not text:
            raise DataError(f"{where} is empty")
        ids = [self.ids[char] for char in text]
        return [BOS, *ids, EOS] if target else ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``, stopping at <eos> and skipping <bos>/<pad>."""
        characters = []
        for index in ids:
            if index == EOS:
                break
            if index >= len(SPECIALS):
                characters.append(self.tokens[index])
        return "".join(characters)

    def pad(self, sequences: Sequence[Sequence[int]], length: int | None = None) -> torch.Tensor:
        """A LongTensor ``[N, length]`` of ``sequences`` padded with <pad>=0 at the end."""
        length = length or max(len(sequence) for sequence in sequences)
        padded = torch.zeros(len(sequences), length, dtype=torch.long)
        for row, sequence in enumerate(sequences):
            padded[row, : len(sequence)] = torch.tensor(sequence[:length], dtype=torch.long)
        return padded


def vocabulary_of(info: DataInfo) -> CharVocabulary:
    """The character vocabulary a seq2seq dataset stored in ``info.extra``."""
    if "vocabulary" not in info.extra:
        raise ConfigError(f"dataset '{info.name}' has no character vocabulary in its info")
    return CharVocabulary(info.extra["vocabulary"])


DATE_FORMATS: list[Callable[[dt.date], str]] = [
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    lambda d: f"{d.day} {MONTHS[d.month - 1].lower()} {d.year}",
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
    lambda d: f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}",
    lambda d: f"{d.month}/{d.day}/{d.year}",
    lambda d: f"{d.year}-{d.month}-{d.day}",
    lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    lambda d: d.isoformat(),
]


def _check_sizes(size: int, val_size: int, test_size: int, available: int, name: str) -> None:
    for key, value in {"size": size, "val_size": val_size, "test_size": test_size}.items():
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"data.{key} must be a positive integer, got {value!r}")
    if val_size + test_size >= available:
        raise ConfigError(
            f"data.val_size + data.test_size = {val_size + test_size} leaves no training "
            f"{name} (there are {available})"
        )


def _bundle(name: str, vocabulary: CharVocabulary, pairs: dict[str, list[tuple[str, str]]],
            extra: dict | None = None) -> DataBundle:  # fmt: skip
    """Encode (source, target) text pairs of each split into padded id tensors."""
    encoded = {split: ([vocabulary.encode(s) for s, _ in items],
                       [vocabulary.encode(t, target=True) for _, t in items])
               for split, items in pairs.items()}  # fmt: skip
    source_length = max(len(s) for sources, _ in encoded.values() for s in sources)
    target_length = max(len(t) for _, targets in encoded.values() for t in targets)
    splits = {split: Split(vocabulary.pad(sources, source_length),
                           vocabulary.pad(targets, target_length))
              for split, (sources, targets) in encoded.items()}  # fmt: skip
    info = DataInfo(
        name=name,
        task="seq2seq",
        input_shape=(source_length,),
        extra={
            "vocab_size": len(vocabulary),
            "vocabulary": vocabulary.tokens,
            "max_target_length": target_length,
            **(extra or {}),
        },
    )
    return DataBundle(info, splits["train"], splits["val"], splits["test"])


def dates(root: Path, download: bool = True, size: int = 20000, val_size: int = 1000,
          test_size: int = 2000, data_seed: int = 0) -> DataBundle:  # fmt: skip
    """Dates 1950-2049 in ten formats → ISO dates; held-out dates never appear in training."""
    days = (LAST_DAY - FIRST_DAY).days + 1
    _check_sizes(size, val_size, test_size, days, "dates")
    generator = random.Random(data_seed)
    order = list(range(days))
    generator.shuffle(order)
    pools = {"test": order[:test_size], "val": order[test_size : test_size + val_size],
             "train": order[test_size + val_size :]}  # fmt: skip
    counts = {"train": size, "val": val_size, "test": test_size}
    pairs = {}
    for split, pool in pools.items():
        chosen = pool if split != "train" else [generator.choice(pool) for _ in range(size)]
        items = []
        for offset in chosen[: counts[split]]:
            day = FIRST_DAY + dt.timedelta(days=offset)
            items.append((generator.choice(DATE_FORMATS)(day), day.isoformat()))
        pairs[split] = items
    return _bundle("dates", CharVocabulary.of(DATE_CHARACTERS), pairs)


def arithmetic(root: Path, download: bool = True, size: int = 20000, val_size: int = 1000,
               test_size: int = 2000, max_value: int = 999, data_seed: int = 0) -> DataBundle:  # fmt: skip
    """ "a+b" / "a-b" with 0 <= a, b <= max_value → the result; held-out expressions are unseen."""
    if not isinstance(max_value, int) or max_value < 1:
        raise ConfigError(f"data.max_value must be a positive integer, got {max_value!r}")
    available = 2 * (max_value + 1) ** 2
    total = size + val_size + test_size
    _check_sizes(size, val_size, test_size, available, "expressions")
    if total > available:
        raise ConfigError(
            f"data.size: only {available} distinct expressions with max_value {max_value}"
        )
    generator = random.Random(data_seed)
    expressions: dict[str, str] = {}
    while len(expressions) < total:
        a, b = generator.randint(0, max_value), generator.randint(0, max_value)
        sign = generator.choice("+-")
        expressions.setdefault(f"{a}{sign}{b}", str(a + b if sign == "+" else a - b))
    items = list(expressions.items())
    pairs = {"test": items[:test_size], "val": items[test_size : test_size + val_size],
             "train": items[test_size + val_size :]}  # fmt: skip
    return _bundle("arithmetic", CharVocabulary.of(ARITHMETIC_CHARACTERS), pairs)
