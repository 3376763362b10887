"""Explanations of a trained model's predictions, with Captum where it serves.

Attribution methods (``attribute``): saliency, integrated-gradients, grad-cam (the last
convolution layer, found automatically) and occlusion. Views of the model itself: first-layer
filters and feature maps of a CNN, attention maps of models exposing
``attention_maps(inputs) -> list[Tensor [batch, heads, queries, keys]]``, and the top-loss
examples of a split. Captum is an optional extra, imported only when an attribution is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from fathom.errors import ConfigError, FathomError, closest

ATTRIBUTIONS = ("saliency", "integrated-gradients", "grad-cam", "occlusion")
VIEWS = ("filters", "attention", "top-loss")
METHODS = ATTRIBUTIONS + VIEWS


def captum_attr() -> Any:
    """``captum.attr``, or a one-line error saying how to install it."""
    try:
        import captum.attr
    except ImportError:
        raise FathomError("explanations need Captum: pip install 'fathom-dl[explain]'") from None
    return captum.attr


def check_method(method: str) -> str:
    if method not in METHODS:
        hint = closest(method, METHODS) or f" (choose from {', '.join(METHODS)})"
        raise ConfigError(f"unknown explanation method '{method}'{hint}")
    return method


def last_convolution(model: nn.Module) -> tuple[str, nn.Module]:
    """The last 2-D convolution of ``model`` (the layer Grad-CAM looks at)."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not found:
        raise ConfigError(
            "grad-cam needs a convolutional model; use saliency, integrated-gradients or occlusion"
        )
    return found[-1]


def first_convolution(model: nn.Module) -> tuple[str, nn.Conv2d]:
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not found:
        raise ConfigError("filters are shown for convolutional models only")
    return found[0]


def _occlusion_window(inputs: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if inputs.dim() == 4:
        channels, height, width = inputs.shape[1:]
        size = max(1, min(height, width) // 7)
        stride = max(1, size // 2)
        return (channels, size, size), (channels, stride, stride)
    return tuple(1 for _ in inputs.shape[1:]), tuple(1 for _ in inputs.shape[1:])


def attribute(
    model: nn.Module, inputs: torch.Tensor, method: str, target: torch.Tensor | int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(attributions shaped like ``inputs``, the target classes explained).

    ``target`` defaults to each input's predicted class. The model is put in eval mode.
    """
    attr = captum_attr()
    model.eval()
    inputs = inputs.detach().float()
    with torch.no_grad():
        predicted = model(inputs).argmax(dim=1)
    if target is None:
        targets = predicted
    elif isinstance(target, int):
        targets = torch.full_like(predicted, target)
    else:
        targets = target
    inputs = inputs.clone().requires_grad_(True)
    if method == "saliency":
        result = attr.Saliency(model).attribute(inputs, target=targets, abs=True)
    elif method == "integrated-gradients":
        explainer = attr.IntegratedGradients(model)
        result = explainer.attribute(inputs, baselines=inputs * 0, target=targets, n_steps=32)
    elif method == "grad-cam":
        _, layer = last_convolution(model)
        cam = attr.LayerGradCam(model, layer).attribute(
            inputs, target=targets, relu_attributions=True
        )
        result = attr.LayerAttribution.interpolate(cam, tuple(inputs.shape[2:]), "bilinear")
        result = result.expand_as(inputs) if inputs.dim() == 4 else result
    elif method == "occlusion":
        window, strides = _occlusion_window(inputs)
        explainer = attr.Occlusion(model)
        result = explainer.attribute(
            inputs, sliding_window_shapes=window, strides=strides, target=targets
        )
    else:
        raise ConfigError(f"'{method}' is not an attribution method ({', '.join(ATTRIBUTIONS)})")
    return result.detach(), targets


@torch.no_grad()
def feature_maps(model: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(first-layer filters [out, in, k, k], the first layer's outputs for ``inputs[:1]``)."""
    _, layer = first_convolution(model)
    captured: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda module, args, output: captured.append(output))
    model.eval()
    try:
        model(inputs[:1].float())
    finally:
        hook.remove()
    return layer.weight.detach().cpu(), captured[0][0].detach().cpu()


@torch.no_grad()
def attention_maps(model: nn.Module, inputs: torch.Tensor) -> list[torch.Tensor]:
    """The model's attention maps, one per layer [batch, heads, queries, keys]."""
    method = getattr(model, "attention_maps", None)
    if not callable(method):
        raise ConfigError(
            f"{type(model).__name__} exposes no attention_maps(inputs); attention is shown for "
            "models that have it (transformers)"
        )
    model.eval()
    maps = method(inputs)
    return [m.detach().float().cpu() for m in maps]


@torch.no_grad()
def top_loss_examples(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, count: int = 16
) -> list[dict[str, Any]]:
    """The ``count`` examples with the highest loss: index, true and predicted class, loss."""
    model.eval()
    logits = torch.cat([model(chunk.float()) for chunk in inputs.split(512)])
    losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    probabilities = logits.softmax(dim=1)
    order = losses.argsort(descending=True)[:count]
    return [
        {
            "index": int(i),
            "label": int(targets[i]),
            "predicted": int(probabilities[i].argmax()),
            "probability": float(probabilities[i].max()),
            "loss": float(losses[i]),
        }
        for i in order
    ]


def rank_correlation(first: torch.Tensor, second: torch.Tensor) -> float:
    """Spearman rank correlation of two attribution maps (absolute values, flattened)."""
    a = first.abs().flatten().double()
    b = second.abs().flatten().double()
    rank_a = a.argsort().argsort().double()
    rank_b = b.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([rank_a, rank_b]))[0, 1])


def explain_run(
    run: Any,
    inputs: torch.Tensor | None,
    display: torch.Tensor | None,
    method: str,
    load_split: Any,
    target: int | None = None,
    count: int = 16,
) -> list[Path]:
    """Explain ``run``'s model; write PNGs to RUN/explain and a report section. Returns the files.

    ``inputs`` are normalised like the training data and ``display`` is how to show them; when
    no inputs are given, the first examples of the test split (``load_split()``) are used.
    """
    from fathom.diagnosis import explain_plots as plots
    from fathom.report import save_section

    check_method(method)
    folder = Path(run.path) / "explain"
    model, info = run.model, run.info
    device = next(model.parameters()).device
    names = info.class_names or [str(i) for i in range(int(info.num_classes or 0))]
    if inputs is None or method == "top-loss":
        split = load_split()
        inputs = split.inputs[: 4096 if method == "top-loss" else 8]
        display = inputs
    inputs = inputs.to(device)
    display = display if display is not None else inputs
    path = folder / f"{method.replace('-', '_')}.png"
    rows: list[list[Any]] = []
    if method in ATTRIBUTIONS:
        attributions, targets = attribute(model, inputs, method, target)
        titles = [
            f"input {i + 1}: {names[int(t)] if names else int(t)}" for i, t in enumerate(targets)
        ]
        made = plots.plot_attributions(
            display.cpu(), attributions.cpu(), titles, method, path, info.feature_names
        )
    elif method == "filters":
        filters, maps = feature_maps(model, inputs)
        made = plots.plot_filters(filters, maps, path)
    elif method == "attention":
        made = plots.plot_attention(attention_maps(model, inputs), path)
    else:
        examples = top_loss_examples(model, inputs, split.targets[: len(inputs)].to(device), count)
        rows = [top_loss_row(example, names) for example in examples]
        made = plots.plot_top_losses(display.cpu(), examples, names, path)
    images = [f"explain/{made.name}"] if made is not None else []
    save_section(
        run.path, f"explain_{method.replace('-', '_')}", f"Explanation: {method}",
        text=EXPLANATION_TEXT.get(method, ""), headers=["Test row", "True", "Predicted", "Probability", "Loss"] if rows else (),
        rows=rows, images=images,
    )  # fmt: skip
    return [made] if made is not None else []


def top_loss_row(example: dict[str, Any], names: list[str]) -> list[Any]:
    """A report row: test row, true and predicted class, probability, loss."""
    return [
        example["index"], names[example["label"]], names[example["predicted"]],
        f"{example['probability']:.3f}", f"{example['loss']:.3f}",
    ]  # fmt: skip


EXPLANATION_TEXT = {
    "saliency": "Absolute gradient of the predicted class score with respect to each input value.",
    "integrated-gradients": "Integrated gradients from an all-zero (dataset-mean) baseline.",
    "grad-cam": "Grad-CAM on the last convolution layer, upsampled to the input size.",
    "occlusion": "Change of the class score when a patch of the input is hidden.",
    "filters": "First-layer convolution filters and their feature maps for one input.",
    "attention": "Attention maps (mean over heads) of the first input, one per layer.",
    "top-loss": "The test examples the model gets most wrong, with their true and predicted classes.",
}
