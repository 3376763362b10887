"""Language modelling: next-token cross-entropy; loss, perplexity, bits per character; sampling.

Bits per character divide the per-token loss (in bits) by the characters per token of the
validation text (1 for a character tokenizer), so char and BPE models compare on one scale.
``generate`` continues a prompt with the model's key/value-cached ``generate``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from fathom.data.bundle import DataInfo
from fathom.data.tokenizers import PAD_ID, SPECIAL_TOKENS, Tokenizer, tokenizer_from_dict
from fathom.engine.callbacks import Callback
from fathom.errors import ConfigError, DataError
from fathom.tasks.base import Batch, GenerativeTask, probe_outputs

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer


class LanguageModelMetrics:
    """Token-weighted mean loss and next-token accuracy over an evaluation."""

    def __init__(self, device: torch.device, characters_per_token: float) -> None:
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.tokens = 0
        self.characters_per_token = characters_per_token

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        flat_logits, flat_targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
        keep = flat_targets != PAD_ID
        self.loss_sum += F.cross_entropy(
            flat_logits, flat_targets, ignore_index=PAD_ID, reduction="sum"
        )
        self.correct += ((flat_logits.argmax(dim=-1) == flat_targets) & keep).sum()
        self.tokens += int(keep.sum())

    def compute(self) -> dict[str, Any]:
        loss = float(self.loss_sum) / max(1, self.tokens)
        return {
            "loss": loss,
            "perplexity": math.exp(min(loss, 50.0)),
            "bits_per_character": loss / math.log(2) / self.characters_per_token,
            "accuracy": int(self.correct) / max(1, self.tokens),
        }

    def details(self) -> dict[str, Any]:
        return {"tokens": self.tokens}


class LanguageModel(GenerativeTask):
    name = "language_model"
    monitor = "loss"
    monitor_mode = "min"

    def __init__(
        self,
        vocab_size: int,
        tokenizer: dict[str, Any] | None = None,
        characters_per_token: float = 1.0,
        sample_tokens: int = 200,
        sample_prompt: str = "",
        sample_temperature: float = 0.8,
    ) -> None:
        self.vocab_size = vocab_size
        self.tokenizer_state = tokenizer
        self.characters_per_token = characters_per_token
        self.sample_tokens = sample_tokens
        self.sample_prompt = sample_prompt
        self.sample_temperature = sample_temperature

    @classmethod
    def for_data(cls, info: DataInfo, **options: Any) -> LanguageModel:
        extra = info.extra
        if "vocab_size" not in extra:
            raise ConfigError(
                f"task language_model needs a token dataset; '{info.name}' has no vocab_size"
            )
        return cls(
            int(extra["vocab_size"]),
            extra.get("tokenizer"),
            float(extra.get("characters_per_token", 1.0)),
            **options,
        )

    @property
    def tokenizer(self) -> Tokenizer:
        if self.tokenizer_state is None:
            raise DataError("this run saved no tokenizer, so text cannot be encoded or decoded")
        return tokenizer_from_dict(self.tokenizer_state)

    def check_batch(self, model: nn.Module, batch: Batch) -> None:
        outputs = probe_outputs(model, batch[0])
        expected = [min(2, len(batch[0])), batch[0].shape[1], self.vocab_size]
        if list(outputs.shape) != expected:
            raise DataError(
                f"the model outputs shape {list(outputs.shape)}; a language model must output "
                f"next-token logits {expected} (try model.name=gpt)"
            )

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs, targets = batch
        logits = model(inputs)
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=PAD_ID
        )
        return loss, {}

    def new_metrics(self, device: torch.device) -> LanguageModelMetrics:
        return LanguageModelMetrics(device, self.characters_per_token)

    def evaluation_step(
        self, model: nn.Module, batch: Batch, metrics: LanguageModelMetrics
    ) -> None:
        inputs, targets = batch
        metrics.update(model(inputs).float(), targets)

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """Next-token probabilities at the last position [batch, vocab]."""
        return model(inputs)[:, -1].float().softmax(dim=-1)

    def callbacks(self, run_dir: Path | None) -> list[Callback]:
        if run_dir is None or self.sample_tokens <= 0 or self.tokenizer_state is None:
            return []
        return [TextSamples(self, run_dir)]

    def encode_prompt(self, prompt: str, device: torch.device) -> torch.Tensor:
        """Prompt ids [1, T]; an empty prompt starts from a newline where the vocabulary has one."""
        tokenizer = self.tokenizer
        ids = tokenizer.encode(prompt, strict=True) if prompt else tokenizer.encode("\n")
        if not ids or (not prompt and ids[0] < 4):
            raise DataError("an empty prompt needs a newline in the vocabulary; give --prompt TEXT")
        return torch.tensor([ids], dtype=torch.long, device=device)

    def sample(
        self,
        model: nn.Module,
        prompt: str,
        max_tokens: int,
        temperature: float,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int = 0,
    ) -> str:
        """Prompt plus ``max_tokens`` generated tokens, decoded to text (model left as it was)."""
        if not hasattr(model, "generate"):
            raise ConfigError(f"{type(model).__name__} has no generate method; use model.name=gpt")
        if max_tokens < 0:
            raise ConfigError(f"max_tokens must be >= 0, got {max_tokens}")
        device = next(model.parameters()).device
        prompt_ids = self.encode_prompt(prompt, device)
        generator = torch.Generator(device=device).manual_seed(seed)
        was_training = model.training
        model.eval()
        tokens, _ = model.generate(
            prompt_ids, max_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
            generator=generator, suppress=range(len(SPECIAL_TOKENS)),
        )  # fmt: skip
        model.train(was_training)
        new_ids = tokens[0, prompt_ids.shape[1] :].tolist()
        return prompt + self.tokenizer.decode(new_ids)

    def generate(
        self,
        model: nn.Module,
        info: DataInfo,
        output_dir: Path,
        prompt: str = "",
        max_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int = 0,
    ) -> dict[str, Any]:
        """Continue ``prompt``; writes ``output_dir/sample-seed<seed>.txt``."""
        text = self.sample(model, prompt, max_tokens, temperature, top_k, top_p, seed)
        from fathom.files import atomic_write_text

        path = Path(output_dir) / f"sample-seed{seed}.txt"
        atomic_write_text(path, text)
        return {"text": text, "files": [str(path)], "prompt": prompt}


class TextSamples(Callback):
    """After each evaluation: a text sample into the report; at the end, an attention map PNG."""

    def __init__(self, task: LanguageModel, run_dir: Path) -> None:
        self.task = task
        self.run_dir = run_dir
        self.rows: list[list[Any]] = []

    def evaluation_end(self, trainer: Trainer) -> None:
        from fathom.report import save_section

        text = self.task.sample(
            trainer.model, self.task.sample_prompt, self.task.sample_tokens,
            self.task.sample_temperature, seed=trainer.state.epoch,
        )  # fmt: skip
        loss = trainer.last_evaluation.get("loss")
        shown_loss = f"{loss:.4f}" if isinstance(loss, float) else ""
        self.rows.append([trainer.state.epoch, trainer.state.step, shown_loss, text])
        save_section(
            self.run_dir, "text_samples", "Generated text over training",
            text=f"Samples of {self.task.sample_tokens} tokens at temperature "
            f"{self.task.sample_temperature}, after each evaluation.",
            headers=["epoch", "step", "val loss", "sample"], rows=self.rows,
        )  # fmt: skip

    def fit_end(self, trainer: Trainer) -> None:
        model = trainer.model
        validation = trainer.validation_inputs(1)
        if not hasattr(model, "attention_maps") or validation is None:
            return
        from fathom.report.attention import save_attention_section

        inputs = validation[:1, :32]
        labels = [self.task.tokenizer.decode([int(i)]) for i in inputs[0]]
        save_attention_section(
            self.run_dir, model, inputs, labels, "Last layer's attention on a validation sample",
            "Each panel is one head: row i shows how much token i attends to each earlier token.",
        )  # fmt: skip
