"""Your own images: one subfolder per class, optionally already split into train/valid/test.

Small folders are decoded once into memory (in parallel threads; Pillow releases the GIL while
decoding). Folders whose decoded size exceeds ``max_memory_mb`` become ``ImageFiles`` splits that
decode one file per example, so a ``StreamingLoader`` reads them from disk.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fathom.data.bundle import DataBundle, DataInfo
from fathom.data.vision import to_split
from fathom.errors import ConfigError, DataError, closest

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
SPLIT_FOLDERS = {"val": ("valid", "val", "validation"), "test": ("test",)}
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


def image_folder(
    root: Path,
    download: bool = True,
    path: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    in_memory: str | bool = "auto",
    max_memory_mb: int = 2048,
) -> DataBundle:
    """Images under ``path`` (relative to the working directory), one subfolder per class.

    If ``path`` holds ``train/`` (and optionally ``valid/``/``val/`` and ``test/``) with class
    subfolders, those are the splits; a folder of loose, unlabelled images is not a split.
    Images are resized to ``image_size`` (default: the first image's size) and converted to
    ``channels`` (1 or 3; default: the first image's). ``root`` and ``download`` are unused.
    """
    _check_options(path, image_size, channels, in_memory, max_memory_mb)
    folder = Path(str(path)).expanduser()
    if not folder.is_dir():
        raise DataError(f"image folder not found: {folder}")
    found = find_splits(folder)
    class_names = sorted(found["train"][1])
    files, targets = {}, {}
    for split, (split_folder, classes) in found.items():
        files[split], targets[split] = _label_files(classes, class_names, split_folder)
    mode, size = _image_format(files["train"][0], channels, image_size)
    shape = (1 if mode == "L" else 3, size[1], size[0])
    info = DataInfo(
        name="folder",
        task="classification",
        input_shape=shape,
        num_classes=len(class_names),
        class_names=class_names,
        extra={"image_size": shape[1], "channels": shape[0], "path": str(folder.resolve())},
    )
    decoded_mb = sum(len(paths) for paths in files.values()) * int(np.prod(shape)) * 4 / 2**20
    if in_memory is True or (in_memory == "auto" and decoded_mb <= max_memory_mb):
        splits = {
            split: to_split(
                decode_all(paths, mode, size), targets[split].numpy(), len(class_names), folder
            )
            for split, paths in files.items()
        }
        for split, paths in files.items():
            splits[split].files = [str(path) for path in paths]  # each example's image file
        return DataBundle(info, splits["train"], splits.get("val"), splits.get("test"))
    lazy = {split: ImageFiles(paths, targets[split], mode, size) for split, paths in files.items()}
    return DataBundle(info, lazy["train"], lazy.get("val"), lazy.get("test"))


def _check_options(
    path: str | None,
    image_size: int | None,
    channels: int | None,
    in_memory: object,
    max_memory_mb: int,
) -> None:
    if not path:
        raise ConfigError(
            "dataset 'folder' needs data.path: a folder with one subfolder of images per class"
        )
    if image_size is not None and (not isinstance(image_size, int) or image_size <= 0):
        raise ConfigError(f"data.image_size must be a positive integer, got {image_size!r}")
    if channels not in (None, 1, 3):
        raise ConfigError(f"data.channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    if in_memory not in ("auto", True, False):
        raise ConfigError(f"data.in_memory must be auto, true or false, got {in_memory!r}")
    if max_memory_mb <= 0:
        raise ConfigError(f"data.max_memory_mb must be positive, got {max_memory_mb!r}")


def find_splits(folder: Path) -> dict[str, tuple[Path, dict[str, list[Path]]]]:
    """``{split: (its folder, {class name: image files})}``: train/valid/test subfolders if
    ``train/`` has class subfolders, otherwise the whole folder is the training split."""
    subfolders = {entry.name.lower(): entry for entry in _visible_folders(folder)}
    train = class_files(subfolders["train"]) if "train" in subfolders else {}
    if not train:
        classes = class_files(folder)
        if not classes:
            raise DataError(
                f"{folder}: no class subfolders with images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                "expected one subfolder per class"
            )
        return {"train": (folder, classes)}
    found = {"train": (subfolders["train"], train)}
    for split, names in SPLIT_FOLDERS.items():
        candidates = [subfolders[name] for name in names if name in subfolders]
        if not candidates:
            continue
        classes = class_files(candidates[0])
        if classes:
            found[split] = (candidates[0], classes)
        else:
            warnings.warn(
                f"{candidates[0]} has no class subfolders (unlabelled images); not used as the {split} split",
                stacklevel=3,
            )
    return found


def class_files(folder: Path) -> dict[str, list[Path]]:
    """``{class name: sorted image files}`` for each visible subfolder; an empty class is an error."""
    classes = {}
    for subfolder in _visible_folders(folder):
        images = sorted(
            file
            for file in subfolder.rglob("*")
            if file.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in file.relative_to(subfolder).parts)
            and file.is_file()
        )
        if not images:
            raise DataError(
                f"{subfolder}: class folder has no images ({', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        classes[subfolder.name] = images
    return classes


def _visible_folders(folder: Path) -> list[Path]:
    return sorted(
        entry for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith(".")
    )


def _label_files(
    classes: dict[str, list[Path]], class_names: list[str], where: Path
) -> tuple[list[Path], torch.Tensor]:
    files, targets = [], []
    for name, paths in classes.items():
        if name not in class_names:
            raise DataError(
                f"{where / name}: class '{name}' is not among the training classes{closest(name, class_names)}"
            )
        files.extend(paths)
        targets.extend([class_names.index(name)] * len(paths))
    return files, torch.tensor(targets, dtype=torch.int64)


def _image_format(
    first: Path, channels: int | None, image_size: int | None
) -> tuple[str, tuple[int, int]]:
    """Pillow mode ("L" or "RGB") and (width, height) for every image, defaulting to the first's."""
    try:
        with Image.open(first) as image:
            mode, size = image.mode, image.size
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"{first}: cannot decode image ({error})") from None
    if channels is None:
        channels = 1 if mode in GREY_MODES else 3
    return ("L" if channels == 1 else "RGB"), ((image_size, image_size) if image_size else size)


def decode_image(path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """One image file as uint8 (H, W, C) in ``mode`` ("L" or "RGB"), resized to (width, height)."""
    try:
        with Image.open(path) as image:
            if image.mode == "P" and "transparency" in image.info:
                image = image.convert("RGBA")
            converted = image.convert(mode)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"{path}: cannot decode image ({error})") from None
    if converted.size != size:
        converted = converted.resize(size, Image.Resampling.BILINEAR)
    array = np.array(converted, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def decode_all(paths: list[Path], mode: str, size: tuple[int, int]) -> np.ndarray:
    """Decode many files in parallel threads into one uint8 array (N, C, H, W)."""
    channels = 1 if mode == "L" else 3
    output = np.empty((len(paths), size[1], size[0], channels), dtype=np.uint8)

    def decode_into(index: int) -> None:
        output[index] = decode_image(paths[index], mode, size)

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(decode_into, range(len(paths))))
    return output.transpose(0, 3, 1, 2)


class ImageFiles:
    """A ``LazySplit`` of image files, decoded (and normalised, once statistics are set) per example."""

    def __init__(
        self,
        files: list[Path],
        targets: torch.Tensor,
        mode: str,
        size: tuple[int, int],
        normalization: dict[str, list[float]] | None = None,
    ) -> None:
        self.files = list(files)
        self.targets = targets
        self.mode = mode
        self.size = size
        self.normalization = normalization

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        array = decode_image(self.files[index], self.mode, self.size)
        image = torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)
        if self.normalization is not None:
            mean = torch.tensor(self.normalization["mean"]).view(-1, 1, 1)
            std = torch.tensor(self.normalization["std"]).view(-1, 1, 1)
            image = (image - mean) / std
        return image, self.targets[index]

    def subset(self, indices: torch.Tensor) -> ImageFiles:
        chosen = [self.files[int(index)] for index in indices]
        return ImageFiles(chosen, self.targets[indices], self.mode, self.size, self.normalization)
