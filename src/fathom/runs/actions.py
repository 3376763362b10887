"""What a run can do once trained: evaluate it on a split, predict, sample from generative runs."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fathom.assemble import evaluation_batch_size, load_data
from fathom.config import call_with_checked_kwargs
from fathom.data.bundle import Split
from fathom.data.loader import make_loader
from fathom.data.splits import normalize_inputs
from fathom.engine import evaluate
from fathom.engine.features import Precision
from fathom.errors import ConfigError, FathomError, closest
from fathom.files import atomic_write_json
from fathom.runs.run import Run
from fathom.tasks.base import GenerativeTask


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's tensors are (a model without parameters, e.g. int8 ONNX: its buffers)."""
    tensors = itertools.chain(model.parameters(), model.buffers())
    return next(tensors, torch.empty(0)).device


def evaluate_run(run: Run, split: str = "test") -> dict[str, Any]:
    if split not in ("train", "val", "test"):
        raise ConfigError(f"unknown split '{split}'{closest(split, ['train', 'val', 'test'])}")
    if run.data is None:
        run.data = load_data(run.config)
    chosen = getattr(run.data, split)
    if chosen is None:
        raise FathomError(f"dataset '{run.info.name}' has no {split} split")
    run.task.attach_data(run.data)  # e.g. the training examples of a kNN monitor
    device = model_device(run.model)
    loader = make_loader(chosen, evaluation_batch_size(run.config), device=device)
    name = run.config.train.precision  # evaluate as the trainer did (fp16 needs a GPU)
    precision = Precision("fp32" if name == "fp16" and device.type != "cuda" else name, device)
    metrics, details = evaluate(run.model, run.task, loader, device, precision)
    result = {"split": split, "metrics": metrics, **details, "class_names": run.info.class_names}
    if run.path is not None:
        atomic_write_json(run.path / f"evaluation-{split}.json", result)
    return metrics


@torch.no_grad()
def predict_run(
    run: Run, inputs: torch.Tensor | list[str | Path] | None = None, texts: list[str] | None = None
) -> torch.Tensor:
    if (inputs is None) == (texts is None):
        raise ConfigError("predict takes inputs (tensors or files) or texts=[...], one of the two")
    if texts is not None:
        inputs = text_inputs(run, texts)
    elif not isinstance(inputs, torch.Tensor):
        from fathom.data.inputs import read_inputs

        inputs = read_inputs([Path(p) for p in inputs], run.info)
        if run.info.normalization:
            inputs = normalize_inputs(
                inputs.float(), run.info.normalization["mean"], run.info.normalization["std"]
            )
    device = model_device(run.model)
    run.model.eval()
    outputs = [run.task.predict(run.model, chunk.to(device)) for chunk in inputs.split(512)]
    return torch.cat(outputs).cpu()


def text_inputs(run: Run, texts: list[str]) -> torch.Tensor:
    """Texts for a model trained on text (a classifier's token ids, as its training texts)."""
    from fathom.data.text import encode_text_inputs

    if run.task.reads_text:
        raise ConfigError(f"a {run.task.name} run answers texts with predict_texts(texts)")
    if "tokenizer" not in run.info.extra:
        raise ConfigError(f"this run's model was trained on {run.info.name}, not on texts")
    if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
        raise ConfigError("texts must be a list of strings")
    if not texts:
        raise ConfigError("no texts given")
    return encode_text_inputs(list(texts), run.info)


def generate_run(run: Run, output_dir: str | Path | None = None, **request: Any) -> dict[str, Any]:
    """Sample from a generative run; files go to ``output_dir`` (default RUN/generated).

    ``classifier`` (a classification run on the same dataset, or its folder) adds
    ``result["quality"]``: see ``generation_quality``.
    """
    classifier = request.pop("classifier", None)
    task = run.task
    if not isinstance(task, GenerativeTask):
        raise ConfigError(
            f"this is a {task.name} run, not a generative model; 'generate' works on runs of "
            "generative tasks (gan, vae, diffusion, language_model)"
        )
    if output_dir is None:
        if run.path is None:
            raise FathomError("this run has no folder: pass output_dir= for the samples")
        output_dir = run.path / "generated"
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    arguments = {**request, "model": run.model, "info": run.info, "output_dir": output_dir}
    result = call_with_checked_kwargs(task.generate, arguments, where=f"generate ({task.name})")
    if classifier is not None:
        result["quality"] = generation_quality(run, classifier, result)
        atomic_write_json(output_dir / "quality.json", result["quality"])
        result["files"].append(str(output_dir / "quality.json"))
    return result


def generation_quality(
    run: Run, classifier: Run | str | Path, samples: dict[str, Any], real_limit: int = 10_000
) -> dict[str, Any]:
    """Fréchet distance of ``samples`` (a ``generate`` result) to the run's test images in the
    penultimate features of a Fathom ``classifier`` run (NOT the Inception FID), and the
    classifier's accuracy on the samples of each requested class (class-conditional models)."""
    from fathom.runs.loading import load
    from fathom.tasks.quality import classifier_quality

    judge = classifier if isinstance(classifier, Run) else load(classifier)
    if not judge.task.is_classifier:
        raise ConfigError(f"--classifier {judge.path}: not a classification run")
    if tuple(judge.info.input_shape) != tuple(run.info.input_shape):
        raise ConfigError(
            f"--classifier {judge.path}: trained on inputs {list(judge.info.input_shape)}, "
            f"but the samples are {list(run.info.input_shape)}"
        )
    if samples.get("samples_file") is None:
        raise ConfigError(f"a {run.task.name} run gives no images to measure")
    pixels = torch.from_numpy(np.load(samples["samples_file"], allow_pickle=False))
    labels_file = samples.get("labels_file")
    labels = torch.from_numpy(np.load(labels_file, allow_pickle=False)) if labels_file else None
    if run.data is None:
        run.data = load_data(run.config)
    real = run.data.test if run.data.test is not None else run.data.val
    if not isinstance(real, Split):
        raise FathomError("the quality measure needs a test split held in memory")
    real_pixels = run.task.to_pixels(real.inputs[:real_limit])
    return classifier_quality(
        judge.model, judge.info.normalization, real_pixels, pixels.float(), labels
    )
