"""Image folders: layouts, resizing, bad inputs, and lazy (streamed) splits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import fathom.data
from fathom.data import load
from fathom.data.bundle import LazySplit, Split
from fathom.data.folder import ImageFiles, image_folder
from fathom.data.loader import StreamingLoader, make_loader
from fathom.errors import ConfigError, DataError


def test_mnist_tiny_uses_train_and_valid_and_ignores_the_unlabelled_test(shared_file):
    folder = shared_file("mnist_tiny", "train")
    with pytest.warns(UserWarning, match="test has no class subfolders"):
        bundle = image_folder(Path("."), path=str(folder.parent))
    assert bundle.info.class_names == ["3", "7"] and bundle.info.input_shape == (1, 28, 28)
    assert (len(bundle.train), len(bundle.val), bundle.test) == (709, 699, None)
    assert isinstance(bundle.train, Split) and bundle.train.inputs.dtype == torch.float32
    assert float(bundle.train.inputs.min()) >= 0.0 and float(bundle.train.inputs.max()) <= 1.0
    assert torch.bincount(bundle.train.targets).tolist() == [346, 363]
    assert bundle.info.extra["channels"] == 1 and bundle.info.extra["image_size"] == 28


def test_class_layout_resizes_to_the_first_image_and_keeps_its_channels(image_tree):
    bundle = image_folder(Path("."), path=str(image_tree))
    assert bundle.info.class_names == ["cat", "dog", "fox"]
    assert bundle.train.inputs.shape == (7, 3, 8, 8)  # the first image is 8x8 RGB; others resized
    assert bundle.train.targets.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert bundle.val is None and bundle.test is None  # load() carves them


def test_image_size_and_channels_options(image_tree):
    bundle = image_folder(Path("."), path=str(image_tree), image_size=5, channels=1)
    assert bundle.train.inputs.shape == (7, 1, 5, 5) and bundle.info.extra["image_size"] == 5


def test_split_folders_must_share_the_training_classes(image_tree, image_writer):
    for name in ("train", "val"):
        image_writer(image_tree.parent / "split" / name / "cat" / "0.png")
    image_writer(image_tree.parent / "split" / "val" / "cta" / "0.png")
    with pytest.raises(
        DataError, match=r"class 'cta' is not among the training classes \(did you mean 'cat'\?\)"
    ):
        image_folder(Path("."), path=str(image_tree.parent / "split"))


def test_undecodable_image_names_the_file(image_tree):
    broken = image_tree / "dog" / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=rf"{broken}: cannot decode image"):
        image_folder(Path("."), path=str(image_tree))


def test_empty_class_folder_and_empty_tree_are_errors(image_tree, tmp_path):
    (image_tree / "empty").mkdir()
    (image_tree / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"empty: class folder has no images"):
        image_folder(Path("."), path=str(image_tree))
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="no class subfolders with images"):
        image_folder(Path("."), path=str(tmp_path / "nothing"))
    with pytest.raises(DataError, match="image folder not found"):
        image_folder(Path("."), path=str(tmp_path / "missing"))


def test_bad_options_are_config_errors(image_tree):
    with pytest.raises(ConfigError, match="needs data.path"):
        image_folder(Path("."))
    with pytest.raises(ConfigError, match="channels must be 1"):
        image_folder(Path("."), path=str(image_tree), channels=2)
    with pytest.raises(ConfigError, match="in_memory must be"):
        image_folder(Path("."), path=str(image_tree), in_memory="sometimes")


def test_large_folder_becomes_lazy_and_normalised_from_train(shared_file):
    folder = shared_file("mnist_tiny")
    with pytest.warns(UserWarning):
        bundle = fathom.data.load("folder", path=str(folder), max_memory_mb=1)  # decoded ~4.4 MB
    assert all(
        isinstance(split, ImageFiles) and isinstance(split, LazySplit)
        for split in bundle.splits().values()
    )
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (567, 699, 142)  # test carved
    assert not set(bundle.train.files) & set(bundle.test.files)
    mean, std = bundle.info.normalization["mean"], bundle.info.normalization["std"]
    image, target = bundle.train[0]
    assert image.shape == (1, 28, 28) and target.dtype == torch.int64
    raw = ImageFiles(bundle.train.files[:1], bundle.train.targets[:1], "L", (28, 28))[0][0]
    assert torch.allclose(image, (raw - mean[0]) / std[0])
    assert isinstance(make_loader(bundle.train, 64), StreamingLoader)
    inputs, targets = next(iter(StreamingLoader(bundle.val, 32, workers=0)))
    assert inputs.shape == (32, 1, 28, 28) and targets.shape == (32,)


def test_load_folder_in_memory_carves_test_and_normalises(image_tree):
    bundle = load("folder", path=str(image_tree), test_fraction=0.3, val_fraction=0.2)
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 7
    assert bundle.info.normalization is not None and len(bundle.info.normalization["mean"]) == 3
