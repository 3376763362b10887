"""CSV tables: typing, one-hot encoding, target detection and one-line errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from fathom.data import load
from fathom.data.tabular import csv_table
from fathom.errors import ConfigError, DataError

PETS = """age,colour,weight,kind
3,black,4.5,cat
5,white,30.0,dog
1,"black, tan",12.25,dog

7,white,5.0,cat
"""


def write(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_mixed_columns_are_typed_and_one_hot_encoded(tmp_path):
    bundle = csv_table(Path("."), path=str(write(tmp_path, PETS)), target="kind")
    info = bundle.info
    assert info.task == "classification" and info.class_names == ["cat", "dog"]
    assert info.feature_names == [
        "age",
        "colour=black",
        "colour=black, tan",
        "colour=white",
        "weight",
    ]
    assert info.input_shape == (5,) and info.target_name == "kind"
    assert bundle.train.inputs[2].tolist() == [1.0, 0.0, 1.0, 0.0, 12.25]
    assert (
        bundle.train.targets.tolist() == [0, 1, 1, 0] and bundle.train.targets.dtype == torch.int64
    )
    assert info.extra["columns"][1] == {
        "name": "colour",
        "kind": "categorical",
        "categories": ["black", "black, tan", "white"],
    }


def test_integer_target_with_few_values_is_classification_in_numeric_order(tmp_path):
    rows = "\n".join(f"{index * 0.5},{index % 12}" for index in range(48))
    bundle = csv_table(Path("."), path=str(write(tmp_path, "x,label\n" + rows)), target="label")
    assert bundle.info.task == "classification"
    assert bundle.info.class_names == [str(label) for label in range(12)]  # 10 after 9, not after 1
    assert bundle.train.targets[:13].tolist() == [*range(12), 0]


def test_float_target_is_regression(tmp_path):
    rows = "\n".join(f"{index},{index * 1.5 + 0.1}" for index in range(20))
    bundle = csv_table(Path("."), path=str(write(tmp_path, "x,price\n" + rows)), target="price")
    assert bundle.info.task == "regression" and bundle.info.output_size == 1
    assert bundle.info.extra["target_size"] == 1 and bundle.info.class_names is None
    assert bundle.train.targets.shape == (20,) and bundle.train.targets.dtype == torch.float32
    forced = csv_table(
        Path("."), path=str(write(tmp_path, "x,y\n1,0\n2,1\n3,0\n")), target="y", task="regression"
    )
    assert forced.info.task == "regression"


def test_categorical_option_forces_one_hot(tmp_path):
    bundle = csv_table(
        Path("."), path=str(write(tmp_path, PETS)), target="kind", categorical=["age"]
    )
    assert bundle.info.feature_names[:4] == ["age=1", "age=3", "age=5", "age=7"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,y\n1,2,x\n3,4\n", r"table.csv line 3: 2 fields, expected 3 as in the header"),
        (
            "a,y\n" + "1,p\n" * 10 + "oops,q\n",
            r"table.csv line 12, column 'a': 'oops' is not a number \(91% of the column is",
        ),
        ("a,b,y\n1,,x\n", r"table.csv line 2, column 'b': missing value"),
        ("", r"table.csv: empty file; expected a header row"),
        ("a,y\n\n", r"table.csv: no data rows below the header"),
        ("a,a,y\n1,2,3\n", r"table.csv line 1: column 'a' appears twice"),
        ("a,kinds\n1,x\n", r"table.csv: no column 'kind' \(did you mean 'kinds'\?\)"),
        ("kind\nx\n", r"table.csv: no feature columns besides the target 'kind'"),
    ],
    ids=[
        "field-count",
        "not-a-number",
        "missing-value",
        "empty",
        "header-only",
        "duplicate",
        "no-target",
        "no-features",
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(DataError, match=message) as error:
        csv_table(
            Path("."), path=str(write(tmp_path, text)), target="kind" if "kind" in message else "y"
        )
    assert "\n" not in str(error.value)


def test_target_mostly_numeric_but_with_a_stray_value_names_the_row(tmp_path):
    text = "a,y\n" + "".join(f"{index},{index}\n" for index in range(20)) + "5,n/a\n"
    with pytest.raises(
        DataError, match=r"line 22, column 'y': 'n/a' is not a number; set data.task=classification"
    ):
        csv_table(Path("."), path=str(write(tmp_path, text)), target="y")


def test_identifier_like_column_is_refused_rather_than_exploded(tmp_path):
    text = "id,y\n" + "".join(f"user{index},{index % 2}\n" for index in range(1001))
    with pytest.raises(
        DataError, match=r"column 'id': too many categories .*1001 distinct values\)"
    ):
        csv_table(Path("."), path=str(write(tmp_path, text)), target="y")
    bundle = csv_table(Path("."), path=str(write(tmp_path, text)), target="y", categorical="id")
    assert bundle.info.input_shape == (1001,)


def test_bad_options_are_config_errors(tmp_path):
    path = str(write(tmp_path, PETS))
    with pytest.raises(ConfigError, match="needs data.path"):
        csv_table(Path("."), path=path)
    with pytest.raises(ConfigError, match=r"data.task must be one of .*did you mean 'regression'"):
        csv_table(Path("."), path=path, target="kind", task="regresion")
    with pytest.raises(ConfigError, match=r"no column 'color' \(did you mean 'colour'\?\)"):
        csv_table(Path("."), path=path, target="kind", categorical=["color"])
    with pytest.raises(DataError, match="CSV file not found"):
        csv_table(Path("."), path=str(tmp_path / "missing.csv"), target="kind")


def test_load_csv_normalises_features_and_carves_splits(tmp_path):
    rows = "\n".join(f"{index},{index % 3 * 10},{'abc'[index % 3]}" for index in range(60))
    bundle = load("csv", path=str(write(tmp_path, "x,z,kind\n" + rows)), target="kind")
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (43, 5, 12)
    assert bundle.info.normalization is not None and len(bundle.info.normalization["mean"]) == 2


def test_adult_sample_from_shared_copy(tmp_path, shared_file):
    source = shared_file("tabular", "adult", "adult.data")
    header = "age,workclass,fnlwgt,education,education-num,marital-status,occupation,relationship,race,sex,capital-gain,capital-loss,hours-per-week,native-country,income"
    with open(source, newline="") as file:
        rows = [row for _, row in zip(range(500), csv.reader(file), strict=False) if row]
    table = tmp_path / "adult.csv"
    with open(table, "w", newline="") as file:
        csv.writer(file).writerows([header.split(","), *rows])
    bundle = csv_table(Path("."), path=str(table), target="income")
    assert bundle.info.class_names == ["<=50K", ">50K"] and len(bundle.train) == 500
    assert "workclass=?" in bundle.info.feature_names  # missing values coded '?' are a category
    assert "age" in bundle.info.feature_names and "sex=Female" in bundle.info.feature_names
