"""Explanations: Captum attributions, CNN filters, attention maps, top losses, and the
model-randomisation sanity check (Adebayo et al. 2018)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

import fathom
from fathom.cli import main
from fathom.diagnosis.explain import attention_maps, attribute, last_convolution, rank_correlation
from fathom.errors import ConfigError, FathomError
from fathom.models.init import initialize

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    options = [
        "model.channels=[8,16]",
        "model.hidden=32",
        "schedule.name=constant",
        "train.threads=1",
    ]
    run = fathom.fit("cnn", "digits", epochs=4, lr=3e-3, overrides=options,
                     run_dir=tmp_path_factory.mktemp("runs"), progress="none")  # fmt: skip
    yield run
    torch.set_num_threads(threads)


@pytest.mark.parametrize("method", ["saliency", "grad-cam"])
def test_explanations_of_a_randomised_model_differ(cnn_run, method):
    inputs = cnn_run.data.test.inputs[:16]
    trained, targets = attribute(cnn_run.model, inputs, method)
    again, _ = attribute(cnn_run.model, inputs, method, targets)
    assert rank_correlation(trained, again) > 0.99  # deterministic
    randomised = type(cnn_run.model)  # same architecture, fresh weights
    torch.manual_seed(123)
    shadow = fathom.load(cnn_run.path).model
    initialize(shadow, "kaiming_normal")
    assert isinstance(shadow, randomised)
    random_maps, _ = attribute(shadow, inputs, method, targets)
    correlations = [rank_correlation(a, b) for a, b in zip(trained, random_maps, strict=True)]
    assert np.median(correlations) < 0.5, correlations


def test_grad_cam_needs_a_convolution_and_captum_is_optional(monkeypatch):
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    with pytest.raises(ConfigError, match="convolutional"):
        last_convolution(mlp)
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    monkeypatch.setitem(sys.modules, "captum", None)
    with pytest.raises(FathomError, match=r"pip install 'fathom-dl\[explain\]'"):
        attribute(mlp, torch.randn(2, 4), "saliency")


class TinyAttention(nn.Module):
    """A one-layer self-attention classifier exposing the project's attention_maps convention."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(1, 8)
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, inputs):
        tokens = self.embed(inputs.unsqueeze(-1))
        mixed, _ = self.attention(tokens, tokens, tokens)
        return self.head(mixed.mean(dim=1))

    def attention_maps(self, inputs):
        tokens = self.embed(inputs.unsqueeze(-1))
        _, weights = self.attention(tokens, tokens, tokens, average_attn_weights=False)
        return [weights]


def test_attention_maps_follow_the_convention(tmp_path):
    from fathom.diagnosis.explain_plots import plot_attention

    maps = attention_maps(TinyAttention(), torch.randn(2, 5))
    assert len(maps) == 1 and maps[0].shape == (2, 2, 5, 5)
    assert torch.allclose(maps[0].sum(dim=-1), torch.ones(2, 2, 5))
    assert plot_attention(maps, tmp_path / "a.png").stat().st_size > 1000
    with pytest.raises(ConfigError, match="attention_maps"):
        attention_maps(nn.Linear(5, 3), torch.randn(2, 5))


def test_explain_cli_writes_pngs_and_report_sections(cnn_run, tmp_path, capsys):
    image = tmp_path / "digit.npy"
    np.save(image, (cnn_run.data.test.inputs[:2].numpy() * 0 + 0.5).astype("float32"))
    for method in ("occlusion", "top-loss"):
        arguments = ["explain", str(cnn_run.path), "--method", method]
        assert main(arguments + ([str(image)] if method != "top-loss" else [])) == 0
    printed = capsys.readouterr().out
    assert "explain/top_loss.png" in printed
    assert fathom.explain(cnn_run.path, method="filters")[0].name == "filters.png"
    report = (cnn_run.path / "report.html").read_text()
    assert "Explanation: top-loss" in report and "Explanation: occlusion" in report
    assert main(["explain", str(cnn_run.path), "--method", "salency"]) == 2
    assert "did you mean 'saliency'" in capsys.readouterr().err
