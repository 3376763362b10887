"""Compression goals of issue 15, side by side on one machine:

1. the MNIST recipe, int8 (+ structured pruning): >= 4x smaller, >= 1.5x faster at batch 1,
   <= 0.2 points lost; int8 after one epoch of quantization-aware training beside it;
2. the recipe's CNN structured-pruned to >= 2x fewer MACs with <= 0.5 points lost;
3. a quarter-width student distilled from the recipe's CNN vs the same student trained alone
   (goal: >= 0.5 points better).

    python bench/compression.py                 # MNIST recipe, reduced: --epochs 2 --limit 10000
    python bench/compression.py --quick         # toy size: digits, one epoch

Latency is measured inside ``fathom compress`` (before and after interleaved, one thread each).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fathom  # noqa: E402
from common import DATA_DIR, HERE, load_average, machine_info, write_record  # noqa: E402
from fathom.compression import cpu_instruction_sets  # noqa: E402


def train_teacher(folder: Path, quick: bool, epochs: int, seed: int, limit: int) -> fathom.Run:
    if quick:
        return fathom.fit(data="digits", epochs=epochs, seed=seed,
                          overrides=[f"run.dir={folder}", "run.name=teacher", "run.progress=none"])  # fmt: skip
    return fathom.fit(
        data="mnist", epochs=epochs, seed=seed,
        overrides=[f"data.data_dir={DATA_DIR}", f"data.limit={limit}", f"run.dir={folder}", "run.name=teacher",
                   "run.progress=none"],
    )  # fmt: skip


def compressed(teacher: fathom.Run, name: str, **options) -> dict:
    started = time.perf_counter()
    run = fathom.compress(teacher, name=name, **options)
    summary = json.loads((run.path / "compression.json").read_text())
    before, after = summary["before"], summary["after"]
    return {
        "options": options,
        "stages": [
            {k: s[k] for k in ("name", "accuracy", "kept", "details")} for s in summary["stages"]
        ],
        "before": before,
        "after": after,
        "accuracy_lost_points": round((before["accuracy"] - after["accuracy"]) * 100, 3),
        "smaller": round(before["bytes"] / after["bytes"], 3),
        "fewer_macs": round(before["macs"] / after["macs"], 3) if after["macs"] else None,
        "faster_batch_1": round(before["batch_1_ms"] / after["batch_1_ms"], 3),
        "faster_batch_64": round(before["batch_64_ms"] / after["batch_64_ms"], 3),
        "seconds": round(time.perf_counter() - started, 1),
        "load_average": load_average(),
    }


def student_alone(teacher: fathom.Run, folder: Path, student: dict, epochs: int) -> float:
    """The student trained alone with the teacher's recipe (no EMA, as distillation runs it)."""
    overrides = [f"run.dir={folder}", "run.name=student-alone", "run.progress=none",
                 "train.ema_decay=null", *(f"model.{k}={json.dumps(v)}" for k, v in student.items())]  # fmt: skip
    run = fathom.fit(teacher.config.model.name, config=teacher.config.to_dict(), epochs=epochs,
                     overrides=overrides)  # fmt: skip
    return run.evaluate("test")["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=None, help="teacher and student epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=10_000, help="MNIST training images")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "compression.json")
    args = parser.parse_args()
    epochs = args.epochs or (1 if args.quick else 2)
    student = {"channels": [4, 8], "hidden": 32}  # a quarter of the recipe's CNN width
    record = {"machine": machine_info(), "cpu_instruction_sets": cpu_instruction_sets(),
              "quick": args.quick, "epochs": epochs, "train_limit": None if args.quick else args.limit, "seed": args.seed, "results": {}}  # fmt: skip
    results = record["results"]
    with tempfile.TemporaryDirectory(prefix="bench-compression-") as scratch:
        folder = Path(scratch)
        started = time.perf_counter()
        teacher = train_teacher(folder, args.quick, epochs, args.seed, args.limit)
        results["teacher"] = {"test_accuracy": teacher.evaluate("test")["accuracy"],
                              "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
        results["int8"] = compressed(teacher, "int8", quantize="int8", max_accuracy_drop=100)
        results["qat_int8"] = compressed(teacher, "qat-int8", quantize="int8", qat_epochs=1,
                                         max_accuracy_drop=100)  # fmt: skip
        results["pruned_int8"] = compressed(teacher, "pruned-int8", prune=0.25, structured=True,
                                            quantize="int8", max_accuracy_drop=100)  # fmt: skip
        results["pruned"] = compressed(teacher, "pruned", prune=0.3, structured=True,
                                       max_accuracy_drop=100)  # fmt: skip
        distilled = compressed(teacher, "distilled", distill_into=teacher.config.model.name,
                               student_options=student, distill_epochs=epochs,
                               max_accuracy_drop=100)  # fmt: skip
        alone = student_alone(teacher, folder, student, epochs)
        results["distillation"] = {
            "student": student,
            "distilled_test_accuracy": distilled["after"]["accuracy"],
            "alone_test_accuracy": alone,
            "gain_points": round((distilled["after"]["accuracy"] - alone) * 100, 3),
            "temperature": 4.0,
            "alpha": 0.9,
        }
    print(json.dumps(results, indent=1))
    write_record(args.output, record)


if __name__ == "__main__":
    main()
