"""Models: plain ``torch.nn.Module``s built by name, e.g. ``fathom.models.create("resnet8")``.

A factory takes its own options plus any of ``num_classes``, ``in_channels``, ``in_features`` and
``image_size``; ``create_for_data`` fills those four from a dataset's ``DataInfo``.
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from fathom.config import accepted_keywords
from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError
from fathom.models.init import initialize
from fathom.registry import MODELS

__all__ = ["create", "create_for_data", "initialize", "list"]

MODELS.register(
    "mlp",
    "fathom.models.mlp:mlp",
    description="multilayer perceptron: any depth/width, activation, dropout, batch norm",
    kind="general",
)
MODELS.register(
    "cnn",
    "fathom.models.cnn:cnn",
    description="LeNet-style conv-pool-fully-connected network",
    kind="vision",
)
MODELS.register(
    "convnet",
    "fathom.models.convnet:convnet",
    description="configurable conv family (stages, depth, width, kernel, expansion, norm, skip)",
    kind="vision",
)
MODELS.register(
    "resnet8",
    "fathom.models.resnet:resnet8",
    description="ResNet for small images, 8 layers",
    kind="vision",
)
MODELS.register(
    "resnet20",
    "fathom.models.resnet:resnet20",
    description="ResNet for small images, 20 layers",
    kind="vision",
)
MODELS.register(
    "resnet56",
    "fathom.models.resnet:resnet56",
    description="ResNet for small images, 56 layers",
    kind="vision",
)
MODELS.register(
    "resnet18",
    "fathom.models.resnet:resnet18",
    description="ImageNet-style ResNet-18",
    kind="vision",
)
MODELS.register(
    "gan",
    "fathom.models.gan:gan",
    description="DCGAN generator + discriminator (28x28, 32x32); conditional, spectral norm",
    kind="generative",
)
MODELS.register(
    "vae",
    "fathom.models.vae:vae",
    description="convolutional variational autoencoder",
    kind="generative",
)
MODELS.register(
    "unet",
    "fathom.models.diffusion:unet",
    description="small noise-prediction U-Net for diffusion; conditional (classifier-free guidance)",
    kind="generative",
)
MODELS.register(
    "transformer_encoder",
    "fathom.models.transformer:transformer_encoder",
    description="BERT-style Transformer text classifier: CLS or mean pooling",
    kind="sequence",
)
MODELS.register(
    "gpt",
    "fathom.models.gpt:gpt",
    description="GPT-style causal Transformer language model, tied weights, KV-cache generation",
    kind="language",
)
MODELS.register(
    "transformer_seq2seq",
    "fathom.models.transformer_seq2seq:transformer_seq2seq",
    description="encoder-decoder Transformer with cross-attention (seq2seq)",
    kind="seq2seq",
)
MODELS.register(
    "rnn",
    "fathom.models.rnn:rnn",
    description="Elman RNN on tokens or float sequences: layers, hidden size, bidirectional",
    kind="sequence",
)
MODELS.register(
    "lstm",
    "fathom.models.rnn:lstm",
    description="LSTM on tokens or float sequences: layers, hidden size, bidirectional",
    kind="sequence",
)
MODELS.register(
    "gru",
    "fathom.models.rnn:gru",
    description="GRU on tokens or float sequences: layers, hidden size, bidirectional",
    kind="sequence",
)
MODELS.register(
    "gru_seq2seq",
    "fathom.models.seq2seq_rnn:gru_seq2seq",
    description="GRU encoder-decoder with attention for sequence-to-sequence tasks",
    kind="seq2seq",
)
MODELS.register(
    "efficientnet_b0",
    "fathom.models.efficientnet:efficientnet_b0",
    description="EfficientNet-B0: MBConv + squeeze-excitation, compound scaling (224 px)",
    kind="vision",
)
MODELS.register(
    "efficientnet_small",
    "fathom.models.efficientnet:efficientnet_small",
    description="EfficientNet at half width and depth for 28-32 px images",
    kind="vision",
)
MODELS.register(
    "mobilenet_v2",
    "fathom.models.mobilenet:mobilenet_v2",
    description="MobileNetV2: inverted residuals, depthwise-separable convs (224 px)",
    kind="vision",
)
MODELS.register(
    "mobilenet_small",
    "fathom.models.mobilenet:mobilenet_small",
    description="MobileNetV2 at half width with a stride-1 stem for 28-32 px images",
    kind="vision",
)
MODELS.register(
    "vit_tiny",
    "fathom.models.vit:vit_tiny",
    description="Vision Transformer for 28-32 px images: 4 px patches, 6 blocks of 192",
    kind="vision",
)
MODELS.register(
    "vit_s16",
    "fathom.models.vit:vit_s16",
    description="ViT-S/16 for 224 px images: 16 px patches, 12 blocks of 384",
    kind="vision",
)
MODELS.register(
    "airbench",
    "fathom.models.airbench:airbench",
    description="airbench94's fast CIFAR-10 net: whitening conv, GELU conv groups 64/256/256",
    kind="vision",
)
MODELS.register(
    "minilm",
    "fathom.models.minilm:minilm",
    description="all-MiniLM-L6-v2 sentence encoder + linear head (model.init_from=pretrained:minilm)",
    kind="sequence",
)


def create(name: str, *, init: str = "default", **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` and initialise its weights with scheme ``init``."""
    model = MODELS.create(name, **kwargs)
    initialize(model, init)
    model.fathom_spec = {"name": name, "init": init, **kwargs}  # lets fathom.load rebuild it
    return model


def create_for_data(
    name: str, info: DataInfo, *, init: str = "default", **kwargs: Any
) -> nn.Module:
    """Build ``name`` sized for a dataset: output size, input channels/features and image size.

    Factories that accept them also get ``input_shape`` (one example's shape) and ``vocab_size``
    (token datasets put it in ``info.extra``).
    """
    accepted = accepted_keywords(MODELS.get(name))
    shape = tuple(info.input_shape)
    inferred: dict[str, Any] = {
        "num_classes": info.output_size,
        "in_features": math.prod(shape),
        "input_shape": shape,
    }
    if "vocab_size" in info.extra:
        inferred["vocab_size"] = int(info.extra["vocab_size"])
    if len(shape) == 3:
        image_size = shape[1] if shape[1] == shape[2] else (shape[1], shape[2])
        inferred.update(in_channels=shape[0], image_size=image_size)
    explicit_only = {"input_shape", "vocab_size"}  # not passed on to a bare **kwargs factory
    for key, value in inferred.items():
        wanted = key in accepted or ("*" in accepted and key not in explicit_only)
        if key not in kwargs and wanted:
            kwargs[key] = value
    image_only = "in_channels" in accepted and "in_features" not in accepted
    if image_only and "in_channels" not in kwargs and len(shape) != 3:
        raise ConfigError(
            f"model '{name}' needs image inputs (channels, height, width) but dataset "
            f"'{info.name}' has inputs of shape {[*shape]}; try model.name=mlp"
        )
    return create(name, init=init, **kwargs)


def list(kind: str | None = None) -> list[str]:  # noqa: A001 - the public name the docs promise
    """Names of all registered models (of one ``kind``: vision, generative, sequence, ...)."""
    return MODELS.names(kind)
