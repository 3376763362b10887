"""``data.dedupe``: validation and test rows that copy a training row are left out."""

from __future__ import annotations

import pytest
import torch

import fathom
from fathom.data.bundle import DataBundle, DataInfo, LazySplit, Split
from fathom.data.duplicates import drop_copies
from fathom.errors import ConfigError, DataError


def table(rows: torch.Tensor, names: list[str] | None = None) -> DataInfo:
    return DataInfo("table", "classification", (rows.shape[1],), num_classes=2, feature_names=names)


def test_exact_copies_leave_the_evaluation_splits_and_the_rest_stays_in_order():
    generator = torch.Generator().manual_seed(0)
    train = Split(torch.randn(100, 3, generator=generator), torch.randint(0, 2, (100,)))
    fresh = torch.randn(10, 3, generator=generator)
    test_inputs = torch.cat([fresh[:4], train.inputs[[5, 7]], fresh[4:]])
    test = Split(test_inputs, torch.arange(12) % 2, rows=torch.arange(100, 112))
    val = Split(train.inputs[:3].clone(), train.targets[:3])  # all copies: refused below
    bundle, dropped = drop_copies(DataBundle(table(train.inputs), train, None, test))
    assert dropped == {"test": 2}
    assert torch.equal(bundle.test.inputs, fresh) and bundle.test.rows.tolist() == [
        *range(100, 104),
        *range(106, 112),
    ]
    assert bundle.train is train and bundle.val is None
    with pytest.raises(DataError, match="every val row is a copy"):
        drop_copies(DataBundle(table(train.inputs), train, val, test))


def test_copies_with_new_ids_are_copies():
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(60, 3, generator=generator)
    ids = torch.arange(60, dtype=torch.float32)[:, None]
    train = Split(torch.cat([ids, features], 1), torch.randint(0, 2, (60,)))
    copies = torch.cat([ids[:20] + 500, features[:20]], 1)
    unseen = torch.cat([ids[:5] + 900, torch.randn(5, 3, generator=generator)], 1)
    test = Split(torch.cat([copies, unseen]), torch.zeros(25, dtype=torch.long))
    info = table(train.inputs, ["id", "a", "b", "c"])
    bundle, dropped = drop_copies(DataBundle(info, train, None, test))
    assert dropped == {"test": 20} and torch.equal(bundle.test.inputs, unseen)


class Lazy:  # a LazySplit: examples decoded on demand
    targets = torch.zeros(5, dtype=torch.long)
    normalization = None

    def __len__(self) -> int:
        return 5

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(2), self.targets[index]


def test_a_lazy_split_is_refused_in_one_line():
    train = Split(torch.randn(30, 2), torch.zeros(30, dtype=torch.long))
    lazy: LazySplit = Lazy()
    with pytest.raises(ConfigError, match="data.dedupe: the test split cannot be searched"):
        drop_copies(DataBundle(table(train.inputs), train, None, lazy))


def test_a_csv_with_every_row_twice_is_scored_on_unseen_rows_only(tmp_path):
    lines = ["id,a,b,label"]
    for row in range(200):  # every row twice, under two ids
        lines += [f"{2 * row + copy},{row % 17},{row % 13},{row % 2}" for copy in (0, 1)]
    (tmp_path / "twice.csv").write_text("\n".join(lines) + "\n")
    options = {"path": str(tmp_path / "twice.csv"), "target": "label", "seed": 0}
    plain = fathom.data.load("csv", **options)
    with pytest.warns(UserWarning, match=r"data.dedupe: left out \d+ val, \d+ test rows"):
        deduped = fathom.data.load("csv", dedupe=True, **options)
    assert len(deduped.train) == len(plain.train) and len(deduped.test) < len(plain.test)
    seen = {tuple(row[1:].tolist()) for row in deduped.train.inputs}
    for split in (deduped.val, deduped.test):
        assert not any(tuple(row[1:].tolist()) in seen for row in split.inputs)


def test_texts_padded_to_each_split_longest_are_compared_at_one_width():
    """Token ids are padded with 0 to each split's longest text: a test split 5 tokens wide
    copies training rows 8 wide (the vectorised search raised on the widths, and the doctor's
    data checks were silently skipped on the sentiment recipe)."""
    from fathom.diagnosis.datachecks import check_bundle

    generator = torch.Generator().manual_seed(2)
    tokens = torch.randint(4, 100, (40, 8), generator=generator)
    tokens[:20, 5:] = 0  # short texts
    train = Split(tokens, torch.randint(0, 2, (40,), generator=generator))
    test = Split(torch.cat([tokens[:3, :5], torch.randint(4, 100, (7, 5), generator=generator)]),
                 torch.zeros(10, dtype=torch.long))  # fmt: skip
    info = DataInfo("texts", "classification", (8,), num_classes=2)
    bundle, dropped = drop_copies(DataBundle(info, train, None, test))
    assert dropped == {"test": 3} and len(bundle.test) == 7
    record = check_bundle(DataBundle(info, train, None, test))
    assert record["duplicates"]["test"]["in_train"] == 3
