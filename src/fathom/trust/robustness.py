"""Adversarial robustness of a classifier run: accuracy under FGSM/PGD, the robustness curve
(accuracy against ε per attack), and ``fathom attack``'s files (examples as PNG grid + .npy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fathom.errors import ConfigError
from fathom.files import atomic_write_json
from fathom.runs import Run
from fathom.tasks.attacks import AttackSpec, PixelSpace, attack
from fathom.trust.common import (
    logits_of,
    model_device,
    new_figure,
    require_classifier,
    save_figure,
    split_tensors,
)


def standard_eps(run: Run) -> float:
    """The ε the literature reports for the data: 0.3 for grey images (MNIST), 8/255 for colour."""
    channels = run.info.input_shape[0]
    return 0.3 if channels == 1 else 8 / 255


def require_images(run: Run) -> None:
    require_classifier(run, "an attack")
    if len(run.info.input_shape) != 3:
        raise ConfigError(
            f"attacks perturb pixels in [0, 1]; {run.info.name} inputs have shape "
            f"{list(run.info.input_shape)}, not images"
        )


def attack_split(
    run: Run, spec: AttackSpec, inputs: torch.Tensor, labels: torch.Tensor,
    target: torch.Tensor | None = None, batch_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(adversarial pixels, predicted labels on them), in batches."""
    model, device = run.model, model_device(run.model)
    model.eval()
    space = PixelSpace(run.info.normalization, inputs.dim())
    pixels, predictions = [], []
    for start in range(0, len(inputs), batch_size):
        part = slice(start, start + batch_size)
        goal = target[part].to(device) if target is not None else None
        adversarial = attack(
            model, inputs[part].to(device), labels[part].to(device), spec, space, goal
        )
        with torch.no_grad():
            predictions.append(model(adversarial).float().argmax(1).cpu())
        pixels.append(space.to_pixels(adversarial).clamp(0, 1).cpu())
    return torch.cat(pixels), torch.cat(predictions)


def robust_accuracy(
    run: Run, spec: AttackSpec, split: str = "test", limit: int | None = None
) -> float:
    """Accuracy on ``split`` when every example is attacked with ``spec``."""
    require_images(run)
    chosen = split_tensors(run, split, limit)
    if spec.eps == 0:
        _, predictions = attack_split(run, AttackSpec("fgsm", 0.0), chosen.inputs, chosen.targets)
    else:
        _, predictions = attack_split(run, spec, chosen.inputs, chosen.targets)
    return float((predictions == chosen.targets).float().mean())


def robustness_curve(
    run: Run, specs: dict[str, AttackSpec], eps_values: list[float], split: str = "test",
    limit: int | None = 1000,
) -> dict[str, list[dict[str, float]]]:  # fmt: skip
    """Per attack name, accuracy at each ε (the spec's other settings kept)."""
    curve = {}
    for name, spec in specs.items():
        points = []
        for eps in eps_values:
            varied = AttackSpec(spec.method, eps, spec.norm, spec.steps, None, spec.restarts)
            points.append({"eps": eps, "accuracy": robust_accuracy(run, varied, split, limit)})
        curve[name] = points
    return curve


def plot_robustness_curve(curve: dict[str, list[dict[str, float]]], path: Path) -> Path:
    figure, (axes,) = new_figure(5.0, 3.6)
    for name, points in curve.items():
        axes.plot([p["eps"] for p in points], [p["accuracy"] for p in points], "o-", markersize=4,
                  label=name)  # fmt: skip
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("ε (pixel units)", fontsize=9)
    axes.set_ylabel("accuracy", fontsize=9)
    axes.set_title("Robustness curve", loc="left", fontsize=11, fontweight="bold")
    axes.legend(fontsize=8, frameon=False)
    return save_figure(figure, path)


def plot_examples(
    clean: torch.Tensor, adversarial: torch.Tensor, titles: list[str], path: Path
) -> Path:
    """Clean images (top row) over their adversarial versions (bottom row)."""
    count = len(clean)
    figure, _ = new_figure(1.2 * count, 2.6, 1)
    figure.clear()
    grid = figure.subplots(2, count, squeeze=False)
    for column in range(count):
        for row, images in enumerate((clean, adversarial)):
            image = images[column].permute(1, 2, 0).numpy()
            axes = grid[row][column]
            axes.imshow(
                image[..., 0] if image.shape[2] == 1 else image, cmap="gray", vmin=0, vmax=1
            )
            axes.set_xticks([])
            axes.set_yticks([])
        grid[1][column].set_title(titles[column], fontsize=7)
    return save_figure(figure, path)


def write_attack(
    run: Run, spec: AttackSpec, output_dir: Path, split: str = "test", limit: int | None = 1000,
    targeted: bool = False, examples: int = 10,
) -> dict[str, Any]:  # fmt: skip
    """Attack ``split``; write adversarial.npy, labels.npy, examples.png and accuracy.json."""
    require_images(run)
    chosen = split_tensors(run, split, limit)
    labels = chosen.targets
    target = (labels + 1) % int(run.info.num_classes) if targeted else None
    pixels, predictions = attack_split(run, spec, chosen.inputs, labels, target)
    space = PixelSpace(run.info.normalization, chosen.inputs.dim())
    clean_predictions = logits_of(run.model, chosen.inputs).argmax(1)
    clean_accuracy = float((clean_predictions == labels).float().mean())
    result = {
        "attack": {**spec.__dict__, "alpha": spec.alpha, "targeted": targeted}, "split": split,
        "examples": len(labels), "clean_accuracy": clean_accuracy,
        "adversarial_accuracy": float((predictions == labels).float().mean()),
    }  # fmt: skip
    if targeted:
        result["target_success_rate"] = float((predictions == target).float().mean())
    output_dir.mkdir(parents=True, exist_ok=True)
    np.save(output_dir / "adversarial.npy", pixels.numpy().astype(np.float32))
    np.save(output_dir / "labels.npy", labels.numpy())
    names = run.info.class_names or [str(i) for i in range(int(run.info.num_classes))]
    titles = [
        f"{names[int(c)]}→{names[int(a)]}"
        for c, a in zip(clean_predictions[:examples], predictions, strict=False)
    ]
    clean_pixels = space.to_pixels(chosen.inputs[:examples].float()).clamp(0, 1)
    plot_examples(clean_pixels, pixels[:examples], titles, output_dir / "examples.png")
    atomic_write_json(output_dir / "accuracy.json", result)
    return result


def corruption_table(
    run: Run, split: str = "test", limit: int | None = 1000, seed: int = 0,
    names: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Accuracy per corruption and severity on ``split``, and the mean corruption error."""
    from fathom.trust.corruptions import CORRUPTIONS, SEVERITIES, corrupt

    require_images(run)
    chosen = split_tensors(run, split, limit)
    space = PixelSpace(run.info.normalization, chosen.inputs.dim())
    pixels = space.to_pixels(chosen.inputs.float()).clamp(0, 1)
    clean = float((logits_of(run.model, chosen.inputs).argmax(1) == chosen.targets).float().mean())
    table: dict[str, list[float]] = {}
    for name in names or list(CORRUPTIONS):
        table[name] = []
        for severity in SEVERITIES:
            inputs = space.to_inputs(corrupt(pixels, name, severity, seed))
            predictions = logits_of(run.model, inputs).argmax(1)
            table[name].append(float((predictions == chosen.targets).float().mean()))
    errors = [1 - accuracy for row in table.values() for accuracy in row]
    return {
        "clean_accuracy": clean, "accuracy": table, "seed": seed, "examples": len(chosen),
        "mean_corruption_error": float(np.mean(errors)),
        "relative_mean_corruption_error": float(np.mean(errors) - (1 - clean)),
    }  # fmt: skip
