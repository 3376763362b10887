"""Training features as small composable objects: precision, clipping, weight penalties."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import platform
from collections.abc import Iterator

import torch
from torch import nn

from fathom.errors import ConfigError

# torch.cpu checks, any of which means the x86 CPU has bf16 arithmetic in hardware
X86_NATIVE_BF16 = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 natively (not emulated, which is slower than fp32).

    x86 CPU: AVX-512 BF16 or AMX in the hardware, and neither PyTorch's kernels nor oneDNN held
    below AVX-512 (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``). ``get_cpu_capability`` alone
    says ``AVX512`` with or without bf16, and oneDNN's check accepts any AVX-512 CPU (it emulates
    bf16 there). Other CPUs: oneDNN's check. CUDA: compute capability 8.0 or later (Ampere).
    """
    if device.type == "cuda":
        try:
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # PyTorch before 2.3 has no including_emulation
            return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    x86 = [getattr(torch.cpu, name, None) for name in X86_NATIVE_BF16]
    if platform.machine().lower() in ("x86_64", "amd64") and all(map(callable, x86)):
        held_back = torch.backends.cpu.get_cpu_capability() in ("DEFAULT", "AVX2")
        return any(bool(check()) for check in x86) and not held_back and _onednn_bf16()
    return _onednn_bf16()


def _onednn_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` becomes bf16 where ``device`` does bf16 natively, else fp32; others stay."""
    if name != "auto":
        return name
    return "bf16" if native_bf16(device) else "fp32"


class Precision:
    """fp32, bf16 autocast, or fp16 autocast with dynamic loss scaling; ``auto`` picks one.

    ``name`` is the precision in use (``auto`` resolved), ``requested`` what the config asked.
    """

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision == "fp16" and device.type != "cuda":
            raise ConfigError("train.precision=fp16 needs a CUDA device; use bf16 or fp32 on CPU")
        self.requested = precision
        self.name = resolve_precision(precision, device)
        self.precision = self.name
        self.device = device
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.name == "fp16")

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if self.dtype is None:
            yield
            return
        with torch.autocast(self.device.type, dtype=self.dtype):
            yield

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler.is_enabled():
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler.is_enabled():
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()


class GradientClipper:
    """Clip gradients by global norm and/or by value before each optimizer step."""

    def __init__(self, max_norm: float | None, max_value: float | None) -> None:
        self.max_norm = max_norm or None  # 0 turns clipping off (a model's default clip too)
        self.max_value = max_value or None

    def __bool__(self) -> bool:
        return self.max_norm is not None or self.max_value is not None

    def __call__(self, parameters: list[nn.Parameter]) -> None:
        if self.max_value is not None:
            torch.nn.utils.clip_grad_value_(parameters, self.max_value)
        if self.max_norm is not None:
            torch.nn.utils.clip_grad_norm_(parameters, self.max_norm, foreach=True)


class WeightPenalty:
    """L1 and L2 penalties on weight matrices and kernels (biases and norm scales are exempt)."""

    def __init__(self, model: nn.Module, l1: float, l2: float) -> None:
        self.l1 = l1
        self.l2 = l2
        self.weights = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]

    def __bool__(self) -> bool:
        return bool(self.weights) and (self.l1 > 0 or self.l2 > 0)

    def __call__(self) -> torch.Tensor:
        penalty = torch.zeros((), device=self.weights[0].device)
        if self.l1 > 0:
            penalty = penalty + self.l1 * sum(w.abs().sum() for w in self.weights)
        if self.l2 > 0:
            penalty = penalty + 0.5 * self.l2 * sum(w.square().sum() for w in self.weights)
        return penalty


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; an unavailable device is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"config key 'train.device': unknown device {name!r} (try cpu or cuda)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "config key 'train.device': cuda requested but no CUDA device is available"
        )
    return device


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


@functools.cache
def reuse_freed_cpu_memory() -> bool:
    """Keep large freed CPU buffers in this process's heap for reuse (glibc only).

    By default glibc returns every block over 32 MiB to the operating system when it is freed,
    so each training step pays again for fresh zeroed pages for its largest activations. Raising
    the mmap and trim thresholds keeps them: a batch-512 CNN step on 2 cores went from ~242 to
    ~155 ms. The process keeps its peak memory instead of shrinking. Off: ``train.reuse_cpu_memory=false``.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (macOS, Windows, musl without mallopt): nothing to tune
    return bool(mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))
