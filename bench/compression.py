"""Compression goals of issue 15, side by side on one machine:

1. the MNIST recipe, int8 (+ structured pruning): >= 4x smaller, >= 1.5x faster at batch 1,
   <= 0.2 points lost; int8 after one epoch of quantization-aware training beside it;
2. the recipe's CNN structured-pruned to >= 2x fewer MACs with <= 0.5 points lost;
3. small students distilled from the recipe's CNN vs the same students trained alone (goal:
   >= 0.5 points better), in Hinton et al.'s setting: the teacher trained without label
   smoothing, both arms of each student trained alike without augmentation or label smoothing,
   T = 20, alpha = 0.9; the students a 2x300 MLP (a quarter of Hinton's 2x1200 teacher) and
   the quarter-width CNN (channels [4, 8], hidden 32), per seed.

    python bench/compression.py                 # MNIST recipe, reduced: --epochs 2 --limit 10000
    python bench/compression.py --quick         # toy size: digits, one epoch
    python bench/compression.py --only distillation --epochs 10 --student-epochs 30 \
        --limit 60000 --seeds 0 1 2             # the distillation goal at full size

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
from fathom.compression.stages import short_config, student_config  # noqa: E402

STUDENTS = {"mlp_2x300": ("mlp", {"hidden": [300, 300]}),
            "cnn_quarter": ("cnn", {"channels": [4, 8], "hidden": 32})}  # fmt: skip
"""The distillation students: Hinton's MLP at a quarter of his teacher's width (2x1200), and a
quarter of the recipe's CNN width."""
HINTON = {"temperature": 20.0, "alpha": 0.9,
          "overrides": ["data.augment={}", "train.label_smoothing=0"]}  # fmt: skip
"""Hinton et al.'s MNIST setting: both arms train on the plain images with hard labels."""


def train_teacher(
    folder: Path, quick: bool, epochs: int, seed: int, limit: int, name: str = "teacher",
    extra: tuple[str, ...] = (),
) -> fathom.Run:  # fmt: skip
    settings = [f"run.dir={folder}", f"run.name={name}", "run.progress=none", *extra]
    if quick:  # toy size: the runs and those compressed from them write no report.html
        settings.append("run.report=false")
        return fathom.fit(data="digits", epochs=epochs, seed=seed, overrides=settings)
    return fathom.fit(data="mnist", epochs=epochs, seed=seed,
                      overrides=[f"data.data_dir={DATA_DIR}", f"data.limit={limit}", *settings])  # fmt: skip


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


def student_alone(
    teacher: fathom.Run, folder: Path, model: str, options: dict, epochs: int, extra: list[str]
) -> float:
    """The student trained alone on hard labels, from the config distillation builds for it
    (the teacher's recipe with ``extra``, ``epochs`` epochs, no EMA or early stopping)."""
    config = short_config(student_config(teacher.config, model, options, extra), epochs)
    overrides = [f"run.dir={folder}", "run.name=student-alone", "run.progress=none"]
    run = fathom.fit(config=config, overrides=overrides)
    return run.evaluate("test")["accuracy"]


def distillation(args: argparse.Namespace, folder: Path, teacher_epochs: int) -> dict:
    """Each student distilled and alone, per seed, from a teacher trained without label
    smoothing (label-smoothed teachers pass on less: README)."""
    started = time.perf_counter()
    smoothing = f"train.label_smoothing={args.teacher_smoothing:g}"
    teacher = train_teacher(folder, args.quick, teacher_epochs, args.seed, args.limit,
                            "distillation-teacher", (smoothing,))  # fmt: skip
    result = {"teacher_test_accuracy": teacher.evaluate("test")["accuracy"],
              "teacher_seconds": round(time.perf_counter() - started, 1),
              "teacher": f"the recipe with {smoothing}", "student_epochs": args.student_epochs,
              **HINTON, "students": {}}  # fmt: skip
    for key in args.students:
        model, options = STUDENTS[key]
        rows = []
        for seed in args.seeds:
            extra = [*HINTON["overrides"], f"train.seed={seed}"]
            distilled = compressed(teacher, f"{key}-distilled-{seed}", distill_into=model,
                                   student_options=options, distill_epochs=args.student_epochs,
                                   temperature=HINTON["temperature"], alpha=HINTON["alpha"],
                                   distill_overrides=extra, max_accuracy_drop=100)  # fmt: skip
            alone = student_alone(teacher, folder, model, options, args.student_epochs, extra)
            gain = (distilled["after"]["accuracy"] - alone) * 100
            rows.append({"seed": seed, "alone_test_accuracy": alone,
                         "distilled_test_accuracy": distilled["after"]["accuracy"],
                         "gain_points": round(gain, 3), "parameters": distilled["after"]["parameters"],
                         "distill_seconds": distilled["seconds"], "load_average": load_average()})  # fmt: skip
            print(key, rows[-1], flush=True)
        gains = [row["gain_points"] for row in rows]
        result["students"][key] = {"model": model, "options": options, "per_seed": rows,
                                   "mean_gain_points": round(sum(gains) / len(gains), 3)}  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=None, help="teacher epochs")
    parser.add_argument("--student-epochs", type=int, default=None, help="distillation epochs")
    parser.add_argument("--seed", type=int, default=0, help="the teacher's seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="students' seeds")
    parser.add_argument("--limit", type=int, default=10_000, help="MNIST training images")
    parser.add_argument("--only", choices=["distillation"], help="run one part")
    parser.add_argument("--students", nargs="+", choices=list(STUDENTS), default=list(STUDENTS))
    parser.add_argument("--teacher-smoothing", type=float, default=0.0,
                        help="the distillation teacher's label smoothing (the recipe's: 0.1)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    epochs = args.epochs or (1 if args.quick else 2)
    args.student_epochs = args.student_epochs or epochs
    name = "compression-distillation.json" if args.only else "compression.json"
    output = args.output or HERE / "results" / name
    record = {"machine": machine_info(), "cpu_instruction_sets": cpu_instruction_sets(),
              "command": " ".join(sys.argv), "quick": args.quick, "epochs": epochs,
              "train_limit": None if args.quick else args.limit, "seed": args.seed, "results": {}}  # fmt: skip
    results = record["results"]
    with tempfile.TemporaryDirectory(prefix="bench-compression-") as scratch:
        folder = Path(scratch)
        if not args.only:
            started = time.perf_counter()
            teacher = train_teacher(folder, args.quick, epochs, args.seed, args.limit)
            results["teacher"] = {"test_accuracy": teacher.evaluate("test")["accuracy"],
                                  "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
            results.update(pruned_and_quantized(teacher))
        results["distillation"] = distillation(args, folder, epochs)
    print(json.dumps(results, indent=1))
    write_record(output, record)


def pruned_and_quantized(teacher: fathom.Run) -> dict:
    return {
        "int8": compressed(teacher, "int8", quantize="int8", max_accuracy_drop=100),
        "qat_int8": compressed(teacher, "qat-int8", quantize="int8", qat_epochs=1,
                               max_accuracy_drop=100),
        "pruned_int8": compressed(teacher, "pruned-int8", prune=0.25, structured=True,
                                  quantize="int8", max_accuracy_drop=100),
        "pruned": compressed(teacher, "pruned", prune=0.3, structured=True, max_accuracy_drop=100),
    }  # fmt: skip


if __name__ == "__main__":
    main()
