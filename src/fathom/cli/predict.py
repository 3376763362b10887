"""``fathom predict RUN FILE ...``: predictions for input files, or for texts (runs trained on texts:
``fathom predict RUN "a great film" reviews.txt``)."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any

from fathom.cli.options import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path)
    parser.add_argument("files", nargs="+", help="input files, or texts for runs trained on texts")
    parser.add_argument("--top", type=int, default=1, help="show the top N classes")
    parser.add_argument("--beam", type=int, help="beam size for seq2seq runs (default: greedy)")
    parser.add_argument("--output", type=Path, help="also write predictions to this CSV file")


def run(args: argparse.Namespace) -> int:
    from fathom.errors import ConfigError
    from fathom.runs import load

    loaded = load(args.run)
    task = loaded.task
    if task.reads_text:
        outputs = loaded.predict_texts(list(args.files), beam_size=args.beam)
        rows = [[text, output] for text, output in zip(args.files, outputs, strict=True)]
        for text, output in rows:
            print(f"{text}: {output}")
        return write_rows(args.output, ["input", "prediction"], rows)
    if args.beam is not None:
        raise ConfigError(f"--beam applies to seq2seq runs; this is a {task.name} run")
    trained_on_texts = "tokenizer" in loaded.info.extra
    rows = []
    for argument in args.files:
        file = text_or_file(argument) if trained_on_texts else Path(argument)
        # a .csv or a batched .npy gives several rows
        outputs = loaded.predict([file]) if file is not None else loaded.predict(texts=[argument])
        for index, output in enumerate(outputs):
            label = argument if len(outputs) == 1 else f"{argument}:{index + 1}"
            shown, cells = task.describe_prediction(output, loaded.info, args.top)
            print(f"{label}: {shown}")
            rows.append([label, *cells])
    return write_rows(args.output, ["input", *task.prediction_columns()], rows)


def text_or_file(argument: str) -> Path | None:
    """For a model trained on texts: the file an argument names (.txt, one text a line; .csv or
    .tsv with the text column), or None when the argument is a text to classify itself."""
    path = Path(argument)
    if path.is_file():
        return path
    if path.suffix.lower() in (".txt", ".csv", ".tsv") and not any(c.isspace() for c in argument):
        from fathom.errors import DataError

        raise DataError(f"input file not found: {argument}")
    return None


def write_rows(output: Path | None, header: list[str], rows: list[list[Any]]) -> int:
    """The predictions as a CSV file (atomically), when ``--output`` is given."""
    if output is not None:
        from fathom.files import atomic_write_text

        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
        atomic_write_text(output, buffer.getvalue())
    return 0


COMMAND = Command("predict image files, .npy arrays, .csv rows or texts", add_arguments, run)
