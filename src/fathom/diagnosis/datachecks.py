"""Checks that need the data: input scale, class balance, duplicates across splits, per-example losses.

They look at the data as the model sees it (after the dataset's normalisation) and never draw
random numbers: subsets are the first rows, hashes are of the rows' bytes.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fathom.data.bundle import DataBundle, Split
from fathom.data.duplicates import HASH_LIMIT, copies_of_training_rows, id_columns

SCALE_SAMPLE = 2048
EXAMPLE_SAMPLE = 512
EXAMPLE_MINIMUM = 64  # fewer per-example losses say too little about label noise
HELD_OUT_SAMPLE = 1024
SECONDS_PER_VALUE = 2e-9  # the duplicate search per input value (measured 0.6-4.5e-9, 1 thread)
TOP_EXAMPLES = 25


def _first_inputs(split: Any, count: int) -> torch.Tensor | None:
    if isinstance(split, Split):
        return split.inputs[:count]
    try:
        return torch.stack([split[index][0] for index in range(min(count, len(split)))])
    except Exception:  # noqa: BLE001 - a lazy split that cannot be read is not checked
        return None


def input_scale(split: Any) -> dict[str, Any] | None:
    """Overall and per-feature (per-channel) mean and std of float inputs."""
    inputs = _first_inputs(split, SCALE_SAMPLE)
    if inputs is None or not inputs.is_floating_point() or inputs.dim() < 2 or len(inputs) < 2:
        return None
    values = inputs.float()
    dims = [0, *range(2, values.dim())]
    mean, std = values.mean(dim=dims), values.std(dim=dims)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "max_abs": float(values.abs().max()),
        "feature_mean_abs_max": float(mean.abs().max()),
        "feature_std_max": float(std.max()),
        "feature_std_min": float(std.min()),
        "features": int(mean.numel()),
    }


def class_counts(split: Any) -> list[int] | None:
    targets = getattr(split, "targets", None)
    if targets is None or targets.is_floating_point() or targets.dim() != 1:
        return None
    return torch.bincount(targets.long().clamp_min(0)).tolist()


def duplicates_across_splits(bundle: DataBundle) -> dict[str, Any]:
    """How many val/test rows are copies of training rows (train/test leakage): exact copies,
    or for a table with id-like columns, copies once those are left out (one pass, which finds
    the exact copies too; ``ignoring`` names the columns where it found any)."""
    ids = id_columns(bundle)
    result = _duplicates(bundle, ids or None)
    if ids:
        names = bundle.info.feature_names or []
        ignoring = [names[i] if i < len(names) else f"column {i}" for i in ids]
        for info in result.values():
            if info["in_train"]:
                info["ignoring"] = ignoring
    return result


def _duplicates(bundle: DataBundle, drop: list[int] | None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, copies in copies_of_training_rows(bundle, drop).items():
        if copies is not None:
            rows = len(getattr(bundle, name))
            result[name] = {"rows": rows, "in_train": len(copies), "first": copies[:10]}
    return result


def duplicate_seconds(bundle: DataBundle) -> float:
    """About what ``duplicates_across_splits`` costs: it hashes every input value once."""
    values = 0
    for split in bundle.splits().values():
        if isinstance(split, Split) and len(split) <= HASH_LIMIT:
            values += split.inputs.numel()
    return values * SECONDS_PER_VALUE


def check_bundle(bundle: DataBundle, duplicates: bool = True) -> dict[str, Any]:
    """The data facts the doctor needs, as a JSON-able record (``duplicates=False``: the search
    for copies across splits is left out, recorded as ``"duplicates": None``)."""
    return {
        "dataset": bundle.info.name,
        "task": bundle.info.task,
        "normalized": bundle.info.normalization is not None,
        "train_rows": len(bundle.train),
        "scale": input_scale(bundle.train),
        "class_counts": class_counts(bundle.train) if bundle.info.num_classes else None,
        "class_names": bundle.info.class_names,
        "duplicates": duplicates_across_splits(bundle) if duplicates else None,
    }


@torch.no_grad()
def _logits(model: nn.Module, inputs: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The model's logits for ``inputs``, in eval mode, in chunks of 512."""
    was_training = model.training
    model.eval()
    try:
        logits = torch.cat([model(chunk.to(device)).float().cpu() for chunk in inputs.split(512)])
    finally:
        model.train(was_training)
    return logits


def _confidently_wrong(probabilities: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Rows predicted as another class than their label, above 60% and above the probability
    that class's own rows get on average: confident learning's per-class threshold (Northcutt et
    al. 2021). A model that fits the data loosely (an LSTM at 80% on sentiment) is often wrong at
    60-80%, which its own classes also reach: not label noise."""
    confidence, predicted = probabilities.max(dim=1)
    classes = probabilities.shape[1]
    own = torch.zeros(classes).index_add_(
        0, targets, probabilities.gather(1, targets[:, None]).squeeze(1)
    ) / torch.bincount(targets, minlength=classes).clamp(min=1)
    return (predicted != targets) & (confidence > 0.6) & (confidence >= own[predicted])


def _first_logits(
    model: nn.Module, split: Any, device: torch.device, rows: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Logits and class targets of the first ``rows`` rows of a classification split; None for
    anything else (regression targets, a lazy split, no rows, outputs that are not logits)."""
    if not isinstance(split, Split) or split.targets.is_floating_point() or rows <= 0:
        return None
    logits = _logits(model, split.inputs[:rows], device)
    return (logits, split.targets[:rows]) if logits.dim() == 2 else None


def example_losses(
    model: nn.Module, split: Any, device: torch.device, rows: int = EXAMPLE_SAMPLE
) -> dict[str, Any] | None:
    """Per-example cross-entropy on the first ``rows`` training rows, in eval mode (label noise)."""
    predicted_rows = _first_logits(model, split, device, rows)
    if predicted_rows is None:
        return None
    logits, targets = predicted_rows
    losses = F.cross_entropy(logits, targets, reduction="none")
    probabilities = logits.softmax(dim=1)
    confidence, predicted = probabilities.max(dim=1)
    wrong = predicted != targets
    order = losses.argsort(descending=True)[:TOP_EXAMPLES]
    top = [
        {
            "index": int(i),
            "label": int(targets[i]),
            "predicted": int(predicted[i]),
            "confidence": round(float(confidence[i]), 4),
            "loss": round(float(losses[i]), 4),
            **source_of(split, int(i)),
        }
        for i in order
    ]
    return {
        "count": len(targets),
        "accuracy": float(1 - wrong.float().mean()),
        "confidently_wrong": float(_confidently_wrong(probabilities, targets).float().mean()),
        "median_loss": float(losses.median()),
        "top": top,
    }


def held_out_agreement(
    model: nn.Module, split: Any, device: torch.device, rows: int = HELD_OUT_SAMPLE
) -> dict[str, Any] | None:
    """How the labels of the first ``rows`` held-out rows agree with the model's predictions,
    above all with its most confident quarter. Rows the model never trained on show label noise
    however well it memorised its training rows: with a fraction p of labels flipped, about p of
    even its surest predictions disagree with their labels, where a clean but weak model is
    wrong mostly where it is unsure."""
    predicted_rows = _first_logits(model, split, device, rows)
    if predicted_rows is None:
        return None
    logits, targets = predicted_rows
    probabilities = logits.softmax(dim=1)
    confidence, predicted = probabilities.max(dim=1)
    surest = confidence.argsort(descending=True)[: max(1, len(targets) // 4)]
    return {
        "count": len(targets),
        "accuracy": float((predicted == targets).float().mean()),
        "confidently_wrong": float(_confidently_wrong(probabilities, targets).float().mean()),
        "surest_quarter_error": float((predicted[surest] != targets[surest]).float().mean()),
        "surest_quarter_confidence": float(confidence[surest].mean()),
    }


def label_checks(
    model: nn.Module,
    bundle: DataBundle,
    device: torch.device,
    seconds: float,
    per_row: float,
    validation: bool = True,
) -> dict[str, Any] | None:
    """Per-example losses on the first training rows, with ``held_out``: label agreement on the
    first validation rows, within ``seconds``. Training rows first (up to 512, one forward call;
    half of what the estimated ``per_row`` cost allows where there are validation rows), then
    validation rows (up to 1024) for the time left at the cost measured on the training rows.
    ``validation=False`` leaves them out (a sharded model's forward is a collective: every rank
    must make the same calls, and the time left differs by rank). None under 64 training rows."""
    affordable = min(EXAMPLE_SAMPLE + HELD_OUT_SAMPLE, seconds / max(per_row, 1e-9))
    val = bundle.val if isinstance(bundle.val, Split) and len(bundle.val) and validation else None
    share = affordable if val is None else max(EXAMPLE_MINIMUM, affordable / 2)
    rows = int(min(EXAMPLE_SAMPLE, share, affordable))
    started = time.perf_counter()
    record = example_losses(model, bundle.train, device, rows) if rows >= EXAMPLE_MINIMUM else None
    if record is None:
        return None
    spent = max(time.perf_counter() - started, 1e-9)
    record["source"] = str(bundle.info.extra.get("path") or "")  # a CSV's rows: its lines
    record["held_out"] = None
    if val is not None:  # the time left, at the cost per row just measured
        held_out = int(min(HELD_OUT_SAMPLE, (seconds - spent) * record["count"] / spent))
        record["held_out"] = held_out_agreement(model, val, device, held_out)
    return record


def source_of(split: Split, index: int) -> dict[str, Any]:
    """Where training example ``index`` came from: its row in the source (for a CSV, the line
    number in the file) and its file, as far as the split knows them."""
    where: dict[str, Any] = {}
    if split.rows is not None:
        where["row"] = int(split.rows[index])
    if split.files is not None:
        where["file"] = str(split.files[index])
    return where


def highest_loss(examples: dict[str, Any]) -> str:
    """The highest-loss training examples, named as the user can find them: files, or rows of
    the source (line numbers of a CSV), else positions in the training split (older runs)."""
    top = examples.get("top", [])[:8]
    if top and all("file" in item for item in top):
        return "highest-loss files: " + ", ".join(str(item["file"]) for item in top)
    if top and all("row" in item for item in top):
        source = examples.get("source")
        where = f"lines of {source}" if source else "rows of the dataset"
        return f"highest-loss {where}: " + ", ".join(map(_row_name, top))
    return "highest-loss training rows: " + ", ".join(str(item["index"]) for item in top)


def _row_name(item: dict[str, Any]) -> str:
    """A source row's number; the class names that ``data.class_name_examples`` adds have -1."""
    return str(item["row"]) if item["row"] >= 0 else "a class name (data.class_name_examples)"


@torch.no_grad()
def first_nonfinite_layer(model: nn.Module, data: Any, device: torch.device | None) -> str | None:
    """The first leaf layer (in execution order) whose output has a NaN or an infinity on
    ``data`` (a batch of inputs, or a split whose first rows are used)."""
    inputs = data if isinstance(data, torch.Tensor) else _first_inputs(data, 64)
    if inputs is None:
        return None
    found: list[str] = []

    def hook_for(name: str) -> Any:
        def check(module: nn.Module, arguments: Any, output: Any) -> None:
            tensor = isinstance(output, torch.Tensor) and output.is_floating_point()
            if not found and tensor and not torch.isfinite(output).all():
                found.append(f"{name} ({type(module).__name__})")

        return check

    hooks = [
        module.register_forward_hook(hook_for(name or "model"))
        for name, module in model.named_modules()
        if next(module.children(), None) is None
    ]
    was_training = model.training
    model.eval()
    try:
        model(inputs if device is None else inputs.to(device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return found[0] if found else None
