"""Small helpers shared by tests (import as ``tests_support``)."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import torch
from torch import nn

from fathom.config import OptimConfig, TrainConfig
from fathom.data.bundle import DataBundle, DataInfo, Split
from fathom.data.loader import TensorLoader
from fathom.engine import Callback, Trainer
from fathom.tasks.classification import Classification

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"


def make_blobs(count: int = 240, classes: int = 3, features: int = 6, seed: int = 0) -> DataBundle:
    """Linearly separable Gaussian blobs: a classification problem any model learns in seconds."""
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, features, generator=generator) * 4
    targets = torch.arange(count) % classes
    inputs = centers[targets] + torch.randn(count, features, generator=generator)
    order = torch.randperm(count, generator=generator)
    inputs, targets = inputs[order], targets[order]
    cut_val, cut_test = int(count * 0.7), int(count * 0.85)
    info = DataInfo(
        name="blobs",
        task="classification",
        input_shape=(features,),
        num_classes=classes,
        class_names=[f"c{i}" for i in range(classes)],
    )
    return DataBundle(
        info,
        Split(inputs[:cut_val], targets[:cut_val]),
        Split(inputs[cut_val:cut_test], targets[cut_val:cut_test]),
        Split(inputs[cut_test:], targets[cut_test:]),
    )


def trainer_for(bundle, callbacks=(), epochs: int = 2, **train) -> Trainer:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(bundle.info.input_shape[0], 16), nn.ReLU(), nn.Linear(16, bundle.info.num_classes)
    )
    return Trainer(
        model,
        Classification(bundle.info.num_classes),
        TensorLoader(bundle.train, 16, shuffle=True),
        TensorLoader(bundle.val, 64),
        train=TrainConfig(epochs=epochs, **train),
        optim=OptimConfig(lr=0.01),
        callbacks=callbacks,
    )


class InterruptAt(Callback):
    """Stops the process like Ctrl-C right after step ``step`` (and after its checkpoint)."""

    order = 200  # after the Checkpointer

    def __init__(self, step: int) -> None:
        self.step = step

    def batch_end(self, trainer) -> None:
        if trainer.state.step == self.step:
            raise KeyboardInterrupt


def run_bench_here(script: str, output: Path, *arguments: str) -> dict:
    """Run ``bench/<script> --quick --output OUTPUT ...`` as its command line would, but in this
    process, and return the JSON it wrote. A bench smoke test checks the script, not a fresh
    interpreter (about two seconds of imports saved a test)."""
    status = run_script_here(script, "--quick", "--output", str(output), *arguments)
    assert status == 0, f"{script} exited with {status}"
    return json.loads(output.read_text())


def run_script_here(script: str, *arguments: str) -> int:
    """``python bench/<script> ARGUMENTS`` in this process; its exit status. Restores what a
    bench changes process-wide: sys.argv, sys.path and torch's thread count."""
    argv, path, threads = sys.argv, list(sys.path), torch.get_num_threads()
    sys.argv = [str(BENCH / script), *arguments]
    try:
        runpy.run_path(str(BENCH / script), run_name="__main__")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    finally:
        sys.argv, sys.path[:] = argv, path
        torch.set_num_threads(threads)
    return 0


def predict_in_fresh_process(run_dir: Path, inputs: torch.Tensor, scratch: Path) -> torch.Tensor:
    """``fathom.load(run_dir).predict(inputs)`` in a new Python process (nothing of this one's
    state helps it): the check that a run's lineage alone rebuilds its model."""
    import os
    import subprocess

    saved = scratch / "inputs.pt"
    torch.save(inputs, saved)
    code = (
        "import sys, torch, fathom; run = fathom.load(sys.argv[1]); "
        "print(run.predict(torch.load(sys.argv[2], weights_only=True)).tolist())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(run_dir), str(saved)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )  # fmt: skip
    return torch.tensor(json.loads(done.stdout))


def write_film_table(folder: Path) -> Path:
    """A tiny text CSV (``text``, ``label``): 'the film was WORD', three good words, three bad,
    each four times: what a pretrained encoder's tests fine-tune on."""
    words = ["great", "lovely", "superb", "awful", "terrible", "horrid"]
    rows = [f"{'the film was ' + word},{int(i < 3)}" for i, word in enumerate(words)] * 4
    table = folder / "texts.csv"
    table.write_text("text,label\n" + "\n".join(rows) + "\n")
    return table


def finetune_minilm_on_films(folder: Path, name: str, *overrides: str):  # noqa: ANN201
    """``pretrained:minilm`` with cached features on ``write_film_table``, two head epochs."""
    import fathom

    return fathom.finetune(
        "pretrained:minilm", "text_csv", run_dir=folder, name=name, progress="none",
        overrides=[f"data.path={write_film_table(folder)}", "data.text_column=text",
                   "data.target=label", "transfer.mode=features", "transfer.cache_features=true",
                   "train.epochs=2", "train.diagnostics=false", "optim.lr=0.05", *overrides],
    )  # fmt: skip
