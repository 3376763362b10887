"""Language-modelling corpora: Tiny Shakespeare, as fixed-length windows of token ids.

The text splits by position like nanoGPT (first 90% train, last 10% validation); the tokenizer
(``char`` or ``bpe``) is trained on the training text only. Training examples are windows starting
every ``stride`` tokens, held as a strided *view* of one id tensor (no copies), and targets are the
same windows shifted by one token; the loader shuffles them with a permutation seeded by (seed,
epoch), so resuming mid-epoch is exact. Validation windows do not overlap. There is no separate
test text: the test split is the validation split.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fathom.data.bundle import DataBundle, DataInfo, Split
from fathom.data.download import fetch
from fathom.data.tokenizers import train_tokenizer
from fathom.errors import ConfigError, DataError

TINYSHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TRAIN_SHARE = 0.9


def token_windows(ids: torch.Tensor, context: int, stride: int) -> Split:
    """Windows ``ids[s : s + context]`` every ``stride`` tokens, targets shifted by one (views)."""
    count = (len(ids) - context - 1) // stride + 1
    if count < 1:
        raise DataError(
            f"the text has {len(ids)} tokens, too short for one window of data.context={context}"
        )
    ids = ids.contiguous()
    inputs = ids.as_strided((count, context), (stride, 1))
    targets = ids[1:].as_strided((count, context), (stride, 1))
    return Split(inputs, targets)


def language_model_bundle(
    name: str,
    text: str,
    *,
    context: int,
    stride: int | None,
    tokenizer: str,
    vocab_size: int,
    max_chars: int | None = None,
) -> DataBundle:
    """Split ``text`` 90/10 by position, fit the tokenizer on the first part, cut windows."""
    if context < 1 or (stride is not None and stride < 1):
        raise ConfigError(f"data.context and data.stride must be positive, got {context}, {stride}")
    text = text[:max_chars] if max_chars else text
    if not text.strip():
        raise DataError(f"dataset '{name}': the text is empty")
    cut = int(len(text) * TRAIN_SHARE)
    train_text, val_text = text[:cut], text[cut:]
    fitted = train_tokenizer(tokenizer, train_text.splitlines(keepends=True), vocab_size)
    train_ids = torch.tensor(fitted.encode(train_text), dtype=torch.long)
    val_ids = torch.tensor(fitted.encode(val_text), dtype=torch.long)
    train = token_windows(train_ids, context, stride or max(1, context // 8))
    val = token_windows(val_ids, context, context)
    info = DataInfo(
        name=name,
        task="language_model",
        input_shape=(context,),
        extra={
            "vocab_size": fitted.vocab_size,
            "tokenizer": fitted.to_dict(),
            "context": context,
            "characters_per_token": len(val_text) / max(1, len(val_ids)),
            "train_tokens": len(train_ids),
            "val_tokens": len(val_ids),
        },
    )
    return DataBundle(info, train, val, val)


def tinyshakespeare(
    root: Path,
    download: bool = True,
    context: int = 256,
    stride: int | None = None,
    tokenizer: str = "char",
    vocab_size: int = 512,
    max_chars: int | None = None,
    url: str = TINYSHAKESPEARE_URL,
) -> DataBundle:
    """Tiny Shakespeare (``root/tinyshakespeare/input.txt``, fetched and sha256-checked if missing).

    ``context`` tokens per window, a window every ``stride`` tokens (default context // 8);
    ``tokenizer`` is ``char`` or ``bpe`` (with ``vocab_size``); ``max_chars`` keeps a prefix.
    """
    file = fetch(
        url, Path(root) / "tinyshakespeare" / "input.txt", TINYSHAKESPEARE_SHA256, download=download
    )
    return language_model_bundle(
        "tinyshakespeare", file.read_text(encoding="utf-8"), context=context, stride=stride,
        tokenizer=tokenizer, vocab_size=vocab_size, max_chars=max_chars,
    )  # fmt: skip
