"""What the image-generating tasks (GAN, VAE, diffusion) share: pixel conversions, requests,
sample files, running means, and the callback that saves a sample grid after every epoch.

Training inputs are the dataset's (possibly normalised) images; ``ImageGenerator.to_unit``
undoes the dataset's normalisation (``info.normalization``) and maps pixels to [-1, 1], so the
networks see the same range whether or not ``data.normalize`` is on. Samples are returned and
written as pixels in [0, 1].
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from fathom.data.bundle import DataInfo
from fathom.engine.callbacks import Callback
from fathom.errors import ConfigError, DataError
from fathom.files import atomic_write_bytes
from fathom.report import save_section
from fathom.tasks.base import Batch, GenerativeTask

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer

GRID_SIZE = 64  # images in each per-epoch grid (8 x 8; conditional: 4 rows, a class per column)


class MeanMetrics:
    """Running sums of named per-example values; ``compute`` gives their means."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    @torch.no_grad()
    def update(self, count: int, **sums: torch.Tensor) -> None:
        for key, value in sums.items():
            total = self.sums.get(key)
            value = value.detach().double()
            self.sums[key] = value if total is None else total + value
        self.count += count

    def compute(self) -> dict[str, Any]:
        return {key: float(value) / max(1, self.count) for key, value in self.sums.items()}

    def details(self) -> dict[str, Any]:
        return {}


def image_grid(pixels: torch.Tensor, columns: int | None = None) -> Image.Image:
    """(N, C, H, W) pixels in [0, 1] → one PIL image with ``columns`` columns (default: square)."""
    count, channels, height, width = pixels.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.ones((rows * (height + 2) + 2, columns * (width + 2) + 2, channels), np.float32)
    values = pixels.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    for index, image in enumerate(values):
        top, left = 2 + (index // columns) * (height + 2), 2 + (index % columns) * (width + 2)
        grid[top : top + height, left : left + width] = image
    array = (grid * 255).round().astype(np.uint8)
    return Image.fromarray(array[..., 0] if channels == 1 else array)


def label_columns(labels: torch.Tensor | None) -> int | None:
    """Grid columns that put one class per column when classes were sampled in turn."""
    if labels is None or len(labels) < 2 or int(labels[0]) == int(labels[1]):
        return None
    classes = int(labels.max()) + 1
    return classes if classes <= 20 else None


def save_png(image: Image.Image, path: Path, scale: int = 2) -> None:
    """Write ``image`` (enlarged ``scale`` times, nearest neighbour) atomically as a PNG."""
    import io

    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    atomic_write_bytes(path, buffer.getvalue())


class ImageGenerator(GenerativeTask):
    """Base of the image-generating tasks; subclasses implement ``sample`` and the losses."""

    monitor = "loss"
    monitor_mode = "min"

    def __init__(self, info: DataInfo) -> None:
        if len(info.input_shape) != 3:
            raise DataError(
                f"task '{self.name}' needs images (channels, height, width) but dataset "
                f"'{info.name}' has inputs of shape {list(info.input_shape)}"
            )
        self.info = info
        normalization = info.normalization or {}
        channels = info.input_shape[0]
        self.mean = torch.tensor(normalization.get("mean", [0.0] * channels)).view(1, -1, 1, 1)
        self.std = torch.tensor(normalization.get("std", [1.0] * channels)).view(1, -1, 1, 1)

    # ------------------------------------------------------------- pixel ranges
    def to_unit(self, inputs: torch.Tensor) -> torch.Tensor:
        """Dataset inputs (normalised or not) → pixels mapped to [-1, 1]."""
        mean, std = self.mean.to(inputs.device), self.std.to(inputs.device)
        return (inputs.float() * std + mean) * 2.0 - 1.0

    def to_pixels(self, inputs: torch.Tensor) -> torch.Tensor:
        """Dataset inputs (normalised or not) → pixels in [0, 1]."""
        return ((self.to_unit(inputs) + 1.0) / 2.0).clamp(0.0, 1.0)

    # ------------------------------------------------------------- sampling
    def sample(
        self,
        model: nn.Module,
        labels: torch.Tensor | None,
        count: int,
        generator: torch.Generator,
        **options: Any,
    ) -> torch.Tensor:
        """``count`` images as pixels in [0, 1] (labels: one class per image, or None)."""
        raise NotImplementedError

    def request_labels(
        self, model: nn.Module, count: int, label: int | None, device: torch.device
    ) -> torch.Tensor | None:
        """Labels to sample: ``label`` for all, else classes in turn; None if unconditional."""
        classes = int(getattr(model, "num_classes", 0) or 0)
        if label is not None:
            if not classes:
                raise ConfigError(
                    f"--label {label}: this {self.name} model is not class-conditional "
                    "(train it with model.conditional=true)"
                )
            if not 0 <= int(label) < classes:
                raise ConfigError(f"--label {label} is out of range 0..{classes - 1}")
            return torch.full((count,), int(label), dtype=torch.long, device=device)
        if not classes:
            return None
        return torch.arange(count, device=device) % classes

    @torch.no_grad()
    def sample_images(
        self, model: nn.Module, n: int = 64, label: int | None = None, seed: int = 0, **options: Any
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(pixels, labels) of ``n`` samples from a fixed ``seed``, in eval mode, in chunks."""
        if int(n) < 1:
            raise ConfigError(f"--n must be at least 1, got {n}")
        device = next(model.parameters()).device
        labels = self.request_labels(model, int(n), label, device)
        generator = torch.Generator(device=device).manual_seed(int(seed))
        was_training = model.training
        model.eval()
        chunks = []
        for start in range(0, int(n), 500):
            count = min(500, int(n) - start)
            part = labels[start : start + count] if labels is not None else None
            chunks.append(self.sample(model, part, count, generator, **options).float().cpu())
        model.train(was_training)
        return torch.cat(chunks), labels.cpu() if labels is not None else None

    def write_samples(
        self,
        pixels: torch.Tensor,
        labels: torch.Tensor | None,
        output_dir: Path,
        stem: str = "samples",
    ) -> dict[str, Any]:
        """``stem.png`` (a grid) and ``stem.npy`` (N, C, H, W float32 in [0, 1]); a summary."""
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        grid_path, array_path = output_dir / f"{stem}.png", output_dir / f"{stem}.npy"
        shown = labels[:400] if labels is not None else None
        save_png(image_grid(pixels[:400], label_columns(shown)), grid_path)
        import io

        buffer = io.BytesIO()
        np.save(buffer, pixels.numpy().astype(np.float32))
        atomic_write_bytes(array_path, buffer.getvalue())
        files = [str(grid_path), str(array_path)]
        if labels is not None:
            label_path = output_dir / f"{stem}-labels.npy"
            buffer = io.BytesIO()
            np.save(buffer, labels.numpy().astype(np.int64))
            atomic_write_bytes(label_path, buffer.getvalue())
            files.append(str(label_path))
        return {
            "files": files,
            "text": None,
            "count": len(pixels),
            "samples_file": str(array_path),
            "labels_file": files[2] if labels is not None else None,
        }

    def grid_options(self) -> dict[str, Any]:
        """Sampling options of the per-epoch grids (diffusion: fewer steps)."""
        return {}

    def callbacks(self, run_dir: Path | None) -> list[Callback]:
        return [SampleGrids(self, run_dir)] if run_dir is not None else []

    def report_figures(self, trainer: Trainer, run_dir: Path) -> list[str]:
        """Extra figures for the report at the end of training (the VAE adds reconstructions)."""
        return []


class SampleGrids(Callback):
    """After every epoch: a grid of samples from fixed noise in RUN/plots, and a report section."""

    def __init__(self, task: ImageGenerator, run_dir: Path | None) -> None:
        self.task = task
        self.run_dir = Path(run_dir) if run_dir is not None else None

    def epoch_end(self, trainer: Trainer) -> None:
        if self.run_dir is None:
            return
        model = trainer.ema.shadow if trainer.ema is not None else trainer.model
        classes = int(getattr(model, "num_classes", 0) or 0)
        count = 4 * classes if 0 < classes <= 20 else GRID_SIZE
        pixels, labels = self.task.sample_images(model, count, seed=0, **self.task.grid_options())
        path = self.run_dir / "plots" / f"samples_epoch_{trainer.state.epoch:03d}.png"
        save_png(image_grid(pixels, label_columns(labels)), path)
        self._section()

    def fit_end(self, trainer: Trainer) -> None:
        if self.run_dir is None:
            return
        extra = self.task.report_figures(trainer, self.run_dir)
        self._section(extra)

    def _section(self, extra: list[str] | None = None) -> None:
        assert self.run_dir is not None
        grids = sorted((self.run_dir / "plots").glob("samples_epoch_*.png"))
        if len(grids) > 12:  # keep the report short: 12 grids spread over training
            picks = np.linspace(0, len(grids) - 1, 12).round().astype(int)
            grids = [grids[index] for index in sorted(set(picks))]
        images = [f"plots/{path.name}" for path in grids]
        if extra is None:
            existing = self.run_dir / "sections" / "samples.json"
            extra = []
            if existing.is_file():
                import json

                saved = json.loads(existing.read_text(encoding="utf-8")).get("images", [])
                extra = [name for name in saved if "samples_epoch_" not in name]
        save_section(
            self.run_dir,
            "samples",
            f"Samples ({self.task.name})",
            text=(
                "Samples after each epoch, drawn from the same noise (seed 0) so the grids are "
                "comparable; class-conditional models show the classes in turn."
            ),
            images=[*images, *extra],
        )


def batch_labels(model: nn.Module, batch: Batch) -> torch.Tensor | None:
    """The batch's class labels if the model is class-conditional, else None."""
    if not int(getattr(model, "num_classes", 0) or 0):
        return None
    targets = batch[1]
    return targets.argmax(dim=1) if targets.is_floating_point() else targets.long()
