"""End to end on real digits (mnist_tiny: 28x28 MNIST 3s and 7s): train a GAN, a VAE and a
diffusion model with the CLI, sample with `fathom generate`, measure samples with a classifier
run, refuse bad requests in one line, and resume a two-phase GAN run exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import fathom
from fathom.cli import main
from tests_support import InterruptAt

pytestmark = pytest.mark.slow

COMMON = ["--quiet", "train.epochs=1", "data.batch_size=64", "data.limit=320"]
MODELS = {
    "gan": [
        "model.name=gan", "task.name=gan", "model.conditional=true", "model.width=8",
        "model.latent_dim=16", "model.spectral_norm=true", "task.loss=hinge", "optim.name=adam",
        "optim.lr=0.0002", "optim.betas=[0.5,0.999]",
    ],
    "vae": ["model.name=vae", "task.name=vae", "model.width=8", "optim.name=adam"],
    "diffusion": [
        "model.name=unet", "task.name=diffusion", "model.conditional=true", "model.width=8",
        "task.timesteps=100", "task.steps=4",
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny(shared_datasets) -> Path:
    return shared_datasets / "mnist_tiny"


@pytest.fixture(scope="module")
def runs(tiny, tmp_path_factory) -> dict[str, Path]:
    """One run of each generative model and a small classifier, trained with the CLI."""
    folder = tmp_path_factory.mktemp("generative")
    trained = {}
    for name, options in [
        *MODELS.items(),
        ("classifier", ["--model", "cnn", "model.channels=[8,16]", "model.hidden=32"]),
    ]:
        arguments = ["train", str(tiny), "--run-dir", str(folder), "--name", name]
        assert main([*arguments, *COMMON, *options]) == 0
        trained[name] = folder / name
    return trained


@pytest.mark.parametrize("name", list(MODELS))
def test_train_report_and_generate(name, runs, capsys) -> None:
    run = runs[name]
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["epochs_completed"] == 1
    assert (run / "plots" / "samples_epoch_001.png").is_file()
    section = json.loads((run / "sections" / "samples.json").read_text())
    assert "plots/samples_epoch_001.png" in section["images"]
    report = (run / "report.html").read_text()
    assert f"Samples ({name})" in report
    if name == "vae":
        assert {"elbo", "bits_per_dim", "kl", "reconstruction"} <= set(record["test"])
        assert "plots/vae_interpolations.png" in section["images"]
    extra = ["--label", "1"] if name != "vae" else []
    outputs = []
    for folder in ("first", "second"):
        arguments = ["generate", str(run), "--n", "6", "--seed", "3", "--output", str(run / folder)]
        assert main([*arguments, *extra]) == 0, capsys.readouterr().err
        outputs.append(np.load(run / folder / "samples.npy"))
    assert outputs[0].shape == (6, 1, 28, 28) and np.array_equal(*outputs)
    assert "wrote" in capsys.readouterr().out


def test_generate_measures_samples_with_a_classifier(runs, capsys) -> None:
    arguments = ["generate", str(runs["gan"]), "--n", "40", "--classifier", str(runs["classifier"])]
    assert main(arguments) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "not Inception FID" in printed and "classifier accuracy" in printed
    quality = json.loads((runs["gan"] / "generated" / "quality.json").read_text())
    assert quality["frechet_distance"] > 0 and quality["generated_images"] == 40
    assert set(quality["class_accuracy"]) == {"0", "1"}


@pytest.mark.parametrize(
    "name, request_arguments, message",
    [
        ("gan", ["--label", "2"], "--label 2 is out of range 0..1"),
        ("gan", ["--steps", "3"], "has no option 'steps'"),
        ("diffusion", ["--steps", "0"], "--steps must be in 1..100"),
        ("diffusion", ["--n", "0"], "--n must be at least 1"),
        ("vae", ["--label", "0"], "not class-conditional"),
        ("classifier", [], "not a generative model"),
        ("vae", ["--classifier", "nowhere"], "not a Fathom run folder"),
    ],
)
def test_bad_requests_are_one_line_errors(name, request_arguments, message, runs, capsys) -> None:
    assert main(["generate", str(runs[name]), *request_arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_gan_resume_mid_run_is_bitwise_exact(tiny, tmp_path) -> None:
    """Two optimizers, two phases per batch: resuming from a mid-epoch checkpoint gives the
    same weights as an uninterrupted run (5 steps per epoch here; stopped at step 6)."""
    overrides = [
        *(option for option in MODELS["gan"]), "train.epochs=2", "data.batch_size=64",
        "data.limit=320", "train.checkpoint_every_steps=3", "train.threads=1", "run.progress=none",
        f"data.path={tiny}", "data.name=folder", f"run.dir={tmp_path}", "run.report=false",
    ]  # fmt: skip
    fathom.fit(overrides=[*overrides, "run.name=reference"])
    with pytest.raises(KeyboardInterrupt):
        fathom.fit(overrides=[*overrides, "run.name=stopped"], callbacks=[InterruptAt(6)])
    assert json.loads((tmp_path / "stopped" / "run.json").read_text())["status"] == "stopped"
    fathom.resume(tmp_path / "stopped")
    reference = load_file(str(tmp_path / "reference" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "stopped" / "model.safetensors"))
    assert reference.keys() == resumed.keys()
    assert any(key.startswith("model/generator.") for key in reference), list(reference)[:3]
    for key, tensor in reference.items():
        assert torch.equal(resumed[key], tensor), key
