"""Self-supervised runs end to end on the 8x8 digits: pretrain from the CLI, fine-tune the
backbone, load in a fresh process; resume is bitwise exact mid-pretraining; bad input exits 2."""

from __future__ import annotations

import json

import pytest
import torch

import fathom
from fathom.cli.main import main
from tests_support import InterruptAt, predict_in_fresh_process

TINY = [
    "model.channels=[8]", "model.hidden=0", "data.limit=640", "data.batch_size=64",
    "task.projection_dim=16", "task.projection_hidden=32", "task.knn_bank=300",
    "train.diagnostics=false", "train.epochs=2", "optim.lr=0.003",
]  # fmt: skip


def test_pretrain_then_finetune_features_from_the_cli_and_load_in_a_fresh_process(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", "digits", "task.name=simclr", *TINY, "--name", "ssl", "--quiet"]) == 0
    record = json.loads((tmp_path / "runs" / "ssl" / "run.json").read_text())
    assert record["best"]["metric"] == "knn_accuracy" and 0.5 < record["test"]["knn_accuracy"] <= 1
    validation = [line for line in fathom.load("runs/ssl").metrics if line["kind"] == "val"]
    assert len(validation) == 2 and all("knn_accuracy" in line for line in validation)
    knn = fathom.knn_evaluate("runs/ssl", bank=300)  # the monitor's protocol, for any run
    assert knn["knn_accuracy"] == record["test"]["knn_accuracy"] and knn["bank"] == 300
    assert main(["probe", "runs/ssl", "--k", "0"]) == 2
    assert "k and bank must be >= 1" in capsys.readouterr().err
    arguments = ["runs/ssl", "digits", "transfer.mode=features", "transfer.cache_features=true"]
    assert main(["finetune", *arguments, "train.epochs=3", "--name", "probe", "--quiet"]) == 0
    assert "loaded 8 of 8 tensors" in capsys.readouterr().out  # conv, batch norm, head
    run = fathom.load(tmp_path / "runs" / "probe")
    assert run.summary["test"]["accuracy"] > 0.3  # 3 epochs of a linear head on 450 digits
    assert main(["probe", "runs/probe", "--k", "20"]) == 0  # a classifier's features too
    assert "test knn_accuracy: " in capsys.readouterr().out
    inputs = run.data.test.inputs[:8] if run.data else fathom.data.load("digits").test.inputs[:8]
    expected = run.predict(inputs)
    fresh = predict_in_fresh_process(tmp_path / "runs" / "probe", inputs, tmp_path)
    assert torch.allclose(fresh, expected, atol=1e-6)


@pytest.mark.parametrize("method", ["simclr", "byol"])
def test_resume_is_bitwise_exact_mid_pretraining(method: str, tmp_path) -> None:
    overrides = [f"task.name={method}", *TINY, "train.checkpoint_every_steps=3"]
    settings = {"overrides": overrides, "progress": "none", "report": False}
    whole = fathom.fit(None, "digits", run_dir=tmp_path, name="whole", **settings)
    with pytest.raises(KeyboardInterrupt):
        fathom.fit(
            None, "digits", run_dir=tmp_path, name="cut", callbacks=[InterruptAt(6)], **settings
        )
    resumed = fathom.resume(tmp_path / "cut", progress="none")
    assert resumed.summary["steps"] == whole.summary["steps"] > 6
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    last = "checkpoints/last.safetensors"
    assert (tmp_path / "cut" / last).read_bytes() == (tmp_path / "whole" / last).read_bytes()


def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    rows = "\n".join(f"{i % 7},{i % 3},{i % 2}" for i in range(30))
    (tmp_path / "table.csv").write_text("a,b,y\n" + rows + "\n")
    for arguments, message in (
        (["table.csv", "data.target=y", "task.name=simclr"], "task simclr learns from images"),
        (["digits", "task.name=simclr", "task.temperature=-1"], "task.temperature must be in"),
        (["digits", "task.name=byol", "task.momentum=2"], "task.momentum must be between"),
    ):
        assert main(["train", *arguments, "train.max_steps=1", "--quiet"]) == 2, arguments
        error = capsys.readouterr().err
        assert message in error and len(error.strip().splitlines()) == 1, error
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
