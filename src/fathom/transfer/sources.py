"""Where a fine-tuning run starts: a Fathom run folder or ``pretrained:NAME``.

``resolve_source`` reads what the start needs (the model's lineage, the weights file, the data
the source was trained on) and ``Source.check_data`` refuses, in one line, data of another
kind or shape than the source's. ``source_layer`` is the config layer a fine-tuning run gets
from its source: the model's name and options, for a text source its tokenizer (a pretrained
model's, or a run's own: ``data.tokenizer=run:SOURCE`` reuses its vocabulary), and for a
pretrained package discriminative rates (``optim.layer_decay``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fathom.data.bundle import DataInfo
from fathom.data.pretrained import pretrained_package
from fathom.errors import ConfigError
from fathom.runs.folder import WEIGHTS_FILE, read_run_json

PRETRAINED_PREFIX = "pretrained:"
PRETRAINED_LAYER_DECAY = 0.7
"""``optim.layer_decay`` beneath the user's config when fine-tuning a pretrained package: each
layer below the head trains at 0.7 times the rate of the one above (ELECTRA's 0.8, timm's
layer_decay), which keeps the pretrained lower layers. Measured, MiniLM on the UCI sentences,
3 epochs at the sentiment recipe's lr 1e-3: 84.3% without, 91.5% with; a Fathom run source
(ResNet-20) gained nothing from it, so runs keep one rate."""


@dataclass(frozen=True)
class Source:
    """A start for fine-tuning: ``run`` (a run folder) or a pretrained package's weights."""

    name: str  # as the user wrote it: runs/NAME or pretrained:minilm
    weights: Path
    model: str  # the registered model of the source
    options: dict[str, Any]  # the model's options (a run's lineage base), for the config
    lineage: dict[str, Any] | None = None
    info: DataInfo | None = None  # the data a run source was trained on
    run: Path | None = None
    prefix: str = ""  # prepended to the source's tensor names to find the model's
    tokenizer: str | None = None  # the data.tokenizer a pretrained text model reads

    def check_data(self, info: DataInfo) -> None:
        """A one-line ConfigError when ``info`` is not the kind of input the source reads."""
        if self.tokenizer is not None:
            kind = (info.extra.get("tokenizer") or {}).get("kind")
            if kind != self.tokenizer:
                raise ConfigError(
                    f"model.init_from={self.name} reads its own token ids, but '{info.name}' "
                    f"has {'tokenizer ' + kind if kind else 'no tokenizer'}: set "
                    f"data.tokenizer={self.tokenizer} (fathom finetune does)"
                )
        if self.info is None:
            return
        theirs, ours = input_kind(self.info), input_kind(info)
        where = f"model.init_from={self.name}"
        if theirs != ours:
            raise ConfigError(f"{where} was trained on {theirs}, but '{info.name}' has {ours}")
        if theirs == "images" and tuple(self.info.input_shape) != tuple(info.input_shape):
            raise ConfigError(
                f"{where} was trained on images of shape {list(self.info.input_shape)}, but "
                f"'{info.name}' has {list(info.input_shape)}"
            )
        if theirs == "token ids" and self.info.extra.get("tokenizer") != info.extra.get(
            "tokenizer"
        ):
            raise ConfigError(
                f"{where} reads the token ids of its own tokenizer, and '{info.name}' was "
                "tokenized differently; fine-tune text from a pretrained model (pretrained:minilm)"
            )
        if theirs == "vectors" and tuple(self.info.input_shape) != tuple(info.input_shape):
            raise ConfigError(
                f"{where} was trained on inputs of shape {list(self.info.input_shape)}, but "
                f"'{info.name}' has {list(info.input_shape)}"
            )


def input_kind(info: DataInfo) -> str:
    if len(info.input_shape) == 3:
        return "images"
    if "tokenizer" in info.extra:
        return "token ids"
    return "vectors"


def resolve_source(name: str) -> Source:
    """The source named by ``model.init_from`` (a run folder or ``pretrained:NAME``)."""
    if name.startswith(PRETRAINED_PREFIX):
        package = pretrained_package(name.removeprefix(PRETRAINED_PREFIX))
        tokenizer = f"{PRETRAINED_PREFIX}{package.name}" if package.tokenizer else None
        return Source(
            name, package.file(package.weights), package.model, {}, prefix="features.",
            tokenizer=tokenizer,
        )  # fmt: skip
    return run_source(name)


def run_source(name: str) -> Source:
    path = Path(name)
    if not (path / "run.json").is_file():
        raise ConfigError(
            f"model.init_from={name}: not a run folder (no run.json) nor pretrained:NAME "
            "(pretrained:minilm)"
        )
    record = read_run_json(path)
    lineage = record.get("lineage")
    if lineage is None:
        raise ConfigError(
            f"model.init_from={name}: this run has no model lineage (a custom module, or a run "
            "from before lineages): it cannot be rebuilt to fine-tune"
        )
    weights = path / WEIGHTS_FILE
    if not weights.exists():
        weights = path / "checkpoints" / "last.safetensors"
    if not weights.exists():
        raise ConfigError(f"model.init_from={name}: the run has no weights yet")
    base = lineage["base"]
    info = DataInfo.from_dict(record["data"])
    return Source(name, weights, base["name"], dict(base.get("options", {})), lineage, info, path)


def source_layer(name: str) -> dict[str, Any]:
    """The config a run from ``name`` starts from (the user's config goes on top): the source's
    model and options, a text source's tokenizer, and a pretrained package's layer decay."""
    source = resolve_source(name)
    layer: dict[str, Any] = {"model": {"name": source.model, **source.options, "init_from": name}}
    if name.startswith(PRETRAINED_PREFIX):
        layer["optim"] = {"layer_decay": PRETRAINED_LAYER_DECAY}
    if source.tokenizer is not None:
        layer["data"] = {"tokenizer": source.tokenizer}
    elif source.info is not None and "tokenizer" in source.info.extra:
        layer["data"] = {"tokenizer": f"run:{name}"}  # the source's vocabulary, not a new one
    return layer
