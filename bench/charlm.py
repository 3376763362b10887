"""Tiny Shakespeare character LM: validation loss against wall time, nanoGPT vs Fathom, one process.

(a) a faithful hand-written nanoGPT (karpathy/nanoGPT model.py + train.py) with its published CPU
    configuration: 4 layers, 4 heads, 128 wide, context 64, batch 12, 2,000 iterations, AdamW
    lr 1e-3 (100 warmup iterations, cosine to 1e-4), betas (0.9, 0.99), weight decay 0.1 on
    matrices, grad clip 1, dropout 0. Its wall time T is the budget for (b).
(b) Fathom's ``tinyshakespeare`` recipe through ``fathom.fit``, stopped at T seconds of training
    (a callback enforces T and re-fits the cosine schedule to end at T from the pace measured so
    far; evaluation time for the curve is not counted).
(c) Fathom's ``tinyshakespeare-5min`` recipe: the same with a 5-minute budget.
Every model is scored the same way: mean next-character loss over the whole validation text (the
last 10%) in non-overlapping windows of its own context. nanoGPT's own estimate (20 random
batches) is printed beside it. On CUDA, (d) reports bf16 + torch.compile tokens/s and MFU; ``--gpu-only --device cpu``
only builds (d)'s configuration and runs one forward/backward on two windows (a wiring check).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fathom  # noqa: E402
from common import DATA_DIR, LoadMeter, add_common_arguments, start_run, write_record  # noqa: E402
from fathom.engine.callbacks import Callback, StopTraining  # noqa: E402

H100_BF16_PEAK_FLOPS = 989e12


# ------------------------------------------------------------------ nanoGPT, as published
class NanoSelfAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.c_attn = nn.Linear(width, 3 * width, bias=False)
        self.c_proj = nn.Linear(width, width, bias=False)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.c_attn(x).split(width, dim=2)
        q, k, v = (t.view(batch, length, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(batch, length, width))


class NanoBlock(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, bias=False)
        self.attn = NanoSelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width, bias=False)
        self.c_fc = nn.Linear(width, 4 * width, bias=False)
        self.c_proj = nn.Linear(4 * width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))


class NanoGPT(nn.Module):
    def __init__(self, vocab: int, context: int, layers: int, heads: int, width: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(context, width)
        self.h = nn.ModuleList(NanoBlock(width, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width, bias=False)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.wte.weight = self.lm_head.weight
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
        for name, parameter in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(parameter, std=0.02 / math.sqrt(2 * layers))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def nanogpt_reference(text: str, iterations: int, seed: int) -> dict[str, Any]:
    """nanoGPT's train.py loop with the published CPU command line; returns time, losses, curve."""
    torch.manual_seed(seed)
    chars = sorted(set(text))
    lookup = {char: index for index, char in enumerate(chars)}
    data = torch.tensor([lookup[char] for char in text], dtype=torch.long)
    cut = int(len(data) * 0.9)
    train, val = data[:cut], data[cut:]
    context, batch, lr, min_lr, warmup = 64, 12, 1e-3, 1e-4, 100
    model = NanoGPT(len(chars), context, 4, 4, 128)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
        lr=lr, betas=(0.9, 0.99),
    )  # fmt: skip

    def get_batch(split: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(len(split) - context, (batch,))
        x = torch.stack([split[i : i + context] for i in starts])
        y = torch.stack([split[i + 1 : i + 1 + context] for i in starts])
        return x, y

    def learning_rate(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / (warmup + 1)
        ratio = (step - warmup) / (iterations - warmup)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * min(ratio, 1.0))) * (lr - min_lr)

    curve, training_seconds = [], 0.0
    started = time.perf_counter()
    for step in range(iterations):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step)
        x, y = get_batch(train)
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % max(1, iterations // 10) == 0:
            training_seconds += time.perf_counter() - started
            loss = full_val_loss(model, val, context, 8)
            curve.append((round(training_seconds, 2), step + 1, loss))
            print(f"  {training_seconds:7.1f}s step {step + 1:5d} val~{loss:.4f}", flush=True)
            started = time.perf_counter()
    training_seconds += time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        estimate = (
            sum(
                float(F.cross_entropy(model(x).view(-1, len(chars)), y.view(-1)))
                for x, y in (get_batch(val) for _ in range(20))
            )
            / 20
        )
    return {
        "seconds": round(training_seconds, 2),
        "iterations": iterations,
        "val_loss": round(full_val_loss(model, val, context), 4),
        "val_loss_nanogpt_estimate": round(estimate, 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "curve": curve,
    }


@torch.no_grad()
def full_val_loss(model: nn.Module, ids: torch.Tensor, context: int, every: int = 1) -> float:
    """Mean next-token loss over non-overlapping windows of the validation ids (every n-th)."""
    was_training = model.training
    model.eval()
    count = (len(ids) - 1) // context
    inputs = ids[: count * context].view(count, context)[::every]
    targets = ids[1 : count * context + 1].view(count, context)[::every]
    total = 0.0
    for start in range(0, len(inputs), 256):
        logits = model(inputs[start : start + 256]).float()
        total += float(
            F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                targets[start : start + 256].reshape(-1),
                reduction="sum",
            )
        )
    model.train(was_training)
    return round(total / targets.numel(), 4)


# ------------------------------------------------------------------ Fathom, on a time budget
class TimeBudget(Callback):
    """Stops training after ``seconds`` of training time; records a val curve (time excluded)."""

    def __init__(self, seconds: float, curve_every_seconds: float) -> None:
        self.seconds, self.curve_every_seconds = seconds, curve_every_seconds
        self.next_curve_point = curve_every_seconds
        self.curve: list[tuple[float, int, float]] = []
        self.training_seconds = 0.0

    def fit_start(self, trainer: Any) -> None:
        self.started = time.perf_counter()
        val = trainer.val_loader
        self.val_inputs, self.val_targets = val.inputs, val.targets

    def epoch_start(self, trainer: Any) -> None:
        self.started = time.perf_counter()  # the epoch's evaluation and checkpoint do not count

    def batch_end(self, trainer: Any) -> None:
        now = time.perf_counter()
        self.training_seconds += now - self.started
        self.started = now
        updates = trainer.state.optimizer_steps
        if updates % 20 == 0:  # the schedule ends with the budget, at the pace measured so far
            trainer.schedule.end_within(
                updates, self.training_seconds / updates, self.seconds - self.training_seconds
            )
        if self.training_seconds >= self.next_curve_point:
            self.next_curve_point += self.curve_every_seconds
            loss = self.subset_loss(trainer.model)
            self.curve.append((round(self.training_seconds, 2), trainer.state.step, loss))
            print(
                f"  {self.training_seconds:7.1f}s step {trainer.state.step:5d} val~{loss:.4f}",
                flush=True,
            )
            self.started = time.perf_counter()
        if self.training_seconds >= self.seconds:
            raise StopTraining(f"time budget of {self.seconds:.1f}s reached")

    @torch.no_grad()
    def subset_loss(self, model: nn.Module) -> float:
        was_training = model.training
        model.eval()
        inputs, targets = self.val_inputs[::8], self.val_targets[::8]
        logits = model(inputs).float()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        model.train(was_training)
        return round(float(loss), 4)


def recipe_data(overrides: list[str]) -> dict[str, Any]:
    config = fathom.assemble.resolve_config(dataset="tinyshakespeare", overrides=overrides)
    return config.data.options()


def fathom_budgeted(seconds: float, overrides: list[str], label: str) -> dict[str, Any]:
    """The recipe with ``overrides`` trained for ``seconds`` of training time (the schedule is
    re-fitted to the budget every 20 updates from the measured pace; curve evaluations excluded)."""
    print(f"{label}: {seconds:.1f} s of training", flush=True)
    budget = TimeBudget(seconds, curve_every_seconds=seconds / 10)
    with tempfile.TemporaryDirectory() as folder:
        run = fathom.fit(
            None, "tinyshakespeare", callbacks=[budget],
            overrides=[f"data.data_dir={DATA_DIR}", f"run.dir={folder}", "run.progress=none",
                       "task.sample_tokens=0", *overrides],
        )  # fmt: skip
        metrics = run.evaluate("val")
        summary = run.summary
    return {
        "seconds": round(budget.training_seconds, 2),
        "steps": summary["steps"],
        "val_loss": round(metrics["loss"], 4),
        "bits_per_character": round(metrics["bits_per_character"], 4),
        "parameters": summary["model"]["parameters"],
        "overrides": overrides,
        "curve": budget.curve,
    }


# ------------------------------------------------------------------ GPU mode (bf16 + compile)
GPU_SHAPE = {"layers": 6, "width": 384, "context": 256, "batch": 64}


def gpu_overrides(device: str, compile: bool) -> list[str]:
    """The GPU configuration of the recipe: bf16, torch.compile, a 6x384 model on 256 characters."""
    return [
        f"train.device={device}", "train.precision=bf16", f"train.compile={str(compile).lower()}",
        f"data.context={GPU_SHAPE['context']}", f"data.batch_size={GPU_SHAPE['batch']}",
        f"model.dim={GPU_SHAPE['width']}", f"model.depth={GPU_SHAPE['layers']}", "model.heads=6",
        f"model.context={GPU_SHAPE['context']}", "model.dropout=0.1", "data.stride=1",
        "train.epochs=100", "schedule.warmup_epochs=0.005",
    ]  # fmt: skip


def flops_per_token(parameters: int) -> int:  # nanoGPT's estimate, for MFU
    return 6 * parameters + 12 * GPU_SHAPE["layers"] * GPU_SHAPE["width"] * GPU_SHAPE["context"]


def gpu_mode(
    seconds: float, device: str = "cuda", compile: bool = True, extra: list[str] | None = None
) -> dict[str, Any]:
    """The GPU recipe (bf16, torch.compile) for ``seconds``; tokens/s, and MFU on CUDA."""
    result = fathom_budgeted(seconds, [*gpu_overrides(device, compile), *(extra or [])], "gpu")
    tokens = result["steps"] * GPU_SHAPE["batch"] * GPU_SHAPE["context"]
    tokens_per_second = tokens / max(result["seconds"], 1e-9)
    result["tokens_per_second"] = round(tokens_per_second)
    result["goal"] = "val loss <= 1.47 within 60 s, MFU >= 0.40"
    result["device"] = device
    if device == "cuda":
        mfu = flops_per_token(result["parameters"]) * tokens_per_second / H100_BF16_PEAK_FLOPS
        result["mfu"] = round(mfu, 4)
        result["gpu"] = torch.cuda.get_device_name()
        result["cuda"] = torch.version.cuda
        print(f"gpu: {tokens_per_second:,.0f} tokens/s, MFU {result['mfu']:.1%}", flush=True)
    return result


def gpu_shape_check(device: str = "cpu", examples: int = 2) -> dict[str, Any]:
    """``gpu_mode``'s configuration built (no compile) and run forward/backward once in bf16 on
    ``examples`` windows of a short prefix, untrained: shape and wiring in seconds on any CPU."""
    overrides = [*gpu_overrides(device, compile=False), "data.max_chars=20000"]
    with tempfile.TemporaryDirectory() as folder:
        config, bundle, model = fathom.assemble.prepare(
            None, "tinyshakespeare", None,
            [f"data.data_dir={DATA_DIR}", f"run.dir={folder}", *overrides], {},
        )  # fmt: skip
    task = fathom.assemble.make_task(config, bundle.info)
    inputs, targets = bundle.train.inputs[:examples], bundle.train.targets[:examples]
    model.to(device).train()
    with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
        loss, _ = task.training_loss("train", model, (inputs.to(device), targets.to(device)))
    loss.backward()
    with torch.no_grad():
        logits_shape = list(model(inputs[:1].to(device)).shape)
    parameters = sum(p.numel() for p in model.parameters())
    return {
        "device": device,
        "trained": False,
        "precision": config.train.precision,
        "model": config.model.options(),
        "logits_shape": logits_shape,
        "vocab_size": task.vocab_size,
        "loss": round(float(loss), 4),
        "gradients_finite": all(
            p.grad is not None and bool(p.grad.isfinite().all()) for p in model.parameters()
        ),
        "parameters": parameters,
        "flops_per_token": flops_per_token(parameters),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "charlm.json")
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    parser.add_argument("--best-seconds", type=float, default=300.0)
    parser.add_argument("--skip-best", action="store_true")
    parser.add_argument("--gpu-only", action="store_true", help="only (d), the CUDA run")
    parser.add_argument(
        "--device", default="cuda", help="--gpu-only on 'cpu': build it, one step, no training"
    )
    parser.add_argument(
        "--best-overrides", nargs="*", default=[], help="overrides of the recipe for (c)"
    )
    args = parser.parse_args()
    machine = start_run(args.threads)
    if args.gpu_only:
        if args.device == "cpu":  # the configuration checked for shape and wiring, not trained
            gpu = gpu_shape_check("cpu")
        elif torch.cuda.is_available():
            seconds = 10.0 if args.quick else 60.0
            quick = ["data.max_chars=100000"] if args.quick else []
            gpu = gpu_mode(seconds, args.device, extra=quick)
        else:
            print("--gpu-only needs a CUDA device (or --device cpu: a check)", file=sys.stderr)
            raise SystemExit(2)
        write_record(args.output, {"machine": machine, "quick": args.quick, "gpu": gpu})
        return
    text = (DATA_DIR / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    meter = LoadMeter()
    meter.start()
    iterations = 40 if args.quick else 2000
    reference = nanogpt_reference(text, iterations, seed=0)
    print(
        f"(a) nanoGPT: {reference['seconds']:.1f}s, val loss {reference['val_loss']} "
        f"(its 20-batch estimate {reference['val_loss_nanogpt_estimate']})",
        flush=True,
    )
    quick = ["data.max_chars=100000"] if args.quick else []
    same_time = fathom_budgeted(reference["seconds"], quick, "(b) fathom recipe")
    print(
        f"(b) fathom at T={reference['seconds']:.1f}s: val loss {same_time['val_loss']}", flush=True
    )
    record: dict[str, Any] = {
        "machine": machine, "threads": args.threads, "quick": args.quick,
        "nanogpt": reference, "fathom_same_time": same_time, "recipe": fathom.recipes.get("tinyshakespeare"),
        "goal": "fathom val loss <= 1.70 at nanoGPT's wall time",
        "met": same_time["val_loss"] <= 1.70,
    }  # fmt: skip
    if not args.skip_best:
        seconds = 10.0 if args.quick else args.best_seconds
        # the recipe's own train.max_seconds would count the curve evaluations; the callback rules
        best = [
            "recipe=tinyshakespeare-5min",
            "train.max_seconds=null",
            *args.best_overrides,
            *quick,
        ]
        record["fathom_best"] = fathom_budgeted(seconds, best, "(c) fathom best")
        print(f"(c) fathom in {seconds:.0f}s: val loss {record['fathom_best']['val_loss']}")
    if torch.cuda.is_available():
        record["gpu"] = gpu_mode(10.0 if args.quick else 60.0)
    else:
        record["gpu"] = "skipped: no CUDA device"
    record["load"] = meter.stop()
    write_record(args.output, record)


if __name__ == "__main__":
    main()
