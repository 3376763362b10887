"""Fairness metrics against a hand-made table, reweighing, and data.sensitive through splits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import fathom
from fathom.errors import ConfigError
from fathom.trust.fairness import group_metrics, reweighing_weights

# group a: 4 rows, group b: 6 rows
LABELS = [1, 1, 0, 0, 1, 0, 0, 0, 1, 1]
PREDICTIONS = [1, 0, 1, 0, 1, 0, 0, 0, 0, 1]
GROUPS = ["a"] * 4 + ["b"] * 6


def test_group_metrics_agree_with_the_table_worked_by_hand() -> None:
    result = group_metrics(LABELS, PREDICTIONS, GROUPS)
    a, b = result["by_group"]["a"], result["by_group"]["b"]
    assert a["selection_rate"] == 0.5 and math.isclose(b["selection_rate"], 2 / 6)
    assert a["true_positive_rate"] == 0.5 and math.isclose(b["true_positive_rate"], 2 / 3)
    assert a["false_positive_rate"] == 0.5 and b["false_positive_rate"] == 0.0
    assert a["accuracy"] == 0.5 and math.isclose(b["accuracy"], 5 / 6)
    assert math.isclose(result["demographic_parity_difference"], 0.5 - 2 / 6)
    assert math.isclose(result["demographic_parity_ratio"], (2 / 6) / 0.5)
    assert math.isclose(result["equalized_odds_difference"], max(2 / 3 - 0.5, 0.5 - 0.0))


def test_reweighing_makes_label_and_group_independent() -> None:
    weights = reweighing_weights(LABELS, GROUPS)
    labels, groups = np.asarray(LABELS), np.asarray(GROUPS)
    assert math.isclose(weights.mean(), 1.0)
    rates = [np.average(labels[groups == g], weights=weights[groups == g]) for g in ("a", "b")]
    assert math.isclose(rates[0], rates[1]) and math.isclose(rates[0], labels.mean())


def write_table(path: Path, rows: int = 60) -> Path:
    lines = ["code,sex,x,label"]
    for row in range(rows):
        sex = "female" if row % 3 == 0 else "male"
        lines.append(f"{int(sex == 'male')},{sex},{row % 7},{int(row % 2 == 0)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_sensitive_column_follows_each_example_through_the_splits(tmp_path: Path) -> None:
    table = write_table(tmp_path / "people.csv")
    bundle = fathom.data.load("csv", path=str(table), target="label", sensitive="sex",
                              normalize=False, val_fraction=0.2, test_fraction=0.2, seed=0)  # fmt: skip
    assert bundle.info.feature_names == ["code", "x"]
    assert bundle.info.extra["sensitive"] == {"column": "sex", "groups": ["female", "male"]}
    for split in bundle.splits().values():
        assert split.groups is not None and len(split.groups) == len(split)
        assert split.inputs[:, 0].long().tolist() == split.groups.tolist()


def test_a_missing_sensitive_column_is_one_config_error(tmp_path: Path) -> None:
    table = write_table(tmp_path / "people.csv")
    with pytest.raises(ConfigError, match="no column 'gender'"):
        fathom.data.load("csv", path=str(table), target="label", sensitive="gender")
