"""``fathom compress RUN [--prune 0.5 --structured] [--quantize int8] [--distill-into MODEL]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fathom.cli.options import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path)
    parser.add_argument("--prune", type=float, help="fraction of weights (or channels) to remove")
    parser.add_argument("--structured", action="store_true", help="remove whole channels")
    parser.add_argument("--scope", default="global", help="unstructured: global or layer")
    parser.add_argument("--prune-steps", type=int, default=1, help="iterative: prune+fine-tune")
    parser.add_argument("--quantize", help="int8 (ONNX Runtime)")
    parser.add_argument("--quantize-mode", help="dynamic or static (default: static for CNNs)")
    parser.add_argument("--distill-into", metavar="MODEL", help="train this student model")
    parser.add_argument(
        "--student", action="append", default=[], metavar="KEY=VALUE",
        help="a student model option, e.g. --student channels=[8,16] (repeatable)",
    )  # fmt: skip
    parser.add_argument("--temperature", type=float, default=4.0, help="distillation T")
    parser.add_argument("--alpha", type=float, default=0.9, help="weight of the soft targets")
    parser.add_argument("--distill-epochs", type=int, help="default: the run's epochs")
    parser.add_argument(
        "--distill-set", action="append", default=[], metavar="KEY=VALUE",
        help="how the student trains, e.g. --distill-set data.augment={} (repeatable)",
    )  # fmt: skip
    parser.add_argument("--finetune-epochs", type=int, default=1, help="after pruning")
    parser.add_argument(
        "--qat-epochs", type=int, default=0, help="quantization-aware fine-tuning before int8"
    )
    parser.add_argument("--max-accuracy-drop", type=float, default=0.5, help="in points")
    parser.add_argument("--name", help="name of the new run folder")


def student_options(items: list[str]) -> dict[str, object]:
    """KEY=VALUE items with YAML values (``channels=[8,16]``)."""
    import yaml

    from fathom.errors import ConfigError

    options = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise ConfigError(f"--student '{item}': expected KEY=VALUE, e.g. channels=[8,16]")
        try:
            options[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--student '{item}': the value is not valid YAML") from None
    return options


def run(args: argparse.Namespace) -> int:
    from fathom.api.compress import compress

    result = compress(
        args.run, prune=args.prune, structured=args.structured, quantize=args.quantize,
        distill_into=args.distill_into, max_accuracy_drop=args.max_accuracy_drop,
        prune_scope=args.scope, prune_steps=args.prune_steps, quantize_mode=args.quantize_mode,
        student_options=student_options(args.student), temperature=args.temperature,
        alpha=args.alpha, distill_epochs=args.distill_epochs, distill_overrides=args.distill_set,
        finetune_epochs=args.finetune_epochs, qat_epochs=args.qat_epochs, name=args.name,
    )  # fmt: skip
    summary = result.summary.get("compressed_from")
    print(f"compressed {summary} -> {result.path}")
    print(describe(result.path))
    for stage in json.loads((result.path / "compression.json").read_text())["stages"]:
        if stage["details"].get("note"):
            print(f"note ({stage['name']}): {stage['details']['note']}")
    return 0


def describe(path: Path) -> str:
    """The before/after table as text."""
    section = json.loads((path / "sections" / "compression.json").read_text())
    widths = [24, 14, 14, 10]
    lines = ["".join(h.ljust(w) for h, w in zip(section["headers"], widths, strict=True))]
    lines += ["".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
              for row in section["rows"]]  # fmt: skip
    return "\n".join(lines)


COMMAND = Command("prune, quantize and/or distil a run into a new run", add_arguments, run)
