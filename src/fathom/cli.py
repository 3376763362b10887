"""The ``fathom`` command: a thin layer over the Python API.

Every user error prints one line and exits with status 2; existing runs are never touched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fathom.cli_parser import build_parser
from fathom.errors import FathomError

GENERATE_OPTIONS = (
    "n", "label", "steps", "guidance", "prompt", "max_tokens", "temperature", "top_k", "top_p", "seed",
    "classifier",
)  # fmt: skip


def split_train_items(items: list[str]) -> tuple[str | None, list[str]]:
    target = None
    overrides = []
    for item in items:
        if "=" in item and not Path(item).exists():
            overrides.append(item)
        elif target is None:
            target = item
        else:
            raise FathomError(
                f"unexpected argument '{item}': give one dataset/config/path, then KEY=VALUE overrides"
            )
    return target, overrides


def train_target(items: list[str]) -> tuple[dict[str, Any], str | None, list[str]]:
    """``[TARGET] [KEY=VALUE ...]`` → (config layer, dataset name, overrides)."""
    from fathom.config import load_yaml

    target, overrides = split_train_items(items)
    config: dict[str, Any] = {}
    dataset = None
    if target is not None:
        path = Path(target)
        if target.endswith((".yaml", ".yml")):
            config = load_yaml(path)
        elif path.is_dir():
            config = {"data": {"name": "folder", "path": str(path)}}
        elif target.endswith((".csv", ".tsv")):
            if not path.is_file():
                raise FathomError(f"CSV file not found: {path}")
            config = {"data": {**table_dataset(target, overrides), "path": str(path)}}
        else:
            dataset = target
    return config, dataset, overrides


def train_command(args: argparse.Namespace) -> int:
    from fathom.api import fit

    config, dataset, overrides = train_target(args.items)
    flags = {
        "model.name": args.model,
        "train.epochs": args.epochs,
        "optim.lr": args.lr,
        "data.batch_size": args.batch_size,
        "train.seed": args.seed,
        "train.device": args.device,
        "data.data_dir": args.data_dir,
        "run.dir": args.run_dir,
        "run.name": args.name,
        "run.progress": "none" if args.quiet else None,
    }
    flag_overrides = [f"{key}={value}" for key, value in flags.items() if value is not None]
    run = fit(args.model, dataset, config=config, overrides=[*flag_overrides, *overrides])
    print_summary(run)
    print_saved_diagnosis(run.path)
    return 0


def print_saved_diagnosis(run_dir: Path) -> None:
    from fathom.diagnosis.doctor import format_diagnoses, read_diagnosis

    diagnoses = read_diagnosis(run_dir)
    if diagnoses is not None:
        print(format_diagnoses(diagnoses))


def table_dataset(target: str, overrides: list[str]) -> dict[str, str]:
    """``text_csv`` when a text column is named (data.text_column=...), else the ``csv`` table."""
    if any(item.startswith("data.text_column=") for item in overrides):
        return {"name": "text_csv"}
    return {"name": "csv", "delimiter": "\t"} if target.endswith(".tsv") else {"name": "csv"}


def print_summary(run: Any) -> None:
    summary = run.summary
    test = summary.get("test") or {}
    shown = "  ".join(
        f"{key} {value:.4f}" for key, value in test.items() if isinstance(value, float)
    )
    print(
        f"done: {summary.get('epochs_completed')} epochs, {summary.get('steps')} steps in {summary.get('duration_seconds', 0):.1f}s ({summary.get('message') or 'completed'})"
    )
    if shown:
        print(f"test: {shown}")
    print(f"run folder: {run.path}")
    print(f"report: {run.path / 'report.html'}")


def eval_command(args: argparse.Namespace) -> int:
    from fathom.run import load

    run = load(args.run)
    if args.data_dir:
        run.config.data.data_dir = args.data_dir
    metrics = run.evaluate(args.split)
    for key, value in metrics.items():
        print(f"{args.split} {key}: {value:.4f}")
    run.report()
    return 0


def predict_command(args: argparse.Namespace) -> int:
    from fathom.run import load

    run = load(args.run)
    if run.info.task == "seq2seq":
        return predict_texts(run, args)
    rows = []
    for file in map(Path, args.files):
        outputs = run.predict([file])  # a .csv or a batched .npy gives several rows
        for index, output in enumerate(outputs):
            label = str(file) if len(outputs) == 1 else f"{file}:{index + 1}"
            shown, row = describe_prediction(run, output, args.top)
            print(f"{label}: {shown}")
            rows.append((label, *row))
    if args.output:
        from fathom.io import atomic_write_text

        header = (
            "input,prediction,probability\n"
            if run.info.task == "classification"
            else "input,prediction\n"
        )
        atomic_write_text(
            args.output, header + "".join(",".join(map(str, row)) + "\n" for row in rows)
        )
    return 0


def predict_texts(run: Any, args: argparse.Namespace) -> int:
    """Seq2seq runs: each argument is a text to translate (greedy, or beam search with --beam)."""
    outputs = run.task.translate(run.model, list(args.files), beam_size=args.beam)
    for text, output in zip(args.files, outputs, strict=True):
        print(f"{text}: {output}")
    if args.output:
        import csv
        import io

        from fathom.io import atomic_write_text

        buffer = io.StringIO()
        csv.writer(buffer).writerows(
            [("input", "prediction"), *zip(args.files, outputs, strict=True)]
        )
        atomic_write_text(args.output, buffer.getvalue())
    return 0


def describe_prediction(run: Any, output: Any, top: int) -> tuple[str, tuple[Any, ...]]:
    """Human text and CSV cells for one prediction: top classes with probabilities, or values."""
    if run.info.task != "classification":
        values = [f"{float(value):.6g}" for value in output.reshape(-1)]
        return ", ".join(values), (" ".join(values),)
    names = run.info.class_names or [str(index) for index in range(len(output))]
    best = output.topk(min(top, len(output)))
    shown = ", ".join(
        f"{names[int(i)]} {float(p):.3f}" for p, i in zip(best.values, best.indices, strict=True)
    )
    return shown, (names[int(best.indices[0])], f"{float(best.values[0]):.6f}")


def resume_command(args: argparse.Namespace) -> int:
    from fathom.api import resume

    run = resume(args.run, progress="none" if args.quiet else None)
    print_summary(run)
    return 0


def generate_command(args: argparse.Namespace) -> int:
    from fathom.run import load

    run = load(args.run)
    request = {
        key: getattr(args, key) for key in GENERATE_OPTIONS if getattr(args, key) is not None
    }
    result = run.generate(args.output, **request)
    if result.get("text") is not None:
        print(result["text"])
    for file in result.get("files", []):
        print(f"wrote {file}")
    quality = result.get("quality")
    if quality:
        print(
            f"Frechet distance (classifier features, not Inception FID): "
            f"{quality['frechet_distance']:.3f} ({quality['generated_images']} samples vs "
            f"{quality['real_images']} test images)"
        )
        if "mean_class_accuracy" in quality:
            print(
                f"classifier accuracy on the requested classes: {quality['mean_class_accuracy']:.3f}"
            )
    return 0


def doctor_command(args: argparse.Namespace) -> int:
    from fathom.diagnosis.doctor import format_diagnoses
    from fathom.inspection import doctor

    print(format_diagnoses(doctor(args.run)))
    return 0


def lr_find_command(args: argparse.Namespace) -> int:
    from fathom.inspection import lr_find

    config, dataset, overrides = train_target(args.items)
    if args.model:
        overrides = [f"model.name={args.model}", *overrides]
    result = lr_find(
        args.model, dataset, config=config, overrides=overrides, output=args.output,
        start=args.start, end=args.end, steps=args.steps,
    )  # fmt: skip
    print(f"suggested learning rate: {result.suggestion:.3g} ({result.rule})")
    if result.steepest is not None:
        print(f"steepest descent at:     {result.steepest:.3g}")
    print(f"loss was lowest at:      {result.minimum:.3g}")
    print(f"plot: {args.output}")
    print(f"use it: fathom train ... optim.lr={result.suggestion:.3g}   (or optim.lr=auto)")
    return 0


def explain_command(args: argparse.Namespace) -> int:
    from fathom.inspection import explain

    files = explain(args.run, args.inputs or None, args.method, args.target, args.count)
    for file in files:
        print(f"wrote {file}")
    print(f"report: {args.run / 'report.html'}")
    return 0


def report_command(args: argparse.Namespace) -> int:
    from fathom.report import write_report
    from fathom.run import read_run_json

    read_run_json(args.run)
    print(write_report(args.run))
    return 0


def list_command(args: argparse.Namespace) -> int:
    from fathom.registry import DATASETS, MODELS, RECIPES, TASKS

    registry = {"models": MODELS, "datasets": DATASETS, "recipes": RECIPES, "tasks": TASKS}[
        args.kind
    ]
    width = max(len(name) for name in registry.names())
    for name in registry.names():
        kind = f"[{registry.kind_of(name)}] " if registry.kind_of(name) else ""
        print(f"{name:<{width}}  {kind}{registry.describe(name)}")
    return 0


COMMANDS = {
    "train": train_command,
    "eval": eval_command,
    "predict": predict_command,
    "resume": resume_command,
    "generate": generate_command,
    "report": report_command,
    "list": list_command,
    "doctor": doctor_command,
    "lr-find": lr_find_command,
    "explain": explain_command,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, leftover = parser.parse_known_args(argv)
    trailing = {"train": "items", "lr-find": "items", "explain": "inputs"}
    if leftover and args.command in trailing and not any(i.startswith("-") for i in leftover):
        getattr(args, trailing[args.command]).extend(leftover)  # may follow options
    elif leftover:
        parser.error(f"unrecognized arguments: {' '.join(leftover)}")
    if args.version:
        from fathom._version import __version__

        print(f"fathom {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return COMMANDS[args.command](args)
    except FathomError as error:
        print(f"fathom {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "fathom: interrupted; the last checkpoint is kept (continue with 'fathom resume RUN')",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
