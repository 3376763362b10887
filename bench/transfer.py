"""Transfer learning, side by side in one process.

Sentiment (the UCI sentences, Fathom's seeded split, the same for every method): TF-IDF +
logistic regression (scikit-learn), the from-scratch ``sentiment`` recipe, frozen MiniLM + a
linear head (cached features), MiniLM tuned on pairs first (``transfer.contrastive_steps``,
SetFit), fine-tuned MiniLM; each on all labels and on 8 and 32 labels per
class (``data.labels_per_class``, the same seeded subset for every method).

Vision: a network pretrained on CIFAR-10 classes 0-4 (a small CNN, or airbench94 with the cifar10
recipe's SGD), then classes 5-9 with 100 labels per class: from scratch, feature extraction,
fine-tune, and discriminative rates + gradual unfreezing.

    python bench/transfer.py            # the budgets below (CPU: tens of minutes)
    python bench/transfer.py --quick    # toy sizes: checks that everything runs
    python bench/transfer.py --only sentiment --skip finetuned
    python bench/transfer.py --only vision --vision-model airbench --source-augment --skip pairs
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fathom  # noqa: E402
from common import DATA_DIR, add_common_arguments, start_run, write_record  # noqa: E402
from fathom.data.bundle import DataBundle, DataInfo, Split  # noqa: E402
from fathom.data.splits import few_labels, seeded_permutation  # noqa: E402
from fathom.data.text import read_sentiment  # noqa: E402

SEED = 0
LABELS = (None, 32, 8)  # all training labels, then per class


def quiet(run_dir: Path, **more: Any) -> dict[str, Any]:
    return {"run_dir": run_dir, "progress": "none", "seed": SEED, **more}


def accuracy_of(run: fathom.Run) -> float:
    return float(run.summary["test"]["accuracy"])


# ------------------------------------------------------------------ sentiment
def sentiment_split() -> tuple[list[str], torch.Tensor, dict[str, torch.Tensor]]:
    """The texts, labels and the index sets of fathom.data.text's split (seed 0, 0.1/0.2)."""
    texts, labels = read_sentiment(DATA_DIR, ["amazon", "imdb", "yelp"])
    order = seeded_permutation(len(texts), SEED)
    test, val = round(len(texts) * 0.2), round(len(texts) * 0.1)
    parts = {"test": order[:test], "val": order[test : test + val], "train": order[test + val :]}
    return texts, torch.tensor(labels), parts


def tfidf_logistic(per_class: int | None, quick: bool) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts, labels, parts = sentiment_split()
    train = parts["train"]
    if per_class is not None:  # the subset finalize keeps (seed + 3), as for every method
        train = train[few_labels(labels[train], per_class, None, SEED + 3)]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    features = vectorizer.fit_transform([texts[int(i)] for i in train])
    classifier = LogisticRegression(C=10.0, max_iter=2000).fit(features, labels[train].numpy())
    test = vectorizer.transform([texts[int(i)] for i in parts["test"]])
    return float((classifier.predict(test) == labels[parts["test"]].numpy()).mean())


def sentiment_methods(quick: bool, setfit_steps: int = 20) -> dict[str, tuple[str, list[str]]]:
    """name → (model source or recipe, overrides)."""
    epochs = 1 if quick else None
    frozen = ["transfer.mode=features", "transfer.cache_features=true", "optim.lr=0.01",
              "optim.weight_decay=0", f"train.epochs={epochs or 40}", "schedule.name=cosine"]  # fmt: skip
    finetuned = ["transfer.mode=fine_tune", "transfer.freeze_epochs=1", "optim.lr=2e-4",
                 "optim.layer_decay=0.7", f"train.epochs={epochs or 4}", "schedule.name=cosine",
                 "model.normalize=false"]  # fmt: skip
    scratch = [f"train.epochs={epochs}"] if epochs else []
    setfit = [*frozen, f"transfer.contrastive_steps={1 if quick else setfit_steps}"]
    return {
        "from-scratch transformer (sentiment recipe)": ("recipe", scratch),
        "frozen MiniLM + linear head (cached features)": ("pretrained:minilm", frozen),
        f"MiniLM tuned on pairs (SetFit, {setfit_steps} steps) + linear head": (
            "pretrained:minilm",
            setfit,
        ),
        # the class names ("negative", "positive") as 16 labelled examples each: a pretrained
        # encoder already places a sentence near its class's name (zero-shot: 70.5-75.2%)
        "SetFit + class names as examples (x16)": (
            "pretrained:minilm",
            [*setfit, "data.class_name_examples=16"],
        ),
        "fine-tuned MiniLM (fine_tune, layer_decay 0.7)": ("pretrained:minilm", finetuned),
    }


def run_sentiment(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    # quick: 64 training sentences and small validation/test splits (MiniLM encodes each)
    limit = (
        ["data.limit=64", "data.val_fraction=0.02", "data.test_fraction=0.04"] if args.quick else []
    )
    report = not args.quick  # quick: no report.html (plots cost about a second a run)
    for per_class in (8,) if args.quick else LABELS:  # quick: the few-label path only
        labels = "all labels" if per_class is None else f"{per_class} per class"
        few = [f"data.labels_per_class={per_class}"] if per_class else []
        started = time.process_time()
        results.setdefault("TF-IDF + logistic regression", {})[labels] = {
            "accuracy": tfidf_logistic(per_class, args.quick),
            "cpu_seconds": time.process_time() - started,
        }
        for name, (source, overrides) in sentiment_methods(args.quick, args.setfit_steps).items():
            if any(skip in name for skip in args.skip):
                continue
            everything = [f"data.data_dir={DATA_DIR}", *limit, *few, *overrides]
            started, wall = time.process_time(), time.perf_counter()
            if source == "recipe":
                run = fathom.fit(
                    None, "sentiment", overrides=everything, **quiet(folder, report=report)
                )
            else:
                run = fathom.finetune(
                    source, "sentiment", overrides=everything, **quiet(folder, report=report)
                )
            results.setdefault(name, {})[labels] = {
                "accuracy": accuracy_of(run),
                "cpu_seconds": time.process_time() - started,
                "wall_seconds": time.perf_counter() - wall,
                "overrides": overrides,
            }
            print(f"sentiment {labels:>13}: {name}: {accuracy_of(run):.3f}", flush=True)
    return results


# ------------------------------------------------------------------ vision
def cifar_classes(bundle: DataBundle, classes: range, per_class: int | None) -> DataBundle:
    """The examples of ``classes`` (labels renumbered from 0); ``per_class`` labelled training
    examples of each (seeded, class-balanced), validation and test splits in full."""

    def keep(split: Split) -> Split:
        mask = (split.targets >= classes.start) & (split.targets < classes.stop)
        return Split(split.inputs[mask], split.targets[mask] - classes.start)

    train, val, test = keep(bundle.train), keep(bundle.val), keep(bundle.test)
    if per_class is not None:
        train = train.subset(few_labels(train.targets, per_class, None, SEED + 3))
    names = [bundle.info.class_names[i] for i in classes]
    info = DataInfo(
        name=f"cifar10-{classes.start}-{classes.stop - 1}", task="classification",
        input_shape=bundle.info.input_shape, num_classes=len(names), class_names=names,
        normalization=bundle.info.normalization,
    )  # fmt: skip
    return DataBundle(info, train, val, test)


AIRBENCH_SGD = ["model.whiten=true", "optim.name=sgd", "optim.momentum=0.85", "optim.nesterov=true",
                "optim.weight_decay=0.00133", "train.label_smoothing=0.2", "train.precision=auto",
                "train.channels_last=true", "schedule.start_ratio=0.2", "schedule.peak_fraction=0.23",
                "schedule.min_lr_ratio=0.07"]  # fmt: skip
"""The cifar10 recipe's airbench94 settings (its learning rate is 0.75 at batch 512)."""


def vision_network(args: argparse.Namespace) -> tuple[str, list[str], float, float, int]:
    """(model name, its overrides, source rate, target rate, source batch): the small CNN with
    AdamW, or airbench94 with the cifar10 recipe's SGD (0.75 at batch 512, scaled linearly to
    the targets' batch of 32)."""
    if args.vision_model == "airbench":
        return "airbench", AIRBENCH_SGD, 0.75, 0.75 * 32 / 512, 512
    model = [
        f"model.channels=[{args.vision_channels}]",
        "model.hidden=128",
        "model.batch_norm=true",
    ]
    return "cnn", model, 2e-3, 2e-3, 128


def run_vision(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    full = fathom.data.load("cifar10", data_dir=DATA_DIR, seed=SEED, val_fraction=0.05)
    if args.quick:
        full = DataBundle(full.info, full.train.subset(torch.arange(1000)),
                          full.val.subset(torch.arange(100)), full.test.subset(torch.arange(200)))  # fmt: skip
    source_data = cifar_classes(full, range(0, 5), None)
    target_data = cifar_classes(full, range(5, 10), 20 if args.quick else 100)
    network, model, source_rate, target_rate, source_batch = vision_network(args)
    epochs = 1 if args.quick else args.vision_epochs
    base = [*model, "data.augment={}", "train.diagnostics=false", "schedule.name=onecycle"]
    source_augment = (
        ["data.augment={crop: {padding: 4}, flip: true}"] if args.source_augment else []
    )
    started = time.process_time()
    source = fathom.fit(network, source_data, epochs=epochs, lr=source_rate,
                        overrides=[*base, *source_augment], name="source",
                        **quiet(folder, batch_size=source_batch, report=not args.quick))  # fmt: skip
    results: dict[str, Any] = {
        "source (classes 0-4, all labels)": {
            "accuracy": accuracy_of(source),
            "cpu_seconds": time.process_time() - started,
        }  # fmt: skip
    }
    target_epochs = 2 if args.quick else 30
    variants = {
        "from scratch": (None, []),
        "feature extraction": (source.path, ["transfer.mode=features", "transfer.cache_features=true"]),
        "fine-tune (fine_tune)": (source.path, ["transfer.mode=fine_tune", "transfer.freeze_epochs=5"]),
        "discriminative LR + gradual unfreezing": (
            source.path, ["transfer.mode=gradual", "transfer.unfreeze_every=3", "optim.layer_decay=0.5"]),
        "tuned on pairs (100 steps, lr 1e-3) + fine_tune": (
            source.path, ["transfer.mode=fine_tune", "transfer.freeze_epochs=5",
                          f"transfer.contrastive_steps={4 if args.quick else 100}",
                          "transfer.contrastive_lr=1e-3"]),
    }  # fmt: skip
    for name, (start, overrides) in variants.items():
        if any(skip in name for skip in args.skip):
            continue
        options = quiet(folder, batch_size=32, epochs=target_epochs, lr=target_rate,
                        report=not args.quick)  # fmt: skip
        started = time.process_time()
        if start is None:
            run = fathom.fit(network, target_data, overrides=[*base, *overrides], **options)
        else:
            run = fathom.finetune(start, target_data, overrides=[*base, *overrides], **options)
        results[name] = {"accuracy": accuracy_of(run), "cpu_seconds": time.process_time() - started,
                         "overrides": overrides}  # fmt: skip
        print(f"vision: {name}: {accuracy_of(run):.3f}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "transfer.json")
    parser.add_argument("--quick", action="store_true", help="toy sizes: checks that it runs")
    parser.add_argument("--only", choices=["sentiment", "vision"], help="one benchmark")
    parser.add_argument("--skip", nargs="*", default=[], help="methods whose name holds these")
    parser.add_argument("--vision-epochs", type=int, default=10, help="source pretraining epochs")
    parser.add_argument("--vision-channels", default="32,64", help="the vision CNN's channels")
    parser.add_argument("--vision-model", choices=["cnn", "airbench"], default="cnn",
                        help="the network pretrained and fine-tuned (airbench: the cifar10 recipe's)")  # fmt: skip
    parser.add_argument("--source-augment", action="store_true",
                        help="crop and flip while pretraining the source (not the targets)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="split, label subset and training")
    parser.add_argument("--setfit-steps", type=int, default=20, help="SetFit row's pair steps")
    args = parser.parse_args()
    global SEED
    SEED = args.seed
    machine = start_run(args.threads)
    record: dict[str, Any] = {"machine": machine, "seed": SEED, "quick": args.quick, "results": {}}
    with tempfile.TemporaryDirectory() as folder:
        if args.only in (None, "sentiment"):
            record["results"]["sentiment"] = run_sentiment(args, Path(folder))
        if args.only in (None, "vision"):
            record["results"]["vision"] = run_vision(args, Path(folder))
    write_record(args.output, record)


if __name__ == "__main__":
    main()
