"""Config fuzz: ~300 seeded mutations of the embedded default's YAML config, each run through
config loading and model, task and trainer building (no training). Each either validates or
raises a FathomError, never another exception; a mutation that is invalid by construction
(a wrong type, NaN, an unknown key, bad bytes, deep nesting) must be refused."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from fathom import assemble as api
from fathom.errors import FathomError

SEED = 12
CASES = 300
MODEL_OPTIONS = {  # the default CNN's options spelled out, so that they are mutated too
    "channels": [32, 64], "hidden": 128, "kernel_size": 3, "dropout": 0.0,
    "batch_norm": True, "activation": "relu",
}  # fmt: skip
ODD_VALUES: list[Any] = [True, False, None, 2.5, -1, 0, 10**30, 2**70, 1e308, "ten", "",
                         [], [1, 2], {"a": 1}, float("nan"), float("inf"), [[1]]]  # fmt: skip


def base_config() -> dict[str, Any]:
    config = api.resolve_config(overrides=["train.diagnostics=false"]).to_dict()
    config["model"].update(MODEL_OPTIONS)
    config.pop("recipe")
    return config


def leaves(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, (*prefix, key))
        else:
            yield (*prefix, key)


def set_leaf(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def get_leaf(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def obviously_invalid(old: Any, new: Any) -> bool:
    """A value no strict config accepts in place of ``old``: another kind of scalar, NaN, ..."""
    if isinstance(new, float) and new != new or new in (float("inf"),):
        return True
    number = (int, float)
    if isinstance(old, bool):
        return not isinstance(new, bool)
    if isinstance(old, number) and not isinstance(old, bool):
        return isinstance(new, bool | str | list | dict) or new is None
    if isinstance(old, str):
        return isinstance(new, bool | int | float | list | dict) or new is None
    return False


def mutate(rng: random.Random, base: dict[str, Any]) -> tuple[str, bytes, bool]:
    """(description, file bytes, must be refused) for one mutation of ``base``."""
    config = copy.deepcopy(base)
    kind = rng.choice(["swap", "swap", "swap", "scale", "unknown", "nesting", "bytes"])
    paths = list(leaves(config))
    path = rng.choice(paths)
    old = get_leaf(config, path)
    name = ".".join(path)
    if kind == "swap":
        new = rng.choice(ODD_VALUES)
        set_leaf(config, path, new)
        return f"{name}: {new!r}", dump(config), obviously_invalid(old, new)
    if kind == "scale" and isinstance(old, int | float) and not isinstance(old, bool):
        new = old * rng.choice([-1, 10**6, 1e12, 0.5, 3])
        set_leaf(config, path, new)
        return f"{name}: {new!r}", dump(config), False
    if kind == "unknown":
        section = rng.choice(["data", "model", "optim", "schedule", "train", "run", ""])
        key = rng.choice(["epochz", "lr_", "x", "seeed"])
        (config[section] if section else config)[key] = 1
        return f"unknown key {section}.{key}", dump(config), True
    if kind == "nesting":
        depth = rng.choice([40, 200, 3000, 5000])
        text = dump(config).decode() + f"deep: {'[' * depth}1{']' * depth}\n"
        return f"nested {depth} deep", text.encode(), True
    return encoded(rng, config)


def encoded(rng: random.Random, config: dict[str, Any]) -> tuple[str, bytes, bool]:
    config["run"]["name"] = "café"  # a non-ASCII character, as a user's run name would have
    text = dump(config).decode()
    choice = rng.choice(["latin-1", "utf-16", "binary", "one byte"])
    if choice == "binary":
        return "binary file", bytes(rng.randrange(256) for _ in range(300)), True
    if choice == "one byte":
        data = bytearray(text.encode())
        data.insert(rng.randrange(len(data)), 0xFF)
        return "one non-UTF-8 byte", bytes(data), True
    return f"encoded as {choice}", text.encode(choice), True


def dump(config: dict[str, Any]) -> bytes:
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True).encode()


class Builder:
    """Config loading, data (cached per data section), model, task and trainer; no training."""

    def __init__(self) -> None:
        self.bundles: dict[str, Any] = {}

    def __call__(self, path: Path) -> None:
        config = api.resolve_config(path)
        key = json.dumps([config.data.model_dump(mode="json"), config.train.seed], default=str)
        if key not in self.bundles:
            self.bundles[key] = api.load_data(config)
        bundle = self.bundles[key]
        model = api.build_model(config, bundle.info)
        threads = torch.get_num_threads()
        try:
            api.build_trainer(config, model, bundle, None)
        finally:
            torch.set_num_threads(threads)


def test_mutated_configs_validate_or_raise_one_fathom_error(tmp_path):
    rng = random.Random(SEED)
    base = base_config()
    build = Builder()
    build(write(tmp_path / "base.yaml", dump(base)))  # the unmutated config builds
    outcomes: dict[str, int] = {"accepted": 0, "refused": 0}
    for index in range(CASES):
        description, data, must_refuse = mutate(rng, base)
        path = write(tmp_path / f"case{index}.yaml", data)
        try:
            build(path)
        except FathomError as error:
            assert "\n" not in str(error), f"case {index} ({description}): {error}"
            outcomes["refused"] += 1
            continue
        except Exception as error:  # noqa: BLE001 - the point: no other exception escapes
            pytest.fail(f"case {index} ({description}): {type(error).__name__}: {error}")
        assert not must_refuse, f"case {index} ({description}) was accepted"
        outcomes["accepted"] += 1
    assert outcomes["refused"] > CASES // 3 and outcomes["accepted"] > 10, outcomes


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
