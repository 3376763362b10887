import pytest
import torch
from safetensors.torch import save_file

from fathom.engine.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from fathom.errors import CheckpointError


def test_round_trip(tmp_path):
    tensors = {
        "model/w": torch.randn(3, 4),
        "model/step": torch.tensor(7),
        "flag": torch.tensor([True, False]),
    }
    save_checkpoint(tmp_path / "c.safetensors", tensors, {"step": 7, "nested": {"a": [1, 2]}})
    loaded, state = load_checkpoint(tmp_path / "c.safetensors")
    assert state == {"step": 7, "nested": {"a": [1, 2]}}
    assert all(torch.equal(loaded[key], value) for key, value in tensors.items())


def test_truncated_altered_and_foreign_files_are_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": torch.arange(1000.0)}, {"step": 1})
    payload = path.read_bytes()

    (tmp_path / "truncated.safetensors").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "truncated.safetensors")

    altered = bytearray(payload)
    altered[-5] ^= 0xFF
    (tmp_path / "altered.safetensors").write_bytes(bytes(altered))
    with pytest.raises(CheckpointError, match="altered"):
        load_checkpoint(tmp_path / "altered.safetensors")

    save_file({"w": torch.ones(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not a Fathom checkpoint"):
        load_checkpoint(tmp_path / "foreign.safetensors")

    (tmp_path / "pickle.pt").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "pickle.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": torch.ones(2)}, {"step": 1})
    good = path.read_bytes()
    monkeypatch.setattr(
        "fathom.files.os.replace", lambda *a: (_ for _ in ()).throw(OSError("disk full"))
    )
    with pytest.raises(OSError):
        save_checkpoint(path, {"w": torch.zeros(2)}, {"step": 2})
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


def test_rng_states_round_trip():
    import random

    import numpy as np

    tensors, saved = capture_rng()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(tensors, saved)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
