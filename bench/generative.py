"""GAN, VAE and diffusion on MNIST on this CPU: wall time, a Fréchet distance, class accuracy.

Each model trains with its recipe (``mnist-gan``, ``mnist-vae``, ``mnist-diffusion``), shortened
to a fixed number of optimizer steps on a seeded subset (``MODELS`` below: a CPU budget, not a
converged model). Samples are scored by a classifier that Fathom trains here first (recipe
``mnist-fast``, one epoch, no external weights):

- ``frechet_distance``: Fréchet distance between Gaussians fitted to the classifier's penultimate
  features of ``--samples`` generated images and of the 10,000 MNIST test images. It is NOT the
  Inception FID; its floor is the same distance for ``--samples`` real training images;
- ``mean_class_accuracy`` (class-conditional models): the classifier's accuracy on the samples of
  each requested class (classes in turn), averaged.

A 10x10 grid of each model's samples is saved beside the JSON (bench/results/generative-*.png).

    python bench/generative.py            # about 30 minutes on 2 heavily shared cores (load ~13)
    python bench/generative.py --quick    # a smoke test on a small subset
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fathom  # noqa: E402
from common import (  # noqa: E402
    DATA_DIR,
    add_common_arguments,
    load_average,
    start_run,
    write_record,
)
from fathom.data.bundle import DataBundle, Split  # noqa: E402
from fathom.tasks.generative import image_grid, save_png  # noqa: E402
from fathom.tasks.quality import classifier_quality  # noqa: E402

# recipe, training subset, epochs, extra overrides; sampling options
MODELS: dict[str, dict[str, Any]] = {
    "gan": {"recipe": "mnist-gan", "limit": None, "epochs": 2, "overrides": []},
    "vae": {"recipe": "mnist-vae", "limit": None, "epochs": 3, "overrides": []},
    "diffusion": {
        "recipe": "mnist-diffusion", "limit": 19_200, "epochs": 2,
        "overrides": ["data.batch_size=64"], "sampling": {"steps": 20},
    },
}  # fmt: skip
QUICK = {"limit": 512, "epochs": 1}


def mnist() -> DataBundle:
    return fathom.data.load("mnist", data_dir=DATA_DIR, val_fraction=0.0, download=False)


def pixels_of(split: Split, normalization: dict[str, list[float]]) -> torch.Tensor:
    mean = torch.tensor(normalization["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(normalization["std"]).view(1, -1, 1, 1)
    return (split.inputs * std + mean).clamp(0, 1)


def train(
    recipe: str, bundle: DataBundle, run_dir: Path, overrides: list[str]
) -> tuple[Any, float]:
    started = time.perf_counter()
    run = fathom.fit(
        None, bundle, config={"recipe": recipe},
        overrides=[f"run.dir={run_dir}", "run.progress=none", *overrides],
    )  # fmt: skip
    return run, time.perf_counter() - started


def subset(bundle: DataBundle, limit: int | None, test_limit: int | None) -> DataBundle:
    """The first ``limit`` training images (MNIST's order is already mixed) and test images."""
    train = bundle.train if limit is None else bundle.train.subset(torch.arange(limit))
    test = bundle.test if test_limit is None else bundle.test.subset(torch.arange(test_limit))
    return DataBundle(bundle.info, train, None, test)


def measure(name: str, spec: dict[str, Any], args, bundle, judge, real, run_dir) -> dict[str, Any]:
    limit, epochs = (
        (QUICK["limit"], QUICK["epochs"]) if args.quick else (spec["limit"], spec["epochs"])
    )
    test_limit = 1000  # the end-of-run test metrics on the first 1,000 test images (CPU time)
    overrides = [f"train.epochs={epochs}", *spec["overrides"]]
    run, seconds = train(spec["recipe"], subset(bundle, limit, test_limit), run_dir, overrides)
    summary = run.summary
    print(f"{name}: trained {summary['steps']} steps in {seconds:.1f} s", flush=True)
    started = time.perf_counter()
    pixels, labels = run.task.sample_images(
        run.model, args.samples, seed=0, **spec.get("sampling", {})
    )
    sampling_seconds = time.perf_counter() - started
    quality = classifier_quality(judge.model, judge.info.normalization, real, pixels, labels)
    grid = args.output.parent / f"generative-{name}.png"
    save_png(image_grid(pixels[:100], 10), grid, scale=1)
    print(
        f"{name}: Frechet {quality['frechet_distance']:.2f}, {quality.get('mean_class_accuracy')}"
    )
    return {
        "recipe": spec["recipe"], "training_images": limit, "epochs": epochs,
        "overrides": overrides, "steps": summary["steps"], "train_seconds": round(seconds, 1),
        "sampling": spec.get("sampling", {}), "sampling_seconds": round(sampling_seconds, 1),
        "test_metrics": summary.get("test"), "quality": quality, "grid": grid.name,
        "load_average": load_average(),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "generative.json")
    parser.add_argument("--quick", action="store_true", help="small subsets: a smoke test")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--samples", type=int, default=300, help="samples per model scored")
    args = parser.parse_args()
    machine = start_run(args.threads)
    if args.quick:
        args.samples = min(args.samples, 100)
    bundle = mnist()
    run_dir = Path(tempfile.mkdtemp(prefix="fathom-generative-"))
    results: dict[str, Any] = {}
    try:
        classifier_limit = QUICK["limit"] if args.quick else 15_000
        judge, seconds = train(
            "mnist-fast", subset(bundle, classifier_limit, 1000 if args.quick else None), run_dir,
            ["train.epochs=1"],
        )  # fmt: skip
        accuracy = judge.summary["test"]["accuracy"]
        print(f"classifier: {accuracy:.4f} test accuracy in {seconds:.1f} s", flush=True)
        normalization = bundle.info.normalization
        real = pixels_of(bundle.test, normalization)
        order = torch.randperm(len(bundle.train), generator=torch.Generator().manual_seed(0))
        train_sample = bundle.train.subset(order[: args.samples])
        floor = classifier_quality(
            judge.model, judge.info.normalization, real, pixels_of(train_sample, normalization)
        )
        for name in args.models:
            results[name] = measure(name, MODELS[name], args, bundle, judge, real, run_dir)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    record = {
        "machine": machine, "quick": args.quick, "seed": 0, "samples": args.samples,
        "classifier": {"recipe": "mnist-fast", "epochs": 1, "training_images": classifier_limit,
                       "test_accuracy": accuracy,
                       "train_seconds": round(seconds, 1)},
        "floor_frechet_distance": floor["frechet_distance"],
        "measure": floor["measure"], "results": results,
        "notes": "CPU only (2 shared cores); GPU figures are not measured yet.",
    }  # fmt: skip
    write_record(args.output, record)


if __name__ == "__main__":
    main()
