"""Few-label runs with the recipe's batch against the batch Fathom picks (at least 8 steps an
epoch, the learning rate scaled with it), side by side per seed, through the short commands:

    fathom train cifar10 data.labels_per_class=100          (recipe batch 512: 2 steps an epoch)
    fathom finetune pretrained:minilm sentiment data.labels_per_class=8   (batch 32: 1 step)

The recipe's batch is what a run got before the few-label batch existed; it is asked for here
by setting ``data.batch_size`` to the recipe's value, which Fathom then keeps.

    python bench/few_labels.py [--seeds 0 1 2] [--only cifar10|sentiment]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fathom  # noqa: E402
from common import DATA_DIR, add_common_arguments, load_average, machine_info, write_record  # noqa: E402

CASES = {
    "cifar10": ("train", "cifar10", ["data.labels_per_class=100"], 512),
    "sentiment": ("finetune", "sentiment", ["data.labels_per_class=8"], 32),
}
"""name → (command, dataset, overrides, the recipe's batch)."""


def one_run(case: str, seed: int, batch: int | None, folder: Path) -> dict:
    command, dataset, overrides, _ = CASES[case]
    keys = [*overrides, f"data.data_dir={DATA_DIR}", f"train.seed={seed}",
            "train.diagnostics=false", *([f"data.batch_size={batch}"] if batch else [])]  # fmt: skip
    options = {"run_dir": str(folder), "progress": "none", "report": False}
    started = time.perf_counter()
    if command == "train":
        run = fathom.fit(None, dataset, overrides=keys, **options)
    else:
        run = fathom.finetune("pretrained:minilm", dataset, overrides=keys, **options)
    return {"accuracy": float(run.summary["test"]["accuracy"]), "seconds": time.perf_counter() - started,
            "batch_size": run.config.data.batch_size, "lr": run.config.optim.lr,
            "steps": run.summary["steps"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "few-labels.json")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", choices=sorted(CASES), nargs="+", default=sorted(CASES))
    args = parser.parse_args()
    load_before, results = load_average(), {}
    with tempfile.TemporaryDirectory() as folder:
        for case in args.only:
            recipe_batch = CASES[case][3]
            for seed in args.seeds:  # interleaved: the recipe's batch, then Fathom's, per seed
                for arm, batch in (("recipe batch", recipe_batch), ("few-label batch", None)):
                    result = one_run(case, seed, batch, Path(folder))
                    results.setdefault(case, {}).setdefault(arm, {})[str(seed)] = result
                    print(case, arm, seed, result, flush=True)
    write_record(args.output, {
        "bench": "few-labels", "command": " ".join(sys.argv), "machine": machine_info(),
        "load_average_before": load_before, "load_average_after": load_average(),
        "cases": {name: CASES[name][:3] for name in args.only}, "results": results,
    })  # fmt: skip


if __name__ == "__main__":
    main()
