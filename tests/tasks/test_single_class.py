"""Classification refuses data with a single class (it would report 100% accuracy) in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fathom import tasks
from fathom.data import load
from fathom.errors import DataError


def _one_class_csv(tmp_path: Path) -> Path:
    file = tmp_path / "table.csv"
    file.write_text("a,b,label\n" + "".join(f"{i},{i % 3},yes\n" for i in range(30)))
    return file


def test_a_single_class_csv_is_refused_naming_the_file_column_and_class(tmp_path):
    file = _one_class_csv(tmp_path)
    info = load("csv", path=str(file), target="label").info
    with pytest.raises(DataError) as error:
        tasks.create_for_data("classification", info)
    message = str(error.value)
    assert message == (
        f"{file.resolve()}: column 'label' holds one class, 'yes', in every row; "
        "classification needs at least two classes"
    )
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("a,label\n" + "".join(f"{i},1\n" for i in range(30)))
    info = load("csv", path=str(numbers), target="label").info
    with pytest.raises(DataError, match="column 'label' holds one class, '1'"):
        tasks.create_for_data("classification", info)


def test_a_single_class_image_folder_is_refused_for_classification_only(tmp_path):
    root = tmp_path / "only-cats"
    (root / "cat").mkdir(parents=True)
    for index in range(4):
        pixels = (np.arange(36).reshape(6, 6) * 7 + 30 * index) % 256
        Image.fromarray(pixels.astype(np.uint8)).save(root / "cat" / f"{index}.png")
    info = load("folder", path=str(root), val_fraction=0.25, test_fraction=0.25).info
    with pytest.raises(DataError, match=r"only-cats: one class subfolder, 'cat' \(expected one"):
        tasks.create_for_data("classification", info)
    assert tasks.create_for_data("gan", info).name == "gan"  # a generative model needs no classes


def test_two_classes_are_accepted(tmp_path):
    file = tmp_path / "two.csv"
    file.write_text("a,label\n" + "".join(f"{i},{'yes' if i % 2 else 'no'}\n" for i in range(30)))
    task = tasks.create_for_data("classification", load("csv", path=str(file), target="label").info)
    assert task.num_classes == 2
