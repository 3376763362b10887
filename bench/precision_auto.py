"""``train.precision``: bf16 against fp32 against ``auto`` on the ``mnist-fast`` recipe, side by side.

Each variant trains the recipe (its model, optimizer, batch size, channels-last, augmentation-free
data) for the same number of steps from the same seed, with no run folder, no progress and no
diagnostics, so the step time is the only difference. One short warm-up run per variant, then the
repetitions interleave the variants (the order rotates each repetition); each repetition gives a
paired ratio to fp32 (same moment, same load). The record names the CPU kind (``torch``'s
capability, the AVX-512 BF16 / AMX flags) and what ``auto`` resolved to on it.

    python bench/precision_auto.py             # 300 steps, 5 repetitions (a few minutes on 2 cores)
    python bench/precision_auto.py --quick     # a smoke test (seconds)
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python bench/precision_auto.py \
        --output bench/results/precision_auto-avx2.json   # as on a CPU without AVX-512
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA_DIR, LoadMeter, add_common_arguments, start_run, write_record  # noqa: E402
from fathom.assemble import (  # noqa: E402
    build_model,
    build_trainer,
    load_data,
    resolve_config,
    seed_everything,
)
from fathom.data.bundle import DataBundle  # noqa: E402
from fathom.engine.features import native_bf16, resolve_precision  # noqa: E402

VARIANTS = ("bf16", "fp32", "auto")
RECIPE = "mnist-fast"
# set both to AVX2 to run this CPU as an AVX2-only one (bf16 emulated), as most laptops are
KERNEL_LIMITS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")


def cpu_kind() -> dict[str, Any]:
    """What decides bf16 speed on this CPU, and what ``auto`` picks here."""
    cpu = torch.device("cpu")
    flags = ("_is_avx2_supported", "_is_avx512_supported", "_is_avx512_bf16_supported",
             "_is_amx_tile_supported")  # fmt: skip
    found = {name.strip("_").removeprefix("is_"): getattr(torch.cpu, name, lambda: None)()
             for name in flags}  # fmt: skip
    return {
        "kernel_limits": {name: os.environ.get(name) for name in KERNEL_LIMITS},
        "capability": torch.backends.cpu.get_cpu_capability(),
        **found,
        "onednn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "native_bf16": native_bf16(cpu),
        "auto_resolves_to": resolve_precision("auto", cpu),
    }


def train_once(precision: str, steps: int, bundle: DataBundle, limit: int | None) -> dict[str, Any]:
    """``steps`` steps of the recipe in ``precision``; seconds of ``fit`` and the last train loss."""
    overrides = [
        f"data.data_dir={DATA_DIR}", "data.download=false", "run.progress=none",
        "train.diagnostics=false", f"train.precision={precision}", f"train.max_steps={steps}",
        f"train.log_every_steps={max(1, steps // 4)}", "train.seed=0",
        *([f"data.limit={limit}"] if limit else []),
    ]  # fmt: skip
    config = resolve_config({"recipe": RECIPE}, dataset="mnist", overrides=overrides)
    seed_everything(0)
    model = build_model(config, bundle.info)
    seed_everything(0)
    trainer = build_trainer(config, model, bundle, run_dir=None)
    meter = LoadMeter()
    meter.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    trainer.fit()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    losses = [record["loss"] for record in trainer.log.records if record.get("kind") == "train"]
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "steps": trainer.state.step,
        "resolved": trainer.precision.name,
        "last_train_loss": round(losses[-1], 4) if losses else None,
        "load": meter.stop(),
    }


def summarise(reps: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Median seconds per variant and the median of per-repetition ratios to fp32, for wall time
    and for this process's CPU time (less sensitive to other processes on a busy machine)."""
    summary: dict[str, Any] = {}
    for variant in VARIANTS:
        row: dict[str, Any] = {"resolved": reps[0][variant]["resolved"]}
        for key in ("seconds", "cpu_seconds"):
            values = [rep[variant][key] for rep in reps]
            ratios = [rep[variant][key] / rep["fp32"][key] for rep in reps]
            row[f"median_{key}"] = round(statistics.median(values), 3)
            row[f"paired_ratio_to_fp32_{key}"] = round(statistics.median(ratios), 3)
            row[f"ratio_range_{key}"] = [round(min(ratios), 3), round(max(ratios), 3)]
        row["steps_per_second"] = round(reps[0][variant]["steps"] / row["median_seconds"], 1)
        summary[variant] = row
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps on 512 images")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repetitions", type=int, default=5)
    add_common_arguments(parser, "precision_auto.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    steps, repetitions = (4, 1) if args.quick else (args.steps, args.repetitions)
    limit = 512 if args.quick else None
    machine = start_run(args.threads)
    kind = cpu_kind()
    print(f"CPU kind: {kind}", flush=True)
    config = resolve_config(
        {"recipe": RECIPE}, dataset="mnist",
        overrides=[f"data.data_dir={DATA_DIR}", "data.download=false",
                   *([f"data.limit={limit}"] if limit else [])],
    )  # fmt: skip
    bundle = load_data(config)
    for variant in VARIANTS:  # warm-up: oneDNN builds its kernels for each dtype once
        train_once(variant, min(steps, 20), bundle, limit)
    reps: list[dict[str, dict[str, Any]]] = []
    for repetition in range(repetitions):
        order = VARIANTS[repetition % 3 :] + VARIANTS[: repetition % 3]
        rep = {variant: train_once(variant, steps, bundle, limit) for variant in order}
        print(f"  rep {repetition}: " + "  ".join(
            f"{v} {rep[v]['seconds']:.1f}s ({rep[v]['resolved']})" for v in VARIANTS), flush=True)  # fmt: skip
        reps.append(rep)
    summary = summarise(reps)
    for variant, row in summary.items():
        print(f"{variant:5s} ({row['resolved']}): {row['median_seconds']:7.2f} s  "
              f"{row['steps_per_second']:6.1f} steps/s  x{row['paired_ratio_to_fp32_seconds']:.3f} "
              f"fp32 (CPU time x{row['paired_ratio_to_fp32_cpu_seconds']:.3f})")  # fmt: skip
    record = {
        "recipe": RECIPE, "steps": steps, "repetitions": repetitions, "batch_size": 128,
        "settings": "no run folder, no progress, train.diagnostics=false; fit() timed",
        "machine": machine, "cpu_kind": kind, "summary": summary, "reps": reps,
    }  # fmt: skip
    write_record(args.output, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
