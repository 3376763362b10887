"""Time per epoch on this machine: 2 processes x 1 thread (gloo DDP under torchrun) against
1 process x 2 threads, the same model, data and global batch; the two layouts alternate round by
round (interleaved) and each round gives a paired ratio.

    python bench/distributed.py            # MNIST CNN, 12,000 training images, 2 epochs, 3 rounds
    python bench/distributed.py --quick    # digits MLP, 1 epoch, 1 round (the smoke test)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA_DIR, add_common_arguments, load_average, machine_info, write_record  # noqa: E402

SOURCE = Path(__file__).resolve().parents[1] / "src"


def training_arguments(quick: bool, folder: Path) -> list[str]:
    if quick:
        data = ["digits", "model.name=mlp", "train.epochs=1"]
    else:
        data = ["mnist", "model.name=cnn", "data.limit=12000", "train.epochs=2",
                f"data.data_dir={DATA_DIR}"]  # fmt: skip
    return [*data, "data.batch_size=64", "optim.name=sgd", "optim.lr=0.05", "train.seed=0",
            "train.diagnostics=false", "run.progress=none", f"run.dir={folder}",
            "run.report=false"]  # the runs go to a temporary folder  # fmt: skip


def worker(arguments: list[str], output: Path) -> None:
    """Inside one process (or each torchrun rank): a fit timing each epoch; rank 0 writes."""
    import fathom
    from fathom.engine.callbacks import Callback
    from fathom.engine.distributed import end_worker_process, is_main_process

    class EpochClock(Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def epoch_start(self, trainer) -> None:  # type: ignore[no-untyped-def]
            self.started = time.perf_counter()

        def evaluation_end(self, trainer) -> None:  # type: ignore[no-untyped-def]
            self.seconds.append(time.perf_counter() - self.started)

    clock = EpochClock()
    dataset, *overrides = arguments
    run = fathom.fit(data=dataset, overrides=overrides, callbacks=[clock])
    if is_main_process():
        accuracy = run.evaluate("test").get("accuracy")
        output.write_text(json.dumps({"epoch_seconds": clock.seconds, "accuracy": accuracy}))
    # As `python -m fathom` does: a worker that joined a process group ends without interpreter
    # teardown, where gloo's threads can abort it after the run (the suite saw exit status 1).
    end_worker_process(0)


def launch(layout: str, arguments: list[str], output: Path) -> dict:
    environment = {**os.environ, "PYTHONPATH": str(SOURCE)}
    script = [str(Path(__file__).resolve()), "--worker", str(output), "--", *arguments]
    if layout == "2x1":
        environment["OMP_NUM_THREADS"] = "1"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc-per-node=2", *script, "train.threads=1"]  # fmt: skip
    else:
        environment["OMP_NUM_THREADS"] = "2"
        command = [sys.executable, *script, "train.threads=2"]
    done = subprocess.run(command, env=environment, check=False, capture_output=True, text=True)
    if done.returncode != 0:  # say why: the workers' own output, not only the exit status
        raise RuntimeError(f"{layout} run exited with {done.returncode}: {done.stderr[-3000:]}")
    return json.loads(output.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "distributed.json")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.rest, args.worker)
        return
    rounds = 1 if args.quick else args.rounds
    load_before = load_average()
    results: dict[str, list[dict]] = {"2x1": [], "1x2": []}
    with tempfile.TemporaryDirectory() as folder:
        arguments = training_arguments(args.quick, Path(folder))
        for round_index in range(rounds):  # alternate which layout goes first
            order = ["2x1", "1x2"] if round_index % 2 == 0 else ["1x2", "2x1"]
            for layout in order:
                output = Path(folder) / f"{layout}-{round_index}.json"
                results[layout].append(launch(layout, arguments, output))
                print(layout, results[layout][-1], flush=True)
    per_round = {layout: [statistics.mean(item["epoch_seconds"]) for item in items]
                 for layout, items in results.items()}  # fmt: skip
    ratios = [a / b for a, b in zip(per_round["2x1"], per_round["1x2"], strict=True)]
    summary = {
        layout: {"epoch_seconds_mean": statistics.mean(values),
                 "epoch_seconds_std": statistics.stdev(values) if len(values) > 1 else 0.0,
                 "accuracy": [item["accuracy"] for item in results[layout]]}
        for layout, values in per_round.items()
    }  # fmt: skip
    write_record(args.output, {
        "bench": "distributed", "quick": args.quick, "machine": machine_info(),
        "load_average_before": load_before, "rounds": rounds, "seed": 0,
        "setup": " ".join(training_arguments(args.quick, Path("RUN_DIR"))),
        "layouts": {"2x1": "torchrun 2 processes x 1 thread, gloo DDP, 32 examples per rank",
                    "1x2": "1 process x 2 threads, batch 64"},
        "per_round_epoch_seconds": per_round, "summary": summary,
        "ratio_2x1_over_1x2": {"per_round": ratios, "mean": statistics.mean(ratios),
                               "std": statistics.stdev(ratios) if len(ratios) > 1 else 0.0},
    })  # fmt: skip


if __name__ == "__main__":
    main()
