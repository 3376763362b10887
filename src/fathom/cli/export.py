"""``fathom export RUN --format onnx|torchscript|safetensors``: the model out of Python."""

from __future__ import annotations

import argparse
from pathlib import Path

from fathom.cli.options import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path)
    parser.add_argument(
        "--format", default="onnx", help="onnx (default), torchscript or safetensors"
    )
    parser.add_argument("--output", type=Path, help="file to write (default RUN/export/model.*)")
    parser.add_argument("--dynamic-batch", action="store_true", help="ONNX: any batch size")
    parser.add_argument("--opset", type=int, help="ONNX opset (default 17; 18 for dynamo)")
    parser.add_argument(
        "--exporter", default="torchscript", help="ONNX exporter: torchscript (default) or dynamo"
    )
    parser.add_argument("--quantize", help="ONNX: int8 (ONNX Runtime dynamic quantization)")


def run(args: argparse.Namespace) -> int:
    from fathom.api.export import export_model
    from fathom.export.checks import describe_parity

    options = {}
    if args.format == "onnx":
        options = {
            "opset": args.opset,
            "dynamic_batch": args.dynamic_batch,
            "exporter": args.exporter,
            "quantize": args.quantize,
        }
    elif args.opset or args.dynamic_batch or args.quantize or args.exporter != "torchscript":
        from fathom.errors import ConfigError

        raise ConfigError(
            "--opset, --dynamic-batch, --exporter and --quantize apply to --format onnx"
        )
    record = export_model(args.run, args.format, args.output, **options)
    print(
        f"wrote {record['file']} ({record['bytes'] / 1e6:.2f} MB, sha256 {record['sha256'][:16]})"
    )
    if "parity" in record:
        print(f"parity with PyTorch: {describe_parity(record['parity'])}")
    return 0


COMMAND = Command("export a run's model: onnx, torchscript or safetensors", add_arguments, run)
