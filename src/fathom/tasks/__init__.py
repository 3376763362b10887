"""Tasks: the maths of each kind of learning (``fathom.tasks.create("classification", ...)``)."""

from __future__ import annotations

from typing import Any

from fathom.config import call_with_checked_kwargs
from fathom.data.bundle import DataInfo
from fathom.registry import TASKS
from fathom.tasks.base import Task

__all__ = ["Task", "create", "create_for_data", "list"]

TASKS.register(
    "classification",
    "fathom.tasks.classification:Classification",
    description="cross-entropy; accuracy, top-k, per-class F1",
)
TASKS.register(
    "adversarial",
    "fathom.tasks.adversarial:AdversarialClassification",
    description="classification on PGD or fast-FGSM adversarial batches (Madry; Wong et al.)",
)
TASKS.register(
    "regression",
    "fathom.tasks.regression:Regression",
    description="mean squared error; MAE, RMSE, R²",
)
TASKS.register(
    "gan",
    "fathom.tasks.gan:GAN",
    description="adversarial: discriminator and generator phases; non-saturating, hinge, WGAN-GP",
)
TASKS.register(
    "vae",
    "fathom.tasks.vae:VAE",
    description="variational autoencoder: ELBO with a beta weight; bits per dimension",
)
TASKS.register(
    "diffusion",
    "fathom.tasks.diffusion:Diffusion",
    description="DDPM training, DDIM sampling, classifier-free guidance",
)
TASKS.register(
    "language_model",
    "fathom.tasks.language_model:LanguageModel",
    description="next-token cross-entropy; perplexity, bits per character; text generation",
)
TASKS.register(
    "forecast",
    "fathom.tasks.forecast:Forecast",
    description="multi-step forecasting; MAE, RMSE, MASE; naive, seasonal naive and ARIMA baselines",
)
TASKS.register(
    "seq2seq",
    "fathom.tasks.seq2seq:Seq2Seq",
    description="sequence-to-sequence: teacher-forced cross-entropy; token and exact-match accuracy",
)
TASKS.register(
    "masked_lm",
    "fathom.tasks.masked_lm:MaskedLanguageModel",
    description="masked-token pretraining (BERT MLM) of a Transformer encoder on unlabelled text",
)
TASKS.register(
    "distillation",
    "fathom.tasks.distillation:Distillation",
    description="knowledge distillation: a student learns a teacher's soft targets and the labels",
)

TASKS.register("simclr", "fathom.tasks.simclr:SimCLR", description="self-supervised images: SimCLR, NT-Xent on two augmented views; kNN monitor")  # fmt: skip
TASKS.register("byol", "fathom.tasks.byol:BYOL", description="self-supervised images: BYOL, online predictor vs EMA target; kNN monitor")  # fmt: skip


def create(name: str, **kwargs: Any) -> Task:
    """Build the registered task ``name``."""
    return TASKS.create(name, **kwargs)


def create_for_data(name: str, info: DataInfo, **options: Any) -> Task:
    """Build task ``name`` sized for a dataset (classes, vocabulary, ...), checking ``options``."""
    task_class = TASKS.get(name)
    return call_with_checked_kwargs(
        task_class.for_data, {**TASKS.defaults(name), **options, "info": info}, where=f"task {name}"
    )


def list() -> list[str]:  # noqa: A001
    return TASKS.names()
