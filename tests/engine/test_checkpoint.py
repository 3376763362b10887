import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import fathom
from fathom.engine.checkpoint_callback import Checkpointer
from fathom.engine.checkpoint_files import (
    capture_rng,
    checkpoint_from_bytes,
    load_checkpoint,
    non_finite,
    payload_digest,
    restore_rng,
    save_checkpoint,
)
from fathom.errors import CheckpointError, TrainingDiverged
from tests_support import trainer_for


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


def test_bytes_read_earlier_load_as_the_file_and_are_verified_the_same_way(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": torch.arange(10.0), "n": torch.tensor(3)}, {"step": 4})
    payload = path.read_bytes()
    tensors, state = checkpoint_from_bytes(payload, path)
    expected, expected_state = load_checkpoint(path)
    assert state == expected_state == {"step": 4}
    assert all(torch.equal(tensors[key], value) for key, value in expected.items())
    altered = bytearray(payload)
    altered[-5] ^= 0xFF
    for data, message in [(payload[: len(payload) // 2], "truncated"), (bytes(altered), "altered"),
                          (b"\x80\x04K\x01.", "not safetensors")]:  # fmt: skip
        with pytest.raises(CheckpointError, match=message):
            checkpoint_from_bytes(data, path)


WRITE_VERSIONS = """
import sys, torch
from fathom.engine.checkpoint_files import save_checkpoint
for step in range(1, 10**6):  # replace the file again and again, as training does
    save_checkpoint(sys.argv[1], {"w": torch.full((50_000,), float(step))}, {"step": step})
"""


def test_a_checkpoint_read_while_training_replaces_it_is_never_torn(tmp_path):
    """safe_open read the header from one version of the file and the tensors from the next."""
    path = tmp_path / "last.safetensors"
    environment = {"PYTHONPATH": str(Path(fathom.__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    writer = subprocess.Popen([sys.executable, "-c", WRITE_VERSIONS, str(path)], env=environment)
    try:
        reads = 0
        while reads < 1500 and writer.poll() is None:
            if path.exists():
                tensors, state = load_checkpoint(path)  # a torn read fails its checksum
                assert float(tensors["w"][0]) == state["step"]
                reads += 1
        assert reads == 1500
    finally:
        writer.kill()
        writer.wait()


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


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs-v0"


def test_an_edited_training_state_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": torch.ones(2)}, {"loader": {"position": 3, "seed": 0}})
    payload = path.read_bytes()
    for before, after in [
        (b'\\"position\\": 3', b'\\"position\\": 4'),
        (b'\\"seed\\": 0', b'\\"seed\\": 9'),
    ]:
        assert payload.count(before) == 1
        (tmp_path / "edited.safetensors").write_bytes(payload.replace(before, after))
        with pytest.raises(CheckpointError, match="altered"):
            load_checkpoint(tmp_path / "edited.safetensors")


def test_version_1_checkpoints_still_load_and_are_still_verified(tmp_path):
    tensors, state = load_checkpoint(
        FIXTURES / "digits-cnn-v0" / "checkpoints" / "last.safetensors"
    )
    assert state["train_state"]["step"] == 42 and any(key.startswith("model/") for key in tensors)
    old = {"w": torch.arange(4.0)}
    header = {"format": "fathom-checkpoint", "version": 1, "payload_sha256": payload_digest(old)}
    metadata = {"fathom": json.dumps(header), "state": json.dumps({"step": 1})}
    save_file(old, str(tmp_path / "v1.safetensors"), metadata=metadata)
    loaded, state = load_checkpoint(tmp_path / "v1.safetensors")
    assert torch.equal(loaded["w"], old["w"]) and state == {"step": 1}
    save_file({"w": torch.zeros(4)}, str(tmp_path / "bad.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match="altered"):
        load_checkpoint(tmp_path / "bad.safetensors")


@pytest.mark.parametrize("header", ["5", "[]", '{"format": "fathom-checkpoint", "version": "2"}'])
def test_a_malformed_header_is_one_line(tmp_path, header):
    save_file({"w": torch.ones(1)}, str(tmp_path / "c.safetensors"), metadata={"fathom": header})
    with pytest.raises(CheckpointError, match="not a Fathom checkpoint"):
        load_checkpoint(tmp_path / "c.safetensors")


WRITE = """
import sys, torch
from fathom.engine.checkpoint_files import save_checkpoint
state = {"zeta": 1, "alpha": {"b": 2, "a": [1.5, None]}, "mid": "x"}
save_checkpoint(sys.argv[1], {"b": torch.arange(6.0), "a": torch.ones(2, dtype=torch.bfloat16)}, state)
"""


def test_equal_contents_give_equal_bytes_in_different_processes(tmp_path):
    """safetensors orders its metadata by a per-process hash seed; the file must not."""
    writers = [  # side by side, each with its own string hash seed
        subprocess.Popen(
            [sys.executable, "-c", WRITE, str(tmp_path / f"{index}.st")],
            env={**os.environ, "PYTHONHASHSEED": str(index + 1)},
        )  # fmt: skip
        for index in range(4)
    ]
    assert [writer.wait() for writer in writers] == [0, 0, 0, 0]
    payloads = {(tmp_path / f"{index}.st").read_bytes() for index in range(4)}
    assert len(payloads) == 1
    tensors, state = load_checkpoint(tmp_path / "0.st")
    assert state["alpha"] == {"b": 2, "a": [1.5, None]} and torch.equal(
        tensors["b"], torch.arange(6.0)
    )
    payload = next(iter(payloads))
    length = int.from_bytes(payload[:8], "little")
    header = payload[8 : 8 + length].rstrip(b" ")
    assert length % 8 == 0
    assert header == json.dumps(json.loads(header), sort_keys=True, separators=(",", ":")).encode()


def test_non_finite_names_the_tensors():
    tensors = {"ok": torch.ones(2), "nan": torch.tensor([1.0, math.nan]),
               "inf": torch.tensor([math.inf]), "int": torch.tensor([1])}  # fmt: skip
    assert non_finite(tensors) == ["nan", "inf"]
    assert non_finite(tensors, infinity_allowed=True) == ["nan"]


def test_a_checkpoint_with_non_finite_weights_is_never_written(tmp_path, blobs):
    trainer = trainer_for(blobs, epochs=1)
    checkpointer = Checkpointer(tmp_path)
    trainer.fit()
    good = checkpointer.save(trainer).read_bytes()
    with torch.no_grad():
        next(trainer.model.parameters())[0, 0] = math.nan
    with pytest.raises(
        TrainingDiverged, match=r"1 of \d+ .* at step \d+ \(first: model/0.weight\)"
    ):
        checkpointer.save(trainer)
    assert (tmp_path / "last.safetensors").read_bytes() == good
    with torch.no_grad():
        next(trainer.model.parameters())[0, 0] = 0.0
        optimizer_state = next(iter(trainer.optimizers["main"].state.values()))
        optimizer_state["exp_avg_sq"].fill_(math.inf)
    with pytest.raises(TrainingDiverged, match="optimizer/main"):
        checkpointer.save(trainer)
    assert (tmp_path / "last.safetensors").read_bytes() == good


def test_only_buffers_infinite_from_the_start_may_stay_infinite(tmp_path, blobs):
    trainer = trainer_for(blobs, epochs=1)
    trainer.model.register_buffer("mask", torch.tensor([0.0, -math.inf]))
    trainer.model.register_buffer("running", torch.ones(2))
    checkpointer = Checkpointer(tmp_path)
    trainer.callbacks.append(checkpointer)
    trainer.fit()  # fit_start, every epoch end and fit_end save with the mask's -inf
    assert checkpointer.infinite_by_design == {"mask"}
    trainer.model.running[0] = math.inf
    with pytest.raises(TrainingDiverged, match="model/running"):
        checkpointer.save(trainer)
    trainer.model.running[0], trainer.model.mask[0] = 1.0, math.nan
    with pytest.raises(TrainingDiverged, match="model/mask"):
        checkpointer.save(trainer)
