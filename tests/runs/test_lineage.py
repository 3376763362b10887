"""A run records how its model was made, and ``fathom.load`` replays it (no pickle)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import fathom
from conftest import make_blobs
from fathom.data.bundle import DataInfo
from fathom.errors import CheckpointError, ConfigError
from fathom.registry import MODELS
from fathom.runs import apply_transform, lineage_of, replay

VOCAB = 23
INFOS = {
    "vision": DataInfo("colour", "classification", (3, 32, 32), num_classes=7),
    "general": DataInfo("table", "classification", (14,), num_classes=3),
    "generative": DataInfo("grey", "classification", (1, 28, 28), num_classes=10),
    "sequence": DataInfo("text", "classification", (12,), num_classes=3, extra={"vocab_size": VOCAB}),
    "language": DataInfo("corpus", "language_model", (16,), extra={"vocab_size": VOCAB}),
    "seq2seq": DataInfo("pairs", "seq2seq", (10,), extra={"vocab_size": VOCAB}),
}  # fmt: skip


@pytest.mark.parametrize("name", MODELS.names())
def test_every_registered_model_replays_from_its_lineage(name):
    """The lineage, through JSON, rebuilds a module the original's weights fit exactly."""
    info = INFOS[MODELS.kind_of(name)]
    original = fathom.models.create_for_data(name, info)
    lineage = json.loads(json.dumps(lineage_of(original)))
    rebuilt = replay(lineage)
    rebuilt.load_state_dict(original.state_dict())  # strict: same names and shapes
    assert lineage_of(rebuilt) == lineage


def test_a_user_module_has_no_lineage():
    assert lineage_of(torch.nn.Linear(2, 2)) is None


def test_transforms_are_recorded_in_order_and_replayed():
    model = fathom.models.create("mlp", in_features=6, num_classes=3, hidden=[8])
    model = apply_transform(model, "reset_head", num_classes=5)
    model = apply_transform(model, "reset_head", num_classes=4)
    lineage = lineage_of(model)
    assert [step["params"] for step in lineage["transforms"]] == [
        {"num_classes": 5},
        {"num_classes": 4},
    ]
    assert replay(lineage).head.out_features == 4


def test_bad_transforms_and_lineages_are_one_line_errors():
    model = fathom.models.create("mlp", in_features=6, num_classes=3, hidden=[8])
    with pytest.raises(ConfigError, match="unknown transform 'reset_haed'.*reset_head"):
        apply_transform(model, "reset_haed", num_classes=5)
    with pytest.raises(ConfigError, match="has no option 'classes'"):
        apply_transform(model, "reset_head", classes=5)
    with pytest.raises(ConfigError, match="JSON values"):
        apply_transform(model, "reset_head", num_classes=torch.tensor(5))
    with pytest.raises(ConfigError, match="no reset_head"):
        apply_transform(fathom.models.create("gan", image_size=28), "reset_head", num_classes=2)
    with pytest.raises(CheckpointError, match="malformed"):
        replay({"transforms": []})
    with pytest.raises(CheckpointError, match="newer Fathom"):
        replay({"version": 99, "base": {"name": "mlp", "options": {}}})


LOAD_AND_PREDICT = """
import sys, numpy, torch, fathom
run = fathom.load(sys.argv[1])
inputs = torch.from_numpy(numpy.load(sys.argv[2]))
numpy.save(sys.argv[3], run.predict(inputs).numpy())
"""


def test_a_shape_changing_transform_round_trips_through_a_fresh_process(tmp_path):
    """Train, reset the head to another class count, train on, save; a fresh process loads
    the run from its folder alone and predicts exactly the same."""
    three, five = make_blobs(classes=3), make_blobs(classes=5, seed=1)
    model = fathom.models.create("mlp", in_features=6, num_classes=3, hidden=[16])
    first = fathom.fit(model, three, epochs=1, run_dir=tmp_path, name="first", progress="none")
    changed = apply_transform(first.model, "reset_head", num_classes=5)
    second = fathom.fit(changed, five, epochs=1, run_dir=tmp_path, name="second", progress="none")
    record = json.loads((second.path / "run.json").read_text())
    assert record["lineage"]["transforms"] == [{"name": "reset_head", "params": {"num_classes": 5}}]
    inputs = five.test.inputs
    np.save(tmp_path / "inputs.npy", inputs.numpy())
    command = [sys.executable, "-c", LOAD_AND_PREDICT, str(second.path), str(tmp_path / "inputs.npy"), str(tmp_path / "out.npy")]  # fmt: skip
    subprocess.run(command, check=True, timeout=1800)
    second.model.eval()
    expected = second.predict(inputs).numpy()
    assert expected.shape == (len(inputs), 5)
    assert np.array_equal(np.load(tmp_path / "out.npy"), expected)
