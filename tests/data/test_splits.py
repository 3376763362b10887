"""finalize: normalisation that survives constant columns, and each example's source row kept."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from fathom.data import load
from fathom.data.bundle import DataBundle, DataInfo, Split
from fathom.data.splits import finalize
from fathom.errors import DataError


def _table(train: torch.Tensor, test: torch.Tensor, names: list[str]) -> DataBundle:
    info = DataInfo("toy", "classification", (train.shape[1],), 2, ["a", "b"], names)
    targets = torch.arange(len(train)) % 2
    test_targets = torch.arange(len(test)) % 2
    return DataBundle(
        info, Split(train, targets), Split(train[:1], targets[:1]), Split(test, test_targets)
    )


def test_constant_columns_are_centred_not_scaled_and_named_in_one_warning():
    generator = torch.Generator().manual_seed(0)
    train = torch.randn(50, 3, generator=generator) * 4 + 10
    train[:, 1] = 3.0  # the same value in every training row
    test = train[:4].clone()
    test[:, 1] = 4.0  # a value training never saw: once divided by 1e-6, now by 1
    with pytest.warns(UserWarning) as caught:
        bundle = finalize(
            _table(train, test, ["x", "flat", "z"]), val_fraction=0, test_fraction=0, seed=0,
            normalize=True,
        )  # fmt: skip
    messages = [str(warning.message) for warning in caught]
    assert messages == [
        "column flat: the same value in every training example; left unscaled (std 1)"
    ]
    assert bundle.info.normalization["std"][1] == 1.0
    assert bundle.info.normalization["mean"][1] == 3.0
    assert torch.all(bundle.test.inputs[:, 1] == 1.0)
    scaled = bundle.train.inputs[:, [0, 2]]
    assert torch.allclose(scaled.std(dim=0), torch.ones(2), atol=1e-5)


def test_varying_data_gives_no_warning_and_one_example_no_nan():
    train = torch.tensor([[0.0, 1.0], [2.0, 5.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        finalize(_table(train, train, ["u", "v"]), val_fraction=0, test_fraction=0, seed=0,
                 normalize=True)  # fmt: skip
    with pytest.warns(UserWarning, match="columns u, v:"):
        single = finalize(_table(train[:1], train, ["u", "v"]), val_fraction=0,
                          test_fraction=0, seed=0, normalize=True)  # fmt: skip
    assert single.info.normalization["std"] == [1.0, 1.0]
    assert torch.isfinite(single.test.inputs).all()


def test_a_constant_image_channel_is_named_by_its_index():
    images = torch.rand(20, 3, 4, 4)
    images[:, 2] = 0.5
    info = DataInfo("toy", "classification", (3, 4, 4), 2, ["a", "b"])
    bundle = DataBundle(info, Split(images, torch.arange(20) % 2))
    with pytest.warns(UserWarning, match=r"^channel 2: the same value"):
        bundle = finalize(bundle, val_fraction=0.2, test_fraction=0.2, seed=0, normalize=True)
    assert bundle.info.normalization["std"][2] == 1.0


def test_csv_rows_are_the_file_lines_through_carving_and_limit(tmp_path: Path):
    file = tmp_path / "table.csv"
    lines = ["line,feature,label"]
    for number in range(2, 122):
        lines.append(f"{number},{number % 7},{'yes' if number % 3 else 'no'}")
        if number % 10 == 0:
            lines.append("")  # a blank line still counts in the file's numbering
    file.write_text("\n".join(lines) + "\n")
    bundle = load(
        "csv", path=str(file), target="label", normalize=False, limit=40, val_fraction=0.2
    )
    seen = []
    for split in bundle.splits().values():
        assert split.rows is not None and split.rows.dtype == torch.int64
        line_column = split.inputs[:, 0].long()
        file_lines = [lines[int(row) - 1] for row in split.rows]
        assert [int(text.split(",")[0]) for text in file_lines] == line_column.tolist()
        seen += split.rows.tolist()
    assert len(bundle.train) == 40 and len(seen) == len(set(seen))


def test_in_memory_rows_index_the_dataset_split_and_folders_keep_their_files(image_tree):
    bundle = load("folder", path=str(image_tree), test_fraction=0.3, val_fraction=0.2)
    files, rows = [], []
    for split in bundle.splits().values():
        assert len(split.files) == len(split) == len(split.rows)
        for file, target in zip(split.files, split.targets.tolist(), strict=True):
            assert Path(file).parent.name == bundle.info.class_names[target]
        files += split.files
        rows += split.rows.tolist()
    assert sorted(rows) == list(range(7))  # positions in the folder's one (training) split
    assert sorted(files) == sorted(str(path) for path in image_tree.rglob("*.png"))


def test_given_splits_are_numbered_each_from_zero(mnist_raw):
    small = DataBundle(mnist_raw.info, mnist_raw.train.subset(torch.arange(300)),
                       test=mnist_raw.test.subset(torch.arange(100)))  # fmt: skip
    bundle = finalize(small, val_fraction=0.2, test_fraction=0.2, seed=3, normalize=False)
    assert torch.equal(bundle.test.rows, torch.arange(100))
    rows = torch.cat([bundle.train.rows, bundle.val.rows])
    assert sorted(rows.tolist()) == list(range(300))
    assert torch.equal(bundle.val.inputs, mnist_raw.train.inputs[bundle.val.rows])


def test_subset_by_mask_or_index_keeps_rows_and_files_aligned():
    split = Split(torch.arange(5.0)[:, None], torch.arange(5), torch.arange(10, 15), list("abcde"))
    by_mask = split.subset(torch.tensor([True, False, True, False, True]))
    by_index = split.subset(torch.tensor([4, 0]))
    assert by_mask.rows.tolist() == [10, 12, 14] and by_mask.files == ["a", "c", "e"]
    assert by_index.rows.tolist() == [14, 10] and by_index.files == ["e", "a"]
    assert by_index.inputs.flatten().tolist() == [4.0, 0.0]
    with pytest.raises(DataError, match="3 rows but 5 examples"):
        Split(torch.zeros(5, 1), torch.zeros(5), torch.arange(3))
