"""``fathom generate RUN``: sample images or text from a generative run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fathom.cli.options import Command

OPTIONS = (
    "n", "label", "steps", "guidance", "prompt", "max_tokens", "temperature", "top_k", "top_p",
    "seed", "classifier",
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path)
    parser.add_argument("--n", type=int, help="number of images to sample")
    parser.add_argument("--label", type=int, help="class to sample (class-conditional models)")
    parser.add_argument("--steps", type=int, help="sampling steps (diffusion)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    parser.add_argument("--prompt", help="text to continue (language models)")
    parser.add_argument("--max-tokens", type=int, help="number of tokens to generate")
    parser.add_argument("--temperature", type=float, help="sampling temperature")
    parser.add_argument("--top-k", type=int, help="sample among the k most likely tokens")
    parser.add_argument("--top-p", type=float, help="nucleus sampling probability mass")
    parser.add_argument("--seed", type=int, help="random seed of the samples")
    parser.add_argument("--output", type=Path, help="output folder (default RUN/generated)")
    parser.add_argument(
        "--classifier",
        type=Path,
        help="a classification run on the same data: Frechet distance in its features (not "
        "Inception FID) and per-class accuracy of the samples",
    )


def run(args: argparse.Namespace) -> int:
    from fathom.runs import load

    request = {key: getattr(args, key) for key in OPTIONS if getattr(args, key) is not None}
    result = load(args.run).generate(args.output, **request)
    if result.get("text") is not None:
        print(result["text"])
    for file in result.get("files", []):
        print(f"wrote {file}")
    print_quality(result.get("quality"))
    return 0


def print_quality(quality: dict[str, Any] | None) -> None:
    if not quality:
        return
    print(
        f"Frechet distance (classifier features, not Inception FID): "
        f"{quality['frechet_distance']:.3f} ({quality['generated_images']} samples vs "
        f"{quality['real_images']} test images)"
    )
    if "mean_class_accuracy" in quality:
        print(f"classifier accuracy on the requested classes: {quality['mean_class_accuracy']:.3f}")


COMMAND = Command(
    "sample images or text from a generative run (GAN, VAE, diffusion, LM)", add_arguments, run
)
