"""Masked-token pretraining (BERT MLM) then fine-tuning vs training from scratch, side by side.

Sentiment: the UCI sentences with Fathom's seeded split (the same as bench/transfer.py's: seed,
0.1 validation, 0.2 test). Per seed, one ``sentiment-mlm`` run pretrains the ``sentiment``
recipe's Transformer on the training sentences' text (labels unused; validation and test text
never seen), then, on all labels and on 8 and 32 labels per class (``data.labels_per_class``,
the same seeded subset for both arms), the ``sentiment`` recipe trains:

- from scratch (its own tokenizer, fitted on the same training sentences), and
- from the pretrained run (``fathom.finetune``: its weights and its tokenizer), with
  ``transfer.mode=full`` so that the starting weights are the only difference.

With few labels both arms train for ``FEW_LABEL_EPOCHS`` (16 or 64 examples: the recipe's 8
epochs would be 8 or 16 updates).

    python bench/text_pretraining.py              # 3 seeds, 12 pretraining epochs (~35 min at load 15)
    python bench/text_pretraining.py --quick      # toy sizes: checks that everything runs
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fathom  # noqa: E402
from common import DATA_DIR, add_common_arguments, load_average, start_run, write_record  # noqa: E402

LABELS = (None, 32, 8)  # all training labels, then per class
FEW_LABEL_EPOCHS = 40
ARMS = ("from scratch", "MLM-pretrained, fine-tuned")


def quiet(folder: Path, seed: int) -> dict[str, Any]:
    return {"run_dir": folder, "progress": "none", "seed": seed}


def pretrain(folder: Path, seed: int, epochs: int, quick: bool) -> tuple[fathom.Run, dict]:
    """One ``sentiment-mlm`` run: masked-token accuracy on the test sentences, its cost."""
    overrides = ["recipe=sentiment-mlm", f"data.data_dir={DATA_DIR}", f"train.epochs={epochs}",
                 "train.diagnostics=false", *(["data.limit=256"] if quick else [])]  # fmt: skip
    started, wall = time.process_time(), time.perf_counter()
    run = fathom.fit(None, "sentiment", overrides=overrides, report=False, **quiet(folder, seed))
    test = run.summary["test"]
    facts = {
        "epochs": epochs,
        "test_masked_accuracy": test["accuracy"],
        "test_masked_perplexity": test["perplexity"],
        "cpu_seconds": time.process_time() - started,
        "wall_seconds": time.perf_counter() - wall,
    }
    print(f"seed {seed}: pretrained {epochs} epochs: masked-token accuracy {test['accuracy']:.3f}"
          f" (perplexity {test['perplexity']:.0f}), {facts['wall_seconds']:.0f} s", flush=True)  # fmt: skip
    return run, facts


def unigram_baseline(seed: int, quick: bool) -> dict[str, float]:
    """What masked-token metrics a model without context reaches: always the most frequent
    training token (accuracy) and the training unigram distribution (perplexity), on the
    text tokens of the test sentences."""
    import math

    import torch

    bundle = fathom.data.load(
        "sentiment", data_dir=DATA_DIR, seed=seed, tokenizer="word", vocab_size=4000,
        max_length=64, lowercase=True, limit=256 if quick else None,
    )  # fmt: skip
    vocab = int(bundle.info.extra["vocab_size"])
    train, test = bundle.train.inputs, bundle.test.inputs
    counts = torch.bincount(train[train > 4], minlength=vocab).double() + 1.0  # add-one
    probabilities = counts / counts.sum()
    targets = test[test > 4]
    return {
        "accuracy": float((targets == counts.argmax()).double().mean()),
        "perplexity": math.exp(float(-probabilities[targets].log().mean())),
    }


def classify(
    arm: str, source: fathom.Run, per_class: int | None, seed: int, folder: Path, quick: bool
) -> dict[str, Any]:
    """Accuracy on the test sentences of one arm, with all labels or ``per_class`` of each."""
    overrides = [f"data.data_dir={DATA_DIR}", "train.diagnostics=false"]
    overrides += [f"data.labels_per_class={per_class}"] if per_class else []
    overrides += [f"train.epochs={FEW_LABEL_EPOCHS}"] if per_class and not quick else []
    overrides += ["data.limit=256", "train.epochs=1"] if quick else []
    started, wall = time.process_time(), time.perf_counter()
    if arm == ARMS[0]:
        run = fathom.fit(
            None, "sentiment", overrides=overrides, report=False, **quiet(folder, seed)
        )
    else:
        overrides.append("transfer.mode=full")
        run = fathom.finetune(
            source.path, "sentiment", overrides=overrides, report=False, **quiet(folder, seed)
        )
    return {
        "accuracy": float(run.summary["test"]["accuracy"]),
        "cpu_seconds": time.process_time() - started,
        "wall_seconds": time.perf_counter() - wall,
    }


def one_seed(seed: int, epochs: int, folder: Path, quick: bool) -> dict[str, Any]:
    source, facts = pretrain(folder, seed, epochs, quick)
    facts["unigram_baseline"] = unigram_baseline(seed, quick)
    results: dict[str, Any] = {"pretraining": facts}
    for per_class in LABELS:
        labels = "all labels" if per_class is None else f"{per_class} per class"
        for arm in ARMS:  # interleaved: both arms under the same load
            entry = classify(arm, source, per_class, seed, folder, quick)
            results.setdefault(arm, {})[labels] = {**entry, "load": load_average()}
            print(f"seed {seed} {labels:>13}: {arm}: {entry['accuracy']:.3f}", flush=True)
    return results


def summarise(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over seeds per arm and label count, and the paired gain of pretraining."""
    table: dict[str, Any] = {}
    for per_class in LABELS:
        labels = "all labels" if per_class is None else f"{per_class} per class"
        row: dict[str, Any] = {}
        for arm in ARMS:
            values = [seeded[arm][labels]["accuracy"] for seeded in per_seed.values()]
            row[arm] = mean_std(values)
        gains = [
            seeded[ARMS[1]][labels]["accuracy"] - seeded[ARMS[0]][labels]["accuracy"]
            for seeded in per_seed.values()
        ]
        row["gain (paired)"] = mean_std(gains)
        table[labels] = row
    return table


def mean_std(values: list[float]) -> dict[str, float]:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": spread, "n": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "text_pretraining.json")
    parser.add_argument("--quick", action="store_true", help="toy sizes: checks that it runs")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--pretrain-epochs", type=int, default=12)
    args = parser.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds
    epochs = 1 if args.quick else args.pretrain_epochs
    machine = start_run(args.threads)
    record: dict[str, Any] = {"machine": machine, "quick": args.quick, "seeds": seeds}
    per_seed: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:
            per_seed[seed] = one_seed(seed, epochs, Path(folder), args.quick)
    record["per_seed"] = per_seed
    record["summary"] = summarise(per_seed)
    for labels, row in record["summary"].items():
        shown = ", ".join(f"{arm} {v['mean']:.3f} ± {v['std']:.3f}" for arm, v in row.items())
        print(f"{labels:>13}: {shown}")
    write_record(args.output, record)


if __name__ == "__main__":
    main()
