"""Tokenizers: character (our own), word-level and BPE (the ``tokenizers`` library), and the
tokenizers of pretrained models (``pretrained:minilm``: WordPiece, read from its package).

Every tokenizer reserves ids 0-3 for ``<pad>``, ``<bos>``, ``<eos>`` and ``<unk>``, is trained on
the training split only, and serialises to a JSON-able dict (stored in ``info.extra["tokenizer"]``
so that a loaded run encodes new text exactly as in training). Word and BPE tokenizers trained
since masked-token pretraining also reserve id 4 for ``<mask>`` (``mask_token_id``); saved older
ones have none and load unchanged, and character tokenizers have none (their ids would shift).
``data.tokenizer=run:PATH`` reuses the tokenizer a run was trained with (its vocabulary).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from fathom.errors import ConfigError, DataError, closest

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
MASK_TOKENS = ("<mask>", "[MASK]")  # Fathom's word/BPE tokenizers, BERT WordPiece (MiniLM)
TOKENIZER_KINDS = ("char", "word", "bpe")
RUN_PREFIX = "run:"


class CharTokenizer:
    """One id per character seen in training; unknown characters map to ``<unk>`` (or raise)."""

    kind = "char"

    def __init__(self, characters: Sequence[str], lowercase: bool = False) -> None:
        self.characters = list(characters)
        self.lowercase = lowercase
        self.ids = {char: index + len(SPECIAL_TOKENS) for index, char in enumerate(self.characters)}

    @classmethod
    def train(cls, texts: Iterable[str], lowercase: bool = False) -> CharTokenizer:
        seen: set[str] = set()
        for text in texts:
            seen.update(text.lower() if lowercase else text)
        return cls(sorted(seen), lowercase)

    @property
    def vocab_size(self) -> int:
        return len(SPECIAL_TOKENS) + len(self.characters)

    def encode(self, text: str, strict: bool = False) -> list[int]:
        """Ids of ``text``; ``strict`` refuses characters never seen in training (one line)."""
        text = text.lower() if self.lowercase else text
        if strict:
            unknown = sorted({char for char in text if char not in self.ids})
            if unknown:
                shown = ", ".join(repr(char) for char in unknown[:5])
                raise DataError(
                    f"characters never seen in training: {shown}; the vocabulary has "
                    f"{len(self.characters)} characters"
                )
        return [self.ids.get(char, UNK_ID) for char in text]

    def decode(self, ids: Iterable[int]) -> str:
        first = len(SPECIAL_TOKENS)
        return "".join(self.characters[i - first] for i in ids if first <= i < self.vocab_size)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "char", "characters": "".join(self.characters), "lowercase": self.lowercase}


class LibraryTokenizer:
    """A word-level or BPE tokenizer from the ``tokenizers`` library."""

    def __init__(self, kind: str, tokenizer: Any) -> None:
        self.kind = kind
        self.tokenizer = tokenizer

    @classmethod
    def train(
        cls, kind: str, texts: Iterable[str], vocab_size: int, lowercase: bool = False
    ) -> LibraryTokenizer:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        special = [*SPECIAL_TOKENS, MASK_TOKENS[0]]  # <mask> is id 4 (masked-token pretraining)
        if kind == "word":
            tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
            tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
            trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=special)
        else:
            tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
            tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tokenizer.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(
                vocab_size=vocab_size,
                special_tokens=special,
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                show_progress=False,
            )
        if lowercase:
            tokenizer.normalizer = normalizers.Lowercase()
        tokenizer.train_from_iterator(texts, trainer=trainer)
        return cls(kind, tokenizer)

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())

    def encode(self, text: str, strict: bool = False) -> list[int]:
        return list(self.tokenizer.encode(text).ids)

    def decode(self, ids: Iterable[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    @classmethod
    def pretrained(cls, kind: str, max_length: int) -> LibraryTokenizer:
        """The tokenizer of a pretrained model (``pretrained:NAME``), truncating to
        ``max_length`` tokens (its own end token kept) and not padding. Its ids are the model's
        (MiniLM's ``[PAD]`` is 0, as everywhere in Fathom)."""
        from tokenizers import Tokenizer as LibraryModel

        from fathom.data.pretrained import pretrained_package

        package = pretrained_package(kind.removeprefix("pretrained:"))
        if package.tokenizer is None:
            raise ConfigError(f"{kind} has no tokenizer")
        tokenizer = LibraryModel.from_file(str(package.file(package.tokenizer)))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_length)
        return cls(kind, tokenizer)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "json": self.tokenizer.to_str()}


Tokenizer = CharTokenizer | LibraryTokenizer


def train_tokenizer(
    kind: str,
    texts: Sequence[str],
    vocab_size: int = 8000,
    lowercase: bool = False,
    max_length: int = 512,
) -> Tokenizer:
    """Train a ``char``, ``word`` or ``bpe`` tokenizer on ``texts`` (the training split), or
    read a pretrained model's (``pretrained:minilm``; it truncates to ``max_length``)."""
    if kind.startswith("pretrained:"):
        return LibraryTokenizer.pretrained(kind, max_length)
    if kind.startswith(RUN_PREFIX):
        return run_tokenizer(kind.removeprefix(RUN_PREFIX))
    if kind not in TOKENIZER_KINDS:
        raise ConfigError(
            f"data.tokenizer must be one of {', '.join(TOKENIZER_KINDS)}, pretrained:minilm or "
            f"run:RUN_FOLDER, got '{kind}'{closest(kind, TOKENIZER_KINDS)}"
        )
    if kind == "char":
        return CharTokenizer.train(texts, lowercase)
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ConfigError(f"data.vocab_size must be larger than 4, got {vocab_size}")
    return LibraryTokenizer.train(kind, texts, vocab_size, lowercase)


def tokenizer_from_dict(saved: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from ``to_dict()`` output (e.g. ``info.extra["tokenizer"]``)."""
    if saved.get("kind") == "char":
        return CharTokenizer(list(saved["characters"]), bool(saved.get("lowercase", False)))
    if saved.get("kind") in ("word", "bpe") or str(saved.get("kind")).startswith("pretrained:"):
        from tokenizers import Tokenizer as LibraryModel

        return LibraryTokenizer(saved["kind"], LibraryModel.from_str(saved["json"]))
    raise DataError(f"unknown saved tokenizer kind {saved.get('kind')!r}")


def run_tokenizer(folder: str) -> Tokenizer:
    """The tokenizer a run was trained with (``data.tokenizer=run:FOLDER``), read from the
    ``data.extra.tokenizer`` of its run.json (plain JSON), so a run fine-tuned from a text run
    encodes its data with the source's vocabulary."""
    record_file = Path(folder).expanduser() / "run.json"
    if not record_file.is_file():
        raise ConfigError(f"data.tokenizer=run:{folder}: not a run folder (no run.json)")
    try:
        saved = json.loads(record_file.read_text(encoding="utf-8"))["data"]["extra"]["tokenizer"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"data.tokenizer=run:{folder}: the run has no text tokenizer") from None
    return tokenizer_from_dict(saved)


def mask_token_id(tokenizer: Tokenizer) -> int | None:
    """The id of the tokenizer's mask token (``<mask>`` or ``[MASK]``), None when it has none."""
    if isinstance(tokenizer, CharTokenizer):
        return None
    for token in MASK_TOKENS:
        found = tokenizer.tokenizer.token_to_id(token)
        if found is not None:
            return int(found)
    return None


def special_token_ids(tokenizer: Tokenizer) -> list[int]:
    """Ids that are not text: the reserved four, and a library tokenizer's special tokens."""
    special = set(range(len(SPECIAL_TOKENS)))
    if isinstance(tokenizer, LibraryTokenizer):
        decoder = tokenizer.tokenizer.get_added_tokens_decoder()
        special.update(index for index, token in decoder.items() if token.special)
    return sorted(index for index in special if index < tokenizer.vocab_size)


def encode_texts(
    tokenizer: Tokenizer, texts: Sequence[str], max_length: int, full_width: bool = False
) -> torch.Tensor:
    """Token ids [N, T] padded with 0 at the end, T = the longest text (at most ``max_length``),
    or ``max_length`` itself with ``full_width`` (the width a trained model's inputs had)."""
    encoded = [tokenizer.encode(text)[:max_length] for text in texts]
    longest = max((len(ids) for ids in encoded), default=0)
    width = max_length if full_width else max(longest, 1)
    batch = torch.zeros(len(encoded), width, dtype=torch.long)
    for row, ids in enumerate(encoded):
        if ids:
            batch[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return batch


def token_label(tokenizer: Tokenizer, token: int) -> str:
    """How one token reads on a figure: its text, or its name for special tokens (``<unk>``)."""
    text = tokenizer.decode([token])
    if text:
        return text
    return SPECIAL_TOKENS[token] if 0 <= token < len(SPECIAL_TOKENS) else "?"
