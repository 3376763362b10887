"""``fathom attack RUN --method pgd --eps 0.3 --steps 40 --restarts 10``: adversarial examples
(PNG grid + .npy) and the accuracy table of a classifier run."""

from __future__ import annotations

import argparse
from pathlib import Path

from fathom.cli.options import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path)
    parser.add_argument("--method", choices=["fgsm", "pgd"], default="pgd")
    parser.add_argument("--eps", type=float, default=0.3, help="perturbation budget, pixel units")
    parser.add_argument("--norm", choices=["linf", "l2"], default="linf")
    parser.add_argument("--steps", type=int, default=40, help="PGD steps")
    parser.add_argument("--step-size", type=float, help="default 2.5 eps / steps")
    parser.add_argument("--restarts", type=int, default=1, help="PGD random restarts")
    parser.add_argument("--targeted", action="store_true", help="aim each example at class y+1")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=1000, help="examples attacked (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, help="default RUN/attacks/<method>-<norm>-eps<eps>")


def run(args: argparse.Namespace) -> int:
    from fathom.api.trust import attack

    result = attack(
        args.run, args.method, args.eps, norm=args.norm, steps=args.steps,
        step_size=args.step_size, restarts=args.restarts, targeted=args.targeted,
        split=args.split, limit=args.limit or None, seed=args.seed, output_dir=args.output,
    )  # fmt: skip
    print(
        f"{result['examples']} {result['split']} examples, {args.method} {args.norm} eps {args.eps:g}"
    )
    print(f"clean accuracy        {result['clean_accuracy']:.4f}")
    print(f"adversarial accuracy  {result['adversarial_accuracy']:.4f}")
    if "target_success_rate" in result:
        print(f"target success rate   {result['target_success_rate']:.4f}")
    print(f"written to {result['output_dir']} (adversarial.npy, examples.png, accuracy.json)")
    return 0


COMMAND = Command("adversarial examples and accuracy under attack", add_arguments, run)
