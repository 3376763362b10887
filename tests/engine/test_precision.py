"""``train.precision=auto``: bf16 where the device computes it natively, else fp32."""

from __future__ import annotations

import pydantic
import pytest
import torch
from torch import nn

from fathom.config import TrainConfig
from fathom.engine import features
from fathom.engine.features import Precision, native_bf16, resolve_precision

CPU = torch.device("cpu")


def _x86_cpu(monkeypatch: pytest.MonkeyPatch, *, avx512_bf16: bool, amx: bool) -> None:
    monkeypatch.setattr(features.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"),
    [(False, False, "fp32"), (True, False, "bf16"), (False, True, "bf16"), (True, True, "bf16")],
)
def test_auto_on_an_x86_cpu_follows_its_bf16_hardware(monkeypatch, avx512_bf16, amx, expected):
    _x86_cpu(monkeypatch, avx512_bf16=avx512_bf16, amx=amx)
    # oneDNN's check says yes on any AVX-512 CPU (emulated bf16): it must not decide on x86
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    precision = Precision("auto", CPU)
    assert (precision.name, precision.requested) == (expected, "auto")
    assert precision.dtype == (torch.bfloat16 if expected == "bf16" else None)
    assert not precision.scaler.is_enabled()


@pytest.mark.parametrize(("capability", "onednn"), [("AVX2", True), ("AVX512", False)])
def test_auto_is_fp32_where_kernels_are_held_below_avx512(monkeypatch, capability, onednn):
    """ATEN_CPU_CAPABILITY=avx2 or ONEDNN_MAX_CPU_ISA=AVX2 on a bf16 CPU: bf16 would be emulated."""
    _x86_cpu(monkeypatch, avx512_bf16=True, amx=True)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn)
    assert resolve_precision("auto", CPU) == "fp32"


def test_auto_elsewhere_asks_onednn(monkeypatch):
    monkeypatch.setattr(features.platform, "machine", lambda: "aarch64")
    for answer, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda a=answer: a)
        assert resolve_precision("auto", CPU) == expected


def test_auto_on_cuda_asks_for_native_bf16_only(monkeypatch):
    asked = {}

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        asked["including_emulation"] = including_emulation
        return False

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert not native_bf16(torch.device("cuda"))
    assert asked == {"including_emulation": False}
    assert resolve_precision("auto", torch.device("cuda")) == "fp32"


def test_explicit_precisions_are_kept_whatever_the_hardware(monkeypatch):
    _x86_cpu(monkeypatch, avx512_bf16=False, amx=False)
    for name in ("fp32", "bf16"):
        assert Precision(name, CPU).name == name == Precision(name, CPU).requested


def test_the_trainer_exposes_the_resolved_precision_and_trains(monkeypatch, blobs):
    from fathom.data.loader import TensorLoader
    from fathom.engine import Trainer
    from fathom.tasks.classification import Classification

    _x86_cpu(monkeypatch, avx512_bf16=False, amx=False)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    trainer = Trainer(
        model, Classification(3), TensorLoader(blobs.train, 32, shuffle=True, seed=0),
        train=TrainConfig(epochs=1, precision="auto"),
    )  # fmt: skip
    assert trainer.precision.name == "fp32" and trainer.precision.requested == "auto"
    assert trainer.fit().step == len(trainer.train_loader)


def test_config_accepts_auto_and_still_refuses_unknown_precisions():
    assert TrainConfig(precision="auto").precision == "auto"
    with pytest.raises(pydantic.ValidationError):
        TrainConfig(precision="fp8")
