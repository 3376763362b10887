"""The ``fathom`` command line: its subcommands and options (``fathom --help``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

EPILOG = """examples:
  fathom train                          # small CNN on the embedded digits dataset
  fathom train mnist --epochs 3         # the MNIST recipe
  fathom train mnist --model resnet8 optim.lr=0.01
  fathom train my-config.yaml train.seed=1
  fathom train path/to/images/          # one subfolder per class
  fathom train table.csv data.target=price
  fathom eval runs/NAME    fathom predict runs/NAME img.png    fathom resume runs/NAME
  fathom generate runs/NAME --n 64 --seed 0      # or --prompt "ROMEO:" for a language model
  fathom doctor runs/NAME    fathom explain runs/NAME img.png --method grad-cam    fathom lr-find mnist
"""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> Parser:
    parser = Parser(
        prog="fathom",
        description="Deep learning end to end on PyTorch.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    train = commands.add_parser(
        "train", help="train a model (default: a CNN on the embedded digits)"
    )
    train.add_argument(
        "items",
        nargs="*",
        metavar="[TARGET] [KEY=VALUE ...]",
        help="dataset name, config .yaml, image folder or .csv; then dotted config overrides",
    )
    train.add_argument("--model", help="model name (fathom list models)")
    train.add_argument("--epochs", type=int, help="number of epochs")
    train.add_argument("--lr", type=float, help="learning rate")
    train.add_argument("--batch-size", type=int, help="batch size")
    train.add_argument("--seed", type=int, help="random seed")
    train.add_argument("--device", help="cpu, cuda, cuda:1 or auto")
    train.add_argument(
        "--data-dir",
        help="where datasets are found or downloaded (default $FATHOM_DATA_DIR or ~/.cache/fathom/datasets)",
    )
    train.add_argument("--run-dir", help="parent folder of run folders (default runs)")
    train.add_argument("--name", help="run folder name")
    train.add_argument("--quiet", action="store_true", help="no progress output")

    evaluate = commands.add_parser("eval", help="evaluate a run on its test (or another) split")
    evaluate.add_argument("run", type=Path)
    evaluate.add_argument("--split", default="test", help="train, val or test")
    evaluate.add_argument("--data-dir", help="dataset folder, if it moved")

    predict = commands.add_parser("predict", help="predict image files, .npy arrays or .csv rows")
    predict.add_argument("run", type=Path)
    predict.add_argument("files", nargs="+", help="input files (texts for seq2seq runs)")
    predict.add_argument("--top", type=int, default=1, help="show the top N classes")
    predict.add_argument("--beam", type=int, help="beam size for seq2seq runs (default: greedy)")
    predict.add_argument("--output", type=Path, help="also write predictions to this CSV file")

    resume = commands.add_parser(
        "resume", help="continue an interrupted run exactly where it stopped"
    )
    resume.add_argument("run", type=Path)
    resume.add_argument("--quiet", action="store_true")

    add_generate_parser(commands)

    report = commands.add_parser("report", help="re-draw a run's plots and HTML report")
    report.add_argument("run", type=Path)

    add_inspect_parsers(commands)

    listing = commands.add_parser("list", help="list models, datasets, recipes or tasks")
    listing.add_argument("kind", choices=["models", "datasets", "recipes", "tasks"])
    return parser


def add_generate_parser(commands: Any) -> None:
    generate = commands.add_parser(
        "generate", help="sample images or text from a generative run (GAN, VAE, diffusion, LM)"
    )
    generate.add_argument("run", type=Path)
    generate.add_argument("--n", type=int, help="number of images to sample")
    generate.add_argument("--label", type=int, help="class to sample (class-conditional models)")
    generate.add_argument("--steps", type=int, help="sampling steps (diffusion)")
    generate.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    generate.add_argument("--prompt", help="text to continue (language models)")
    generate.add_argument("--max-tokens", type=int, help="number of tokens to generate")
    generate.add_argument("--temperature", type=float, help="sampling temperature")
    generate.add_argument("--top-k", type=int, help="sample among the k most likely tokens")
    generate.add_argument("--top-p", type=float, help="nucleus sampling probability mass")
    generate.add_argument("--seed", type=int, help="random seed of the samples")
    generate.add_argument("--output", type=Path, help="output folder (default RUN/generated)")
    generate.add_argument(
        "--classifier",
        type=Path,
        help="a classification run on the same data: Frechet distance in its features (not "
        "Inception FID) and per-class accuracy of the samples",
    )


def add_inspect_parsers(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor", help="diagnose a finished run: problems, evidence, remedies"
    )
    doctor.add_argument("run", type=Path)
    explain = commands.add_parser(
        "explain",
        help="explain predictions: saliency, integrated-gradients, grad-cam, occlusion, ...",
    )
    explain.add_argument("run", type=Path)
    explain.add_argument(
        "inputs", nargs="*", type=Path, help="image/.npy/.csv files (default: test examples)"
    )
    explain.add_argument(
        "--method", default="saliency",
        help="saliency, integrated-gradients, grad-cam, occlusion, filters, attention or top-loss",
    )  # fmt: skip
    explain.add_argument("--target", type=int, help="class to explain (default: the predicted one)")
    explain.add_argument("--count", type=int, default=16, help="examples shown by top-loss")
    finder = commands.add_parser(
        "lr-find",
        help="sweep the learning rate and suggest one (same TARGET and KEY=VALUE as train)",
    )
    finder.add_argument("items", nargs="*", metavar="[TARGET] [KEY=VALUE ...]")
    finder.add_argument("--model", help="model name (fathom list models)")
    finder.add_argument("--output", type=Path, default=Path("lr_finder.png"), help="plot file")
    finder.add_argument("--start", type=float, default=1e-7, help="first learning rate")
    finder.add_argument("--end", type=float, default=10.0, help="last learning rate")
    finder.add_argument("--steps", type=int, default=100, help="number of batches")
