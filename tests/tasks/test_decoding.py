"""Greedy and beam-search decoding: beam 1 equals greedy; wider beams find likelier outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fathom.models
from fathom.data.bundle import DataInfo
from fathom.tasks.decoding import beam_search, greedy_decode

INFO = DataInfo("pairs", "seq2seq", (9,), extra={"vocab_size": 12})


class Tree(nn.Module):
    """Tokens 3 then anything (p=0.6, then flat) against token 4 then <eos> (p=0.4 × 0.99)."""

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(source), 1, 1)

    def decode(self, target_input, memory, source) -> torch.Tensor:
        steps = []
        for position in range(target_input.shape[1]):
            probabilities = torch.full((len(target_input), 6), 1e-3)
            if position == 0:
                probabilities[:, 3], probabilities[:, 4] = 0.6, 0.4
            else:
                after_four = target_input[:, 1] == 4
                probabilities[:, 2] = torch.where(after_four, 0.99, 0.2)
                probabilities[:, 5] = torch.where(after_four, 0.0, 0.25)
            steps.append(probabilities.log())
        return torch.stack(steps, dim=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_of_one_equals_greedy(seed: int) -> None:
    torch.manual_seed(seed)
    model = fathom.models.create_for_data("gru_seq2seq", INFO, hidden_size=16).eval()
    source = torch.randint(4, 12, (6, 9))
    source[2, 5:] = 0
    greedy = greedy_decode(model, source, max_length=7)
    torch.testing.assert_close(beam_search(model, source, 7, beam_size=1), greedy)
    assert greedy.shape == (6, 7)


def test_a_wider_beam_finds_the_likelier_sequence() -> None:
    source = torch.ones(1, 3, dtype=torch.long)
    assert greedy_decode(Tree(), source, 4)[0, :2].tolist() == [3, 5]
    assert beam_search(Tree(), source, 4, beam_size=2)[0].tolist() == [4, 2, 0, 0]


@pytest.mark.parametrize("model_name", ["gru_seq2seq", "transformer_seq2seq"])
def test_batched_beam_search_equals_one_example_at_a_time(model_name: str) -> None:
    torch.manual_seed(0)
    options = {"hidden_size": 16} if model_name == "gru_seq2seq" else {"dim": 16, "heads": 2}
    model = fathom.models.create_for_data(model_name, INFO, **options).eval()
    source = torch.randint(4, 12, (5, 9))
    source[1, 4:] = 0
    batched = beam_search(model, source, 7, beam_size=3)
    alone = torch.cat([beam_search(model, source[i : i + 1], 7, beam_size=3) for i in range(5)])
    torch.testing.assert_close(batched, alone)
