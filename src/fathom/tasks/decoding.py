"""Greedy and beam-search decoding for any seq2seq model with ``encode`` and ``decode``.

The interface: ``memory = model.encode(source)``; ``model.decode(target_input, memory, source)``
returns logits ``[B, T, V]`` for every position of ``target_input`` (which starts with <bos>=1).
Memory is a batch-first tensor or a tuple/list of them. Decoded sequences are returned without
<bos>, ending with <eos>=2 (unless ``max_length`` ran out) and padded with 0 to ``max_length``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

PAD, BOS, EOS = 0, 1, 2


def select_memory(memory: Any, index: torch.Tensor | slice) -> Any:
    """Rows ``index`` of a batch-first memory (a tensor, or a tuple/list of tensors)."""
    if isinstance(memory, torch.Tensor):
        return memory[index]
    if isinstance(memory, (tuple, list)):
        return type(memory)(select_memory(part, index) for part in memory)
    raise TypeError(f"cannot index a seq2seq memory of type {type(memory).__name__}")


@torch.no_grad()
def greedy_decode(model: nn.Module, source: torch.Tensor, max_length: int) -> torch.Tensor:
    """The most likely next token at every step, for a batch: ``[B, max_length]``."""
    memory = model.encode(source)
    tokens = torch.full((len(source), 1), BOS, dtype=torch.long, device=source.device)
    finished = torch.zeros(len(source), dtype=torch.bool, device=source.device)
    for _ in range(max_length):
        next_token = model.decode(tokens, memory, source)[:, -1].argmax(dim=-1)
        next_token = next_token.masked_fill(finished, PAD)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        finished |= next_token == EOS
        if bool(finished.all()):
            break
    return pad_to(tokens[:, 1:], max_length)


@torch.no_grad()
def beam_search(
    model: nn.Module,
    source: torch.Tensor,
    max_length: int,
    beam_size: int = 4,
    length_penalty: float = 1.0,
) -> torch.Tensor:
    """Beam search; finished hypotheses rank by log-probability / length**penalty.

    Every live hypothesis of every example goes through the decoder in one batch per step; an
    example's search stops when ``beam_size`` of its hypotheses have ended with <eos> (or at
    ``max_length``). ``beam_size=1`` is exactly greedy decoding.
    """
    memory = model.encode(source)
    searches = [_Search(beam_size) for _ in range(len(source))]
    for _ in range(max_length):
        active = [index for index, search in enumerate(searches) if not search.done]
        if not active:
            break
        owners = [index for index in active for _ in searches[index].beams]
        tokens = torch.tensor(
            [sequence for index in active for sequence, _ in searches[index].beams],
            device=source.device,
        )
        expand = torch.tensor(owners, dtype=torch.long, device=source.device)
        logits = model.decode(tokens, select_memory(memory, expand), source[expand])
        log_probs = logits[:, -1].float().log_softmax(dim=-1)
        start = 0
        for index in active:
            count = len(searches[index].beams)
            searches[index].extend(tokens[start : start + count], log_probs[start : start + count])
            start += count
    result = torch.zeros(len(source), max_length, dtype=torch.long, device=source.device)
    for index, search in enumerate(searches):
        best = search.best(length_penalty)[:max_length]
        result[index, : len(best)] = torch.tensor(best, dtype=torch.long)
    return result


class _Search:
    """One example's hypotheses: the live beams and those already ended with <eos>."""

    def __init__(self, beam_size: int) -> None:
        self.beam_size = beam_size
        self.beams: list[tuple[list[int], float]] = [([BOS], 0.0)]
        self.finished: list[tuple[list[int], float]] = []

    @property
    def done(self) -> bool:
        return len(self.finished) >= self.beam_size or not self.beams

    def extend(self, tokens: torch.Tensor, log_probs: torch.Tensor) -> None:
        """Keep the best ``beam_size`` continuations of the beams (``tokens`` [beams, t])."""
        scores = torch.tensor([score for _, score in self.beams], device=log_probs.device)
        totals = (scores[:, None] + log_probs).flatten()
        top = totals.topk(min(2 * self.beam_size, len(totals)))
        vocabulary = log_probs.shape[1]
        self.beams = []
        for total, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            parent, token = divmod(flat, vocabulary)
            sequence = [*tokens[parent].tolist(), token]
            (self.finished if token == EOS else self.beams).append((sequence, total))
            if len(self.beams) == self.beam_size or len(self.finished) >= self.beam_size:
                break

    def best(self, length_penalty: float) -> list[int]:
        """The best hypothesis without <bos>: finished ones first, else the live beams."""

        def normalised(item: tuple[list[int], float]) -> float:
            return item[1] / max(1, len(item[0]) - 1) ** length_penalty

        return max(self.finished or self.beams, key=normalised)[0][1:]


def pad_to(tokens: torch.Tensor, length: int) -> torch.Tensor:
    if tokens.shape[1] >= length:
        return tokens[:, :length]
    padding = torch.zeros(len(tokens), length - tokens.shape[1], dtype=tokens.dtype)
    return torch.cat([tokens, padding.to(tokens.device)], dim=1)
