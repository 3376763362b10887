"""read_inputs: new images, arrays and CSV rows shaped and encoded like the training data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fathom.data.bundle import DataInfo
from fathom.data.inputs import read_inputs
from fathom.data.tabular import csv_table
from fathom.errors import DataError

GREY = DataInfo(
    name="folder",
    task="classification",
    input_shape=(1, 6, 6),
    num_classes=2,
    extra={"image_size": 6, "channels": 1},
)
RGB = DataInfo(
    name="folder",
    task="classification",
    input_shape=(3, 4, 4),
    num_classes=2,
    extra={"image_size": 4, "channels": 3},
)


def test_images_are_converted_resized_and_scaled_not_normalised(tmp_path, image_writer):
    first = image_writer(tmp_path / "a.png", size=(10, 12), mode="RGB")
    second = image_writer(tmp_path / "b.jpg", size=(6, 6), mode="L", value=255)
    inputs = read_inputs([first, second], GREY)
    assert inputs.shape == (2, 1, 6, 6) and inputs.dtype == torch.float32
    assert float(inputs.min()) >= 0.0 and float(inputs.max()) <= 1.0
    assert read_inputs([image_writer(tmp_path / "c.png", mode="RGBA")], RGB).shape == (1, 3, 4, 4)


def test_npy_single_example_batch_and_uint8_scaling(tmp_path):
    single = tmp_path / "one.npy"
    np.save(single, np.full((1, 6, 6), 255, dtype=np.uint8))
    batch = tmp_path / "batch.npy"
    np.save(batch, np.zeros((3, 6, 6), dtype=np.float32))  # grey images without the channel axis
    inputs = read_inputs([single, batch], GREY)
    assert inputs.shape == (4, 1, 6, 6) and float(inputs[0].max()) == 1.0


def test_npy_errors_name_the_file(tmp_path):
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((2, 5, 5)))
    with pytest.raises(
        DataError, match=r"wrong.npy: array of shape \(2, 5, 5\), expected \(1, 6, 6\)"
    ):
        read_inputs([wrong], GREY)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="objects.npy: not a readable .npy array"):
        read_inputs([objects], GREY)


def test_wrong_kind_of_file_is_refused(tmp_path, image_writer):
    table = DataInfo(name="csv", task="regression", input_shape=(3,), feature_names=["a", "b", "c"])
    with pytest.raises(
        DataError, match=r"a.png: an image, but the model expects rows of 3 features"
    ):
        read_inputs([image_writer(tmp_path / "a.png")], table)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"notes.txt: unsupported input type '.txt'"):
        read_inputs([tmp_path / "notes.txt"], table)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png: cannot decode image"):
        read_inputs([tmp_path / "broken.png"], GREY)
    with pytest.raises(DataError, match="input file not found"):
        read_inputs([tmp_path / "missing.png"], GREY)


def test_csv_rows_are_encoded_like_training(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("size,colour,label\n1,red,a\n2,blue,b\n3,red,a\n")
    bundle = csv_table(Path("."), path=str(train), target="label")
    assert torch.equal(read_inputs([train], bundle.info), bundle.train.inputs)
    new = tmp_path / "new.csv"
    new.write_text(
        "colour,size,extra\nblue,4.5,x\ngreen,0,y\n"
    )  # reordered, no target, unseen colour
    inputs = read_inputs([new], bundle.info)
    assert inputs.tolist() == [[4.5, 1.0, 0.0], [0.0, 0.0, 0.0]]  # size, colour=blue, colour=red


def test_csv_errors_name_file_line_and_column(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("size,colour,label\n1,red,a\n2,blue,b\n")
    info = csv_table(Path("."), path=str(train), target="label").info
    missing = tmp_path / "missing.csv"
    missing.write_text("colour,sise\nred,1\n")
    with pytest.raises(DataError, match=r"missing.csv: no column 'size' \(did you mean 'sise'\?\)"):
        read_inputs([missing], info)
    bad = tmp_path / "bad.csv"
    bad.write_text("size,colour\n1,red\nbig,blue\n")
    with pytest.raises(DataError, match=r"bad.csv line 3, column 'size': 'big' is not a number"):
        read_inputs([bad], info)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e300])
def test_non_finite_npy_is_refused_naming_the_file(tmp_path, value):
    array = np.zeros((2, 1, 6, 6))
    array[1, 0, 2, 3] = value  # 1e300 is finite in float64 but infinite as float32
    path = tmp_path / "broken.npy"
    np.save(path, array)
    with pytest.raises(DataError, match=r"broken.npy: 1 of 72 values are NaN or infinite") as error:
        read_inputs([path], GREY)
    assert "(1, 0, 2, 3)" in str(error.value) and "\n" not in str(error.value)
    np.save(path, np.full((6, 6), np.nan, dtype=np.float32))
    with pytest.raises(DataError, match="36 of 36 values"):
        read_inputs([path], GREY)


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1e400"])
def test_non_finite_csv_values_are_refused_naming_file_line_and_column(tmp_path, text):
    train = tmp_path / "train.csv"
    train.write_text("size,weight,label\n1,2,a\n2,3,b\n")
    info = csv_table(Path("."), path=str(train), target="label").info
    new = tmp_path / "new.csv"
    new.write_text(f"size,weight\n1,2\n3,{text}\n")
    with pytest.raises(DataError, match=rf"new.csv line 3, column 'weight': '{text}' is not a"):
        read_inputs([new], info)
