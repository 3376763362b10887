"""ONNX Runtime (fp32 and int8) vs PyTorch eager on the same model: latency at batch 1 and 64
and throughput, interleaved in one process (rounds alternate the engines; paired ratios).

    python bench/export.py --run runs/mnist-fast      # a trained run (the bench trains one if absent)
    python bench/export.py --quick                    # toy size: digits CNN, few repeats
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA_DIR, HERE, load_average, machine_info, write_record  # noqa: E402
from fathom.cli import main as fathom_main  # noqa: E402
from fathom.export import export_onnx, onnx_session, run_session  # noqa: E402
from fathom.runs import load  # noqa: E402


def train_run(folder: Path, quick: bool) -> Path:
    """A short MNIST recipe run (4,000 training images, one epoch), or the digits CNN (--quick)."""
    if quick:
        arguments = ["train", "--quiet", "train.epochs=1"]
    else:
        arguments = ["train", "mnist", "recipe=mnist-fast", "train.epochs=1", "data.limit=4000",
                     f"data.data_dir={DATA_DIR}", "--quiet"]  # fmt: skip
    assert fathom_main([*arguments, "train.precision=fp32", f"run.dir={folder}", "run.name=m"]) == 0
    return folder / "m"


def seconds_per_call(function, repeats: int) -> float:
    function()  # warm
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def measure(run_dir: Path, rounds: int, repeats: int) -> dict:
    run = load(run_dir)
    model = run.model.eval()
    scratch = Path(tempfile.mkdtemp(prefix="bench-export-"))
    fp32 = export_onnx(run, scratch / "m.onnx", dynamic_batch=True)
    int8 = export_onnx(run, scratch / "q.onnx", dynamic_batch=True, quantize="int8")
    threads = torch.get_num_threads()  # the same intra-op threads for every engine
    sessions = {"onnxruntime": onnx_session(scratch / "m.onnx", threads),
                "onnxruntime_int8": onnx_session(scratch / "q.onnx", threads)}  # fmt: skip
    results: dict[str, dict[int, list[float]]] = {
        name: {1: [], 64: []} for name in ("torch", *sessions)
    }
    shape = tuple(run.info.input_shape)
    for _ in range(rounds):
        for batch in (1, 64):
            inputs = torch.randn(batch, *shape)
            array = inputs.numpy()
            with torch.inference_mode():
                results["torch"][batch].append(seconds_per_call(lambda x=inputs: model(x), repeats))
            for name, session in sessions.items():
                results[name][batch].append(
                    seconds_per_call(lambda s=session, a=array: run_session(s, a), repeats)
                )
    summary = {}
    for name, by_batch in results.items():
        summary[name] = {
            f"batch{batch}_ms": [round(1000 * statistics.mean(v), 4), round(1000 * statistics.pstdev(v), 4)]
            for batch, v in by_batch.items()
        }  # fmt: skip
        summary[name]["throughput_batch64_per_s"] = round(64 / statistics.mean(by_batch[64]), 1)
        for batch in (1, 64):
            ratios = [t / o for t, o in zip(results["torch"][batch], by_batch[batch], strict=True)]
            summary[name][f"speedup_vs_torch_batch{batch}"] = [
                round(statistics.mean(ratios), 3), round(statistics.pstdev(ratios), 3)
            ]  # fmt: skip
    summary["parity"] = {"fp32": fp32["parity"], "int8": int8["parity"]}
    summary["bytes"] = {"onnx_fp32": (scratch / "m.onnx").stat().st_size,
                        "onnx_int8": (scratch / "q.onnx").stat().st_size}  # fmt: skip
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", type=Path, help="a trained classification run")
    parser.add_argument("--quick", action="store_true", help="toy size (smoke test)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads, every engine")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "export.json")
    args = parser.parse_args()
    rounds, repeats = (2, 5) if args.quick else (args.rounds, args.repeats)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    np.random.seed(0)
    machine, load_before = machine_info(), load_average()
    with tempfile.TemporaryDirectory() as folder:
        run_dir = args.run or train_run(Path(folder), args.quick)
        results = measure(run_dir, rounds, repeats)
        model_name = load(run_dir).config.model.name
    record = {"benchmark": "export", "quick": args.quick, "machine": machine, "model": model_name,
              "rounds": rounds, "threads": args.threads, "repeats": repeats, "seeds": [0],
              "load_before": load_before, "load_after": load_average(),
              "note": "mean ± std over rounds; engines interleaved in each round; speedup = torch "
                      "time / engine time, paired per round", "results": results}  # fmt: skip
    write_record(args.output, record)
    for name in ("torch", "onnxruntime", "onnxruntime_int8"):
        print(name, results[name])


if __name__ == "__main__":
    main()
