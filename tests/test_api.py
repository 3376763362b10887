import json

import pytest
import torch
from torch import nn

import fathom
from fathom.errors import ConfigError, DataError
from fathom.runs.folder import read_config, write_config


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, inputs):
        return self.layers(inputs)


def test_fit_any_user_module_then_load_evaluate_predict(blobs, tmp_path):
    run = fathom.fit(TinyNet(), blobs, epochs=8, lr=0.01, run_dir=tmp_path, progress="none")
    assert run.path.parent == tmp_path
    files = {p.name for p in run.path.iterdir()}
    assert {
        "config.yaml",
        "run.json",
        "metrics.jsonl",
        "model.safetensors",
        "checkpoints",
        "report.html",
        "evaluation-test.json",
    } <= files
    summary = json.loads((run.path / "run.json").read_text())
    assert summary["status"] == "completed" and summary["model"]["registered"] is False
    assert summary["test"]["accuracy"] > 0.9
    with pytest.raises(ConfigError, match="custom model"):
        fathom.load(run.path)
    loaded = fathom.load(run.path, model=TinyNet())
    probabilities = loaded.predict(blobs.test.inputs)
    assert probabilities.shape == (len(blobs.test), 3)
    assert torch.allclose(probabilities.sum(1), torch.ones(len(blobs.test)))
    loaded.data = blobs
    assert loaded.evaluate("test")["accuracy"] == pytest.approx(summary["test"]["accuracy"])


def test_registered_model_by_name_round_trips(blobs, tmp_path):
    run = fathom.fit(
        "mlp", blobs, epochs=3, run_dir=tmp_path, progress="none", config={"model": {"hidden": [8]}}
    )
    loaded = fathom.load(run.path)
    assert isinstance(loaded.model, nn.Module)
    for a, b in zip(
        run.model.state_dict().values(), loaded.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_bad_labels_and_wrong_output_size_are_clear(blobs, tmp_path):
    blobs.train.targets[3] = 7
    with pytest.raises(DataError, match="label 7 at row 3 is out of range 0..2"):
        fathom.fit(TinyNet(), blobs, epochs=1, run_dir=tmp_path, progress="none")
    blobs.train.targets[3] = 0
    wrong = nn.Linear(6, 5)
    with pytest.raises(DataError, match="expected \\[batch, 3\\]"):
        fathom.fit(wrong, blobs, epochs=1, run_dir=tmp_path, progress="none")
    assert list(tmp_path.iterdir()) == []  # nothing left behind by runs that never started


def test_unknown_shortcut_is_suggested(blobs, tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        fathom.fit(TinyNet(), blobs, epoch=1, run_dir=tmp_path)


def test_the_five_line_quickstart(shared_datasets, tmp_path):
    data = fathom.data.load("mnist", data_dir=shared_datasets, limit=1000)
    model = fathom.models.create("resnet8", num_classes=10, in_channels=1)
    run = fathom.fit(model, data, epochs=1, run_dir=tmp_path, progress="none")
    metrics = run.evaluate()
    loaded = fathom.load(run.path)
    assert set(metrics) >= {"loss", "accuracy"}
    for a, b in zip(
        run.model.state_dict().values(), loaded.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_resume_a_custom_model_on_user_data_from_python(blobs, tmp_path):
    torch.manual_seed(0)
    full = fathom.fit(
        TinyNet(), blobs, epochs=4, batch_size=16, run_dir=tmp_path, name="full", progress="none"
    )
    torch.manual_seed(0)
    partial = fathom.fit(
        TinyNet(),
        blobs,
        epochs=4,
        run_dir=tmp_path,
        name="partial",
        batch_size=16,
        progress="none",
        overrides=["train.max_steps=20", "train.checkpoint_every_steps=5"],
    )
    assert json.loads((partial.path / "run.json").read_text())["steps"] == 20
    extended = read_config(partial.path)  # a hand edit is refused (checksum): edit it this way
    extended.train.max_steps = None
    write_config(partial.path, extended)
    resumed = fathom.resume(partial.path, model=TinyNet(), data=blobs, progress="none")
    for a, b in zip(
        full.model.state_dict().values(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
