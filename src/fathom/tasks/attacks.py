"""White-box adversarial attacks in plain PyTorch: FGSM and PGD (L∞ and L2, random starts,
restarts, targeted).

They live with the tasks because adversarial training (``fathom.tasks.adversarial``) runs them
inside its loss; ``fathom.trust`` uses the same functions to measure robustness. Every attack
works in pixel space ([0, 1], where ε is meant) and feeds the model its own input space through
``PixelSpace`` (the run's normalisation), so ε = 0.3 on MNIST means 0.3 of the pixel range.
Random starts draw from the torch global generator, which checkpoints save, so adversarial
training resumes exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fathom.errors import ConfigError

NORMS = ("linf", "l2")


class PixelSpace:
    """Maps pixels in [0, 1] to the model's normalised inputs and back."""

    def __init__(self, normalization: dict[str, list[float]] | None, dims: int) -> None:
        self.mean = self.std = None
        if normalization:
            shape = [1, len(normalization["mean"]), *([1] * (dims - 2))]
            self.mean = torch.tensor(normalization["mean"]).view(shape)
            self.std = torch.tensor(normalization["std"]).view(shape)

    def to_pixels(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            return inputs
        return inputs * self.std.to(inputs) + self.mean.to(inputs)

    def to_inputs(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            return pixels
        return (pixels - self.mean.to(pixels)) / self.std.to(pixels)


@dataclass(frozen=True)
class AttackSpec:
    """What to attack with: ``method`` fgsm or pgd, ``norm`` linf or l2, ``eps`` in pixel units,
    ``steps`` and ``step_size`` (default 2.5 ε / steps), ``restarts`` (random starts; the worst
    case per example is kept), ``targeted`` (push towards ``target`` labels instead).
    ``clamp_start``: move the random start into the image range before the first gradient (an
    attack's start is a valid image); fast FGSM training does not (``fathom.tasks.adversarial``)."""

    method: str = "pgd"
    eps: float = 0.3
    norm: str = "linf"
    steps: int = 10
    step_size: float | None = None
    restarts: int = 1
    random_start: bool = True
    clamp_start: bool = True

    def __post_init__(self) -> None:
        if self.method not in ("fgsm", "pgd"):
            raise ConfigError(f"attack method must be fgsm or pgd, got '{self.method}'")
        if self.norm not in NORMS:
            raise ConfigError(f"attack norm must be linf or l2, got '{self.norm}'")
        if not self.eps >= 0:
            raise ConfigError(f"attack eps must be >= 0 (pixel units, 0-1), got {self.eps}")
        if self.steps < 1 or self.restarts < 1:
            raise ConfigError("attack steps and restarts must be at least 1")

    @property
    def alpha(self) -> float:
        if self.step_size is not None:
            return self.step_size
        return self.eps if self.method == "fgsm" else 2.5 * self.eps / self.steps


def _loss_gradient(
    model: nn.Module, space: PixelSpace, pixels: torch.Tensor, labels: torch.Tensor, sign: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """d(sign · per-example cross-entropy)/d pixels, and the per-example loss."""
    pixels = pixels.detach().requires_grad_(True)
    logits = model(space.to_inputs(pixels)).float()
    losses = F.cross_entropy(logits, labels, reduction="none")
    (gradient,) = torch.autograd.grad(sign * losses.sum(), pixels)
    return gradient, losses.detach()


def _flat_norm(values: torch.Tensor) -> torch.Tensor:
    shape = [-1, *([1] * (values.dim() - 1))]
    return values.flatten(1).norm(dim=1).clamp_min(1e-12).view(shape)


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """The closest perturbation to ``delta`` inside the ε-ball of ``norm``."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _flat_norm(delta)).clamp(max=1.0)


def _step(gradient: torch.Tensor, alpha: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return alpha * gradient.sign()
    return alpha * gradient / _flat_norm(gradient)


def _random_start(pixels: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """A uniform point of the L∞ ball, or a random direction at a uniform radius for L2."""
    if norm == "linf":
        return (torch.rand_like(pixels) * 2 - 1) * eps
    direction = torch.randn_like(pixels)
    radius = torch.rand(len(pixels), device=pixels.device).view(-1, *[1] * (pixels.dim() - 1))
    return direction / _flat_norm(direction) * radius * eps


def _one_attack(
    model: nn.Module,
    space: PixelSpace,
    pixels: torch.Tensor,
    labels: torch.Tensor,
    spec: AttackSpec,
    sign: float,
) -> torch.Tensor:
    steps = 1 if spec.method == "fgsm" else spec.steps
    delta = torch.zeros_like(pixels)
    if spec.random_start and spec.method == "pgd":
        delta = _random_start(pixels, spec.eps, spec.norm)
    if spec.clamp_start:
        delta = (pixels + delta).clamp(0, 1) - pixels
    for _ in range(steps):
        gradient, _ = _loss_gradient(model, space, pixels + delta, labels, sign)
        delta = project(delta + _step(gradient, spec.alpha, spec.norm), spec.eps, spec.norm)
        delta = (pixels + delta).clamp(0, 1) - pixels
    return (pixels + delta).detach()


def attack(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    spec: AttackSpec,
    space: PixelSpace,
    target: torch.Tensor | None = None,
) -> torch.Tensor:
    """Adversarial versions of ``inputs`` (model space), as model inputs.

    Untargeted: maximise the loss of ``labels``; targeted: minimise the loss of ``target``.
    With several restarts, each example keeps its first successful (or highest-loss) attempt.
    """
    pixels = space.to_pixels(inputs.detach().float())
    goal, sign = (labels, 1.0) if target is None else (target, -1.0)
    if spec.restarts == 1 or spec.method == "fgsm":  # one attempt: nothing to compare
        return space.to_inputs(_one_attack(model, space, pixels, goal, spec, sign))
    best = pixels.clone()
    best_score = torch.full((len(pixels),), -float("inf"), device=pixels.device)
    for _ in range(spec.restarts):
        candidate = _one_attack(model, space, pixels, goal, spec, sign)
        with torch.no_grad():
            logits = model(space.to_inputs(candidate)).float()
            score = sign * F.cross_entropy(logits, goal, reduction="none")
            success = logits.argmax(1) != labels if target is None else logits.argmax(1) == target
            score = score + success.float() * 1e6  # a success beats any loss value
        better = score > best_score
        best[better], best_score[better] = candidate[better], score[better]
    return space.to_inputs(best)
