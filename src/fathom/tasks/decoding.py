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
    """Beam search per example; finished hypotheses rank by log-probability / length**penalty.

    A search stops when ``beam_size`` hypotheses have ended with <eos> (or at ``max_length``).
    ``beam_size=1`` is exactly greedy decoding.
    """
    memory = model.encode(source)
    rows = []
    for index in range(len(source)):
        example_memory = select_memory(memory, slice(index, index + 1))
        best = _search_one(model, source[index : index + 1], example_memory, max_length,
                           beam_size, length_penalty)  # fmt: skip
        rows.append(torch.tensor(best, dtype=torch.long, device=source.device))
    result = torch.zeros(len(source), max_length, dtype=torch.long, device=source.device)
    for index, row in enumerate(rows):
        result[index, : len(row)] = row[:max_length]
    return result


def _search_one(model: nn.Module, source: torch.Tensor, memory: Any, max_length: int,
                beam_size: int, length_penalty: float) -> list[int]:  # fmt: skip
    beams: list[tuple[list[int], float]] = [([BOS], 0.0)]
    finished: list[tuple[list[int], float]] = []
    for _ in range(max_length):
        count = len(beams)
        tokens = torch.tensor([sequence for sequence, _ in beams], device=source.device)
        expand = torch.zeros(count, dtype=torch.long, device=source.device)
        logits = model.decode(tokens, select_memory(memory, expand), source.expand(count, -1))
        log_probs = logits[:, -1].float().log_softmax(dim=-1)
        scores = torch.tensor([score for _, score in beams], device=source.device)
        totals = (scores[:, None] + log_probs).flatten()
        top = totals.topk(min(2 * beam_size, len(totals)))
        vocabulary = log_probs.shape[1]
        beams = []
        for total, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            parent, token = divmod(flat, vocabulary)
            sequence = [*tokens[parent].tolist(), token]
            (finished if token == EOS else beams).append((sequence, total))
            if len(beams) == beam_size or len(finished) >= beam_size:
                break
        if len(finished) >= beam_size or not beams:
            break
    candidates = finished or beams

    def normalised(item: tuple[list[int], float]) -> float:
        return item[1] / max(1, len(item[0]) - 1) ** length_penalty

    return max(candidates, key=normalised)[0][1:]


def pad_to(tokens: torch.Tensor, length: int) -> torch.Tensor:
    if tokens.shape[1] >= length:
        return tokens[:, :length]
    padding = torch.zeros(len(tokens), length - tokens.shape[1], dtype=tokens.dtype)
    return torch.cat([tokens, padding.to(tokens.device)], dim=1)
